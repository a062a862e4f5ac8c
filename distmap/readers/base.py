"""The reader contract: the coordinator cuts the source into record-aligned byte blocks; workers decode them.

A reader never parses items on the coordinator (move bytes, not objects). It only finds record
boundaries (fast ``bytes.count`` / ``rfind`` over ~1 MiB blocks), counts records so the
coordinator knows item indexes and can honour ``MaxItems`` exactly, and tracks line numbers so a
worker that finds malformed data can name the file and line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from distmap.errors import ItemReaderFailed
from distmap.storage import describe_os_error

READ_SIZE = 1 << 20
BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class RawBlock:
    """Consecutive records as read from the source."""

    payload: bytes | list[bytes]
    """JSONL / CSV: the raw bytes of whole records. JSON: one ``bytes`` per array element."""
    count: int
    """Number of items (blank lines are not items)."""
    first_line: int
    """1-based line number of the block's first byte in the source."""
    lines: list[int] | None = None
    """JSON only: the line each element starts on."""
    source: str | None = None
    """The file the block comes from when the input is several files (else ``DecodeSpec.source``)."""
    header: tuple[str, ...] | None = None
    """CSV of several files: this file's header (else ``DecodeSpec.header``)."""
    span: int | None = None
    """Where ``payload`` starts in its file, when that is a plain local file (not compressed, not
    remote): a worker on this machine may read the bytes itself instead of receiving them."""
    unreadable: str | None = None
    """Set by a worker that could not read the block's bytes again (the file changed or went
    away since it was split): the block's items are not run, and this is the reader error."""


@dataclass(frozen=True, slots=True)
class DecodeSpec:
    """What a worker needs to turn a RawBlock back into items."""

    input_type: str
    source: str
    header: tuple[str, ...] = ()
    delimiter: str = ","


class BlockReader(Protocol):
    header: tuple[str, ...]
    bytes_read: int

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None: ...

    def close(self) -> None: ...


class ByteSource:
    """A growing read buffer over a binary stream, with the source name for error messages."""

    def __init__(self, uri: str) -> None:
        from distmap.readers.sources import open_object

        self.uri = uri
        try:
            self.fh, self._raw = open_object(uri)
        except ItemReaderFailed:
            raise
        except Exception as exc:
            raise ItemReaderFailed(cause=f"cannot open {uri}: {describe_os_error(exc)}") from None
        self.buf = b""
        self.eof = False
        self._decoded = 0
        self.read_size = READ_SIZE
        self._first = True

    def _read(self, n: int) -> bytes:
        try:
            data = self.fh.read(n)
        except Exception as exc:
            raise ItemReaderFailed(cause=f"cannot read {self.uri}: {describe_os_error(exc)}") from None
        self._decoded += len(data)
        return data

    @property
    def bytes_read(self) -> int:
        """Bytes read from the object itself (compressed bytes for a compressed file)."""
        return self._raw.count

    def _strip_bom(self, data: bytes) -> bytes:
        """Drop a UTF-8 byte order mark at the very start of the stream (Excel writes one)."""
        self._first = False
        while len(data) < 3 and BOM.startswith(data):
            more = self._read(3 - len(data))
            if not more:
                break
            data += more
        return data[3:] if data.startswith(BOM) else data

    def read_more(self) -> bytes:
        """The next piece of the stream, not added to ``buf`` (b"" at the end)."""
        if self.eof:
            return b""
        data = self._read(self.read_size)
        if not data:
            self.eof = True
        elif self._first:
            data = self._strip_bom(data)
        return data

    def fill(self, n: int) -> None:
        """Read until the buffer holds at least ``n`` bytes or the stream ends."""
        parts = [self.buf]
        have = len(self.buf)
        while have < n and not self.eof:
            data = self._read(max(self.read_size, n - have))
            if not data:
                self.eof = True
                break
            if self._first:
                data = self._strip_bom(data)
            parts.append(data)
            have += len(data)
        if len(parts) > 1:
            self.buf = b"".join(parts)

    def tell(self) -> int:
        """Offset in the (decompressed) stream of the first byte not yet handed out."""
        return self._decoded - len(self.buf)

    @property
    def plain_local(self) -> bool:
        """Whether the stream is a local file's bytes as they are on disk (offsets are file offsets)."""
        return self.fh is self._raw and "://" not in self.uri

    def seek(self, offset: int) -> None:
        """Continue at ``offset`` (a ``tell`` of an earlier reader of the same object): a seek for
        a plain file or S3 object, reading forward and dropping the bytes for a compressed one."""
        if offset == self.tell():
            return
        raw = self._raw
        if self.fh is raw and offset >= 0 and hasattr(raw.raw, "seek"):
            try:
                raw.raw.seek(offset)
            except Exception as exc:
                raise ItemReaderFailed(cause=f"cannot seek in {self.uri}: {describe_os_error(exc)}") from None
            self._decoded, self.buf, self.eof = offset, b"", False
            self._first = offset == 0
            return
        if offset < self.tell():
            raise ItemReaderFailed(cause=f"cannot seek back in {self.uri}")
        while self.tell() < offset:
            want = offset - self.tell()
            if len(self.buf) >= want:
                self.buf = self.buf[want:]
                break
            self.buf = b""
            self.fill(min(want, 8 << 20))
            if not self.buf:
                raise ItemReaderFailed(cause=f"{self.uri} is shorter than when the run started")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.fh.close()


def reader_tell(reader: Any) -> Any:
    """A JSON token for where ``reader`` stands (before its next block), or None when the reader
    cannot say (JSON arrays, Parquet, listings: a resumed run then reads past the done items)."""
    tell = getattr(reader, "tell", None)
    return tell() if tell is not None else None


def reader_seek(reader: Any, token: Any) -> bool:
    """Move ``reader`` to a ``reader_tell`` token; False when the reader cannot seek."""
    seek = getattr(reader, "seek", None)
    if seek is None or token is None:
        return False
    seek(token)
    return True


def block_spec(spec: DecodeSpec, block: RawBlock) -> DecodeSpec:
    """The spec for one block: the file and CSV header it carries, when it carries them."""
    if block.source is None and block.header is None:
        return spec
    return DecodeSpec(
        spec.input_type,
        block.source or spec.source,
        spec.header if block.header is None else block.header,
        spec.delimiter,
    )


def open_reader(cfg: Any) -> BlockReader:
    """Open the reader for an ``ItemReaderConfig`` (see ``formats``)."""
    from distmap.readers.formats import open_reader as open_for

    return open_for(cfg)


def decode_block(spec: DecodeSpec, block: RawBlock) -> Iterator[tuple[int, Any, bytes | None]]:
    """Yield ``(line, value, raw_json_or_None)`` for each item of a block (worker side)."""
    from distmap.readers.formats import format_of

    return format_of(spec.input_type).decode(block_spec(spec, block), block)


def split_block(spec: DecodeSpec, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    """Split a block after its first ``n`` items (used to bisect a block that kills workers)."""
    from distmap.readers.formats import format_of

    head, tail = format_of(spec.input_type).split(block_spec(spec, block), block, n)
    head.source = tail.source = block.source
    head.header = tail.header = block.header
    return head, tail
