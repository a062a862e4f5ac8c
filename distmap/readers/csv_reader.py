"""CSV with AWS Distributed Map rules.

* Every value is a string; header names are taken literally (no trimming, no type inference).
* A row with more fields than headers drops the extra fields; a shorter row is padded with "".
* A trailing newline adds no item and the last row is read without one; empty lines are skipped.
* Duplicate header names fail the run with ``States.ItemReaderFailed``; so does a header over 10 KiB.
* Quoted fields may contain delimiters, quotes (doubled) and newlines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from distmap.errors import ItemReaderFailed
from distmap.readers.base import ByteSource, DecodeSpec, RawBlock
from distmap.readers.jsonl_reader import count_items as count_lines

MAX_HEADER_BYTES = 10 * 1024


def _is_blank(record: bytes) -> bool:
    return record in (b"\n", b"\r\n", b"\r", b"")


def csv_record_ends(buf: bytes, limit: int, *, final: bool) -> list[int]:
    """End offsets of the non-blank records that end at or before ``limit``.

    A record ends at a newline outside double quotes. Splitting on ``"`` makes every
    even-numbered piece lie outside quotes (RFC 4180 doubles embedded quotes, which keeps the
    parity). With ``final`` a last record without a trailing newline counts too.
    """
    window = buf[:limit]
    ends: list[int] = []
    start = 0
    pos = 0
    outside = True
    for piece in window.split(b'"'):
        if outside:
            nl = piece.find(b"\n")
            while nl != -1:
                end = pos + nl + 1
                if not _is_blank(window[start:end]):
                    ends.append(end)
                start = end
                nl = piece.find(b"\n", nl + 1)
        pos += len(piece) + 1
        outside = not outside
    if final and start < len(window) and not _is_blank(window[start:]):
        ends.append(len(window))
    return ends


def _count_records(block: bytes) -> int:
    if b'"' not in block:
        if block[:1] in (b"\n", b"\r") or b"\n\n" in block or b"\n\r\n" in block:
            return len(csv_record_ends(block, len(block), final=True))
        return count_lines(block)
    return len(csv_record_ends(block, len(block), final=True))


class CsvReader:
    """Cuts a CSV stream into blocks of whole records and reads the header."""

    def __init__(self, uri: str, header_location: str, headers: tuple[str, ...], delimiter: str) -> None:
        self.src = ByteSource(uri)
        self.uri = uri
        self.delimiter = delimiter
        self.line = 1
        if header_location == "GIVEN":
            self.header = tuple(headers)
        else:
            self.header = self._read_header()

    @property
    def bytes_read(self) -> int:
        return self.src.bytes_read

    def _read_header(self) -> tuple[str, ...]:
        self.src.fill(MAX_HEADER_BYTES + 2)
        buf = self.src.buf
        ends = csv_record_ends(buf, min(len(buf), MAX_HEADER_BYTES + 2), final=self.src.eof)
        if not ends:
            if not buf.strip():
                raise ItemReaderFailed(
                    cause=f"{self.uri} line 1: the file is empty; expected a header row (CSVHeaderLocation FIRST_ROW)"
                )
            raise ItemReaderFailed(
                cause=f"{self.uri} line 1: the header row is longer than {MAX_HEADER_BYTES} bytes"
            )
        end = ends[0]
        raw = buf[:end]
        self.line += raw.count(b"\n")
        self.src.buf = buf[end:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ItemReaderFailed(
                cause=f"{self.uri} line 1: header is not valid UTF-8 ({exc.reason})"
            ) from None
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter))
        header = tuple(rows[0]) if rows else ()
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise ItemReaderFailed(
                cause=f"{self.uri} line 1: duplicate header names: {', '.join(repr(d) for d in dup)}"
            )
        return header

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        src = self.src
        while True:
            src.fill(target_bytes)
            buf = src.buf
            if not buf:
                return None
            limit = min(len(buf), target_bytes)
            if b'"' not in buf[:limit]:
                cut = buf.rfind(b"\n", 0, limit)
                end = cut + 1 if cut != -1 else 0
            else:
                ends = csv_record_ends(buf, limit, final=False)
                end = ends[-1] if ends else 0
            while end == 0:
                if src.eof:
                    end = len(buf)
                    break
                src.fill(len(buf) * 2)
                buf = src.buf
                ends = csv_record_ends(buf, len(buf), final=src.eof)
                end = ends[-1] if ends else 0
            block = buf[:end]
            count = _count_records(block)
            if count > max_items:
                end = csv_record_ends(block, len(block), final=True)[max_items - 1]
                block = buf[:end]
                count = max_items
            src.buf = buf[end:]
            first = self.line
            self.line += block.count(b"\n")
            if count:
                return RawBlock(block, count, first)

    def close(self) -> None:
        self.src.close()


def decode_csv(
    payload: bytes, first_line: int, spec: DecodeSpec
) -> Iterator[tuple[int, dict[str, str], None]]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + payload.count(b"\n", 0, exc.start)
        raise ItemReaderFailed(cause=f"{spec.source} line {line}: not valid UTF-8 ({exc.reason})") from None
    header = spec.header
    width = len(header)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=spec.delimiter, strict=True)
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
    except csv.Error as exc:
        raise ItemReaderFailed(
            cause=f"{spec.source} line {first_line + reader.line_num - 1}: malformed CSV: {exc}"
        ) from None
