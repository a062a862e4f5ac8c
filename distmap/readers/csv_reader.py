"""CSV with AWS Distributed Map rules.

* Every value is a string; header names are taken literally (no trimming, no type inference).
* A row with more fields than headers drops the extra fields; a shorter row is padded with "".
* Records end at ``\\r\\n``, ``\\r`` or ``\\n``. A trailing line terminator adds no item; empty lines
  are not items (before the header too); a line of spaces is an item whose first field is those
  spaces.
* Quoted fields may contain delimiters, line breaks and quotes (doubled, or escaped with a
  backslash); a backslash escapes the next character anywhere (``csv_grammar`` has the grammar).
* Malformed records, duplicate header names, a header over 10 KiB and text that is not UTF-8 fail
  the run with ``States.ItemReaderFailed`` naming the file and line; the records before them are
  items as usual.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from distmap.errors import ItemReaderFailed
from distmap.readers.base import ByteSource, DecodeSpec, RawBlock
from distmap.readers.csv_grammar import MAX_RECORD_BYTES, line_breaks, scan

MAX_HEADER_BYTES = 10 * 1024
DUPLICATE_HEADERS = "CSV headers cannot contain duplicates."  # AWS's cause text
HEADER_TOO_LONG = "the header row is longer than 10 KiB, the most AWS supports"


def check_headers(header: tuple[str, ...], where: str) -> None:
    """Duplicate names fail the run (AWS: at run time, for CSVHeaders given in the definition too)."""
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        names = ", ".join(repr(d) for d in dup)
        raise ItemReaderFailed(cause=f"{DUPLICATE_HEADERS} ({where}: duplicate header names {names})")


class CsvReader:
    """Cuts a CSV stream into blocks of whole records and reads the header."""

    def __init__(self, uri: str, header_location: str, headers: tuple[str, ...], delimiter: str) -> None:
        self.src = ByteSource(uri)
        self.uri = uri
        self.delimiter = delimiter
        self.line = 1
        if header_location == "GIVEN":
            self.header = tuple(headers)
            check_headers(self.header, "ReaderConfig.CSVHeaders")
        else:
            self.header = self._read_header()

    @property
    def bytes_read(self) -> int:
        return self.src.bytes_read

    def _fail(self, offset: int, what: str) -> ItemReaderFailed:
        line = self.line + line_breaks(self.src.buf, 0, offset)
        return ItemReaderFailed(cause=f"{self.uri} line {line}: {what}")

    def _take(
        self, max_items: int, target_bytes: int, max_record: int = MAX_RECORD_BYTES, too_long: str = ""
    ) -> tuple[bytes, int] | None:
        """The next run of whole records (with at most ``max_items`` items), or None at the end."""
        src = self.src
        src.fill(target_bytes)
        while True:
            buf = src.buf
            s = scan(buf, self.delimiter, max_items=max_items, limit=target_bytes, eof=src.eof)
            if s.end:
                block = buf[: s.end]
                src.buf = buf[s.end :]
                self.line += line_breaks(block)
                return block, s.items
            if s.error is not None:
                raise self._fail(s.error_at, f"malformed CSV: {s.error}")
            if src.eof:
                return None  # nothing left (scan takes a last record without terminator at EOF)
            if len(buf) > max_record:
                raise self._fail(
                    0,
                    too_long
                    or f"a record is longer than {max_record >> 20} MiB (is a quoted field not closed?)",
                )
            src.fill(max(len(buf) * 2, target_bytes))

    def _read_header(self) -> tuple[str, ...]:
        while True:
            taken = self._take(1, MAX_HEADER_BYTES + 3, MAX_HEADER_BYTES + 3, HEADER_TOO_LONG)
            if taken is None:
                raise ItemReaderFailed(
                    cause=f"{self.uri} line {self.line}: the file has no header row "
                    "(it is empty or holds only empty lines; CSVHeaderLocation is FIRST_ROW)"
                )
            raw, items = taken
            if items:
                break
        start = self.line - line_breaks(raw)
        body = raw.lstrip(b"\r\n")
        start += line_breaks(raw, 0, len(raw) - len(body))
        if len(body.rstrip(b"\r\n")) > MAX_HEADER_BYTES:
            raise ItemReaderFailed(cause=f"{self.uri} line {start}: {HEADER_TOO_LONG}")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ItemReaderFailed(
                cause=f"{self.uri} line {start}: header is not valid UTF-8 ({exc.reason})"
            ) from None
        rows = [r for r in _rows(text, self.delimiter) if r]
        header = tuple(rows[0])
        check_headers(header, f"{self.uri} line {start}")
        return header

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        while True:
            first = self.line
            taken = self._take(max_items, target_bytes)
            if taken is None:
                return None
            block, count = taken
            if count:
                return RawBlock(block, count, first)
            # only empty lines: keep reading

    def tell(self) -> dict[str, int]:
        return {"o": self.src.tell(), "l": self.line}

    def seek(self, token: dict[str, int]) -> None:
        self.src.seek(token["o"])
        self.line = token["l"]

    def close(self) -> None:
        self.src.close()


def _rows(text: str, delimiter: str) -> csv.Reader:  # type: ignore[name-defined]
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True, escapechar="\\")


def nth_record_end(payload: bytes, delimiter: str, n: int) -> int:
    """Offset just past the ``n``-th item record of a block."""
    return scan(payload, delimiter, max_items=n, limit=len(payload), eof=True).end


def decode_csv(
    payload: bytes, first_line: int, spec: DecodeSpec
) -> Iterator[tuple[int, dict[str, str], None]]:
    """Items of a block, with the line each starts on. Text that is not UTF-8 ends the block with
    ``ItemReaderFailed`` after the records before it."""
    bad: UnicodeDecodeError | None = None
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = exc
        # the whole records before the bad byte are read as usual
        good = scan(payload[: exc.start], spec.delimiter, max_items=1 << 62, limit=exc.start, eof=False).end
        text = payload[:good].decode("utf-8")
    header = spec.header
    width = len(header)
    reader = _rows(text, spec.delimiter)
    consumed = 0
    try:
        for row in reader:
            line = first_line + consumed
            consumed = reader.line_num
            if not row:
                continue
            n = len(row)
            if n == width:
                yield line, dict(zip(header, row, strict=True)), None
            elif n > width:
                yield line, dict(zip(header, row[:width], strict=True)), None
            else:
                yield line, dict(zip(header, row + [""] * (width - n), strict=True)), None
    except csv.Error as exc:  # the splitter checked the grammar: only reachable through a bug
        raise ItemReaderFailed(
            cause=f"{spec.source} line {first_line + reader.line_num - 1}: malformed CSV: {exc}"
        ) from None
    if bad is not None:
        line = first_line + line_breaks(payload, 0, bad.start)
        raise ItemReaderFailed(cause=f"{spec.source} line {line}: not valid UTF-8 ({bad.reason})")


# ---------------------------------------------------------------- the format's entry points


def open_file(uri: str, cfg: Any) -> CsvReader:
    return CsvReader(uri, cfg.csv_header_location, cfg.csv_headers, cfg.csv_delimiter)


def decode(spec: DecodeSpec, block: RawBlock) -> Iterator[tuple[int, dict[str, str], None]]:
    return decode_csv(block.payload, block.first_line, spec)  # type: ignore[arg-type]


def split(spec: DecodeSpec, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    payload = block.payload
    assert isinstance(payload, bytes)
    cut = nth_record_end(payload, spec.delimiter, n)
    lines = line_breaks(payload, 0, cut)
    return RawBlock(payload[:cut], n, block.first_line), RawBlock(
        payload[cut:], block.count - n, block.first_line + lines
    )
