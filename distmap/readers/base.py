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
from typing import IO, Any, Protocol

from distmap.errors import ItemReaderFailed
from distmap.storage import describe_os_error, open_read

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
        self.uri = uri
        try:
            self.fh: IO[bytes] = open_read(uri)
        except Exception as exc:
            raise ItemReaderFailed(cause=f"cannot open {uri}: {describe_os_error(exc)}") from None
        self.buf = b""
        self.eof = False
        self.bytes_read = 0
        self.read_size = READ_SIZE
        self._first = True

    def _read(self, n: int) -> bytes:
        try:
            data = self.fh.read(n)
        except Exception as exc:
            raise ItemReaderFailed(cause=f"cannot read {self.uri}: {describe_os_error(exc)}") from None
        self.bytes_read += len(data)
        return data

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

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.fh.close()


def open_reader(cfg: Any) -> BlockReader:
    """Open the reader for an ``ItemReaderConfig``."""
    if cfg.input_type == "JSONL":
        from distmap.readers.jsonl_reader import JsonlReader

        return JsonlReader(cfg.source)
    if cfg.input_type == "CSV":
        from distmap.readers.csv_reader import CsvReader

        return CsvReader(cfg.source, cfg.csv_header_location, cfg.csv_headers, cfg.csv_delimiter)
    if cfg.input_type == "JSON":
        from distmap.readers.json_reader import JsonArrayReader

        return JsonArrayReader(cfg.source)
    raise ValueError(f"unknown InputType {cfg.input_type}")


def decode_block(spec: DecodeSpec, block: RawBlock) -> Iterator[tuple[int, Any, bytes | None]]:
    """Yield ``(line, value, raw_json_or_None)`` for each item of a block (worker side)."""
    if spec.input_type == "JSONL":
        from distmap.readers.jsonl_reader import decode_jsonl

        return decode_jsonl(block.payload, block.first_line, spec.source)  # type: ignore[arg-type]
    if spec.input_type == "CSV":
        from distmap.readers.csv_reader import decode_csv

        return decode_csv(block.payload, block.first_line, spec)  # type: ignore[arg-type]
    from distmap.readers.json_reader import decode_json_elements

    return decode_json_elements(block.payload, block.lines or [], spec.source)  # type: ignore[arg-type]


def split_block(spec: DecodeSpec, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    """Split a block after its first ``n`` items (used to bisect a block that kills workers)."""
    if isinstance(block.payload, list):
        lines = block.lines or [block.first_line] * len(block.payload)
        return (
            RawBlock(block.payload[:n], n, lines[0], lines[:n]),
            RawBlock(
                block.payload[n:], block.count - n, lines[n] if n < len(lines) else lines[-1], lines[n:]
            ),
        )
    if spec.input_type == "CSV":
        from distmap.readers.csv_grammar import line_breaks
        from distmap.readers.csv_reader import nth_record_end

        cut = nth_record_end(block.payload, spec.delimiter, n)
        lines = line_breaks(block.payload, 0, cut)
    else:
        from distmap.readers.jsonl_reader import jsonl_item_ends

        cut = jsonl_item_ends(block.payload, n)[n - 1]
        lines = block.payload.count(b"\n", 0, cut)
    head, tail = block.payload[:cut], block.payload[cut:]
    return RawBlock(head, n, block.first_line), RawBlock(tail, block.count - n, block.first_line + lines)
