"""A JSON file holding one array; each element is an item. Streamed: the array is never loaded whole.

The coordinator only finds element boundaries (strings are skipped whole by one regex, then
brackets and commas are counted); each element's text is parsed by a worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from distmap.errors import ItemReaderFailed
from distmap.readers.base import ByteSource, RawBlock

# A whole string is one token. The unrolled, possessive form keeps the regex engine's memory flat
# however long the string (an alternation under ``*`` cost ~100 bytes per byte of string).
_TOKEN = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"|"|[\[\]{},]', re.DOTALL)
_STRING_BODY = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)
NOT_AN_ARRAY = "Attempting to map over non-iterable node."  # AWS's cause text
_WS = b" \t\r\n"


class JsonArrayReader:
    header: tuple[str, ...] = ()

    def __init__(self, uri: str) -> None:
        self.src = ByteSource(uri)
        self.uri = uri
        self.line = 1  # line number at src.buf[0]
        self.depth = 0  # nesting depth at src.buf[0] (1 = inside the top-level array)
        self.done = False
        self._start()

    @property
    def bytes_read(self) -> int:
        return self.src.bytes_read

    def _fail(self, line: int, what: str) -> ItemReaderFailed:
        return ItemReaderFailed(cause=f"{self.uri} line {line}: {what}")

    def _start(self) -> None:
        src = self.src
        src.fill(4096)
        buf = src.buf.lstrip(_WS)
        skipped = src.buf[: len(src.buf) - len(buf)]
        self.line += skipped.count(b"\n")
        if not buf:
            raise self._fail(self.line, "the file is empty; expected a JSON array")
        if buf[:1] != b"[":
            found = buf[:1].decode(errors="replace")
            raise ItemReaderFailed(
                cause=f"{NOT_AN_ARRAY} ({self.uri} line {self.line}: expected a JSON array, found {found!r})"
            )
        src.buf = buf[1:]
        self.depth = 1

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        if self.done:
            return None
        src = self.src
        items: list[bytes] = []
        lines: list[int] = []
        size = 0
        while len(items) < max_items and size < target_bytes and not self.done:
            src.fill(max(target_bytes, 1 << 16))
            buf = src.buf
            depth = self.depth
            elem_start = 0  # element text runs from here to the next depth-1 comma / closing bracket
            consumed = 0
            progressed = False
            open_string = -1
            for m in _TOKEN.finditer(buf):
                tok = m.group()
                c = tok[:1]
                if c == b'"':
                    if len(tok) == 1:
                        open_string = m.start()  # the string goes on past the buffer
                        break
                    continue
                if c in b"[{":
                    depth += 1
                    continue
                if c in b"]}":
                    depth -= 1
                    if depth > 0:
                        continue
                    # end of the top-level array
                    text = _trimmed(buf, elem_start, m.start())
                    if text:
                        lines.append(self.line + buf.count(b"\n", 0, elem_start + _lead(buf, elem_start)))
                        items.append(text)
                    elif items and consumed_trailing_comma(buf, elem_start):
                        raise self._fail(
                            self.line + buf.count(b"\n", 0, m.start()), "trailing comma before ']'"
                        )
                    rest = buf[m.end() :]
                    src.fill(len(buf) + 1)
                    tail = src.buf[m.end() :] if len(src.buf) > len(buf) else rest
                    if tail.strip(_WS):
                        raise self._fail(
                            self.line + buf.count(b"\n", 0, m.end()), "unexpected data after the closing ']'"
                        )
                    self.done = True
                    consumed = len(src.buf)
                    progressed = True
                    break
                # comma
                if depth == 1:
                    text = _trimmed(buf, elem_start, m.start())
                    if not text:
                        raise self._fail(
                            self.line + buf.count(b"\n", 0, m.start()), "expected a value before ','"
                        )
                    lines.append(self.line + buf.count(b"\n", 0, elem_start + _lead(buf, elem_start)))
                    items.append(text)
                    size += len(text)
                    elem_start = consumed = m.end()
                    progressed = True
                    if len(items) >= max_items or size >= target_bytes:
                        break
            if self.done:
                src.buf = b""
                break
            if consumed:
                self.line += buf.count(b"\n", 0, consumed)
                src.buf = buf[consumed:]
                self.depth = 1
            if not progressed:
                if src.eof:
                    raise self._fail(self.line, "unexpected end of file inside the JSON array (missing ']')")
                if open_string >= 0:
                    self._read_through_string(open_string)
                else:
                    src.fill(len(src.buf) * 2)
        if not items:
            return None
        return RawBlock(items, len(items), lines[0], lines)

    def _read_through_string(self, start: int) -> None:
        """Read until the string opened at ``buf[start]`` is closed (or the input ends), joining
        what was read once: a long string costs about twice its size, not a doubling buffer's
        re-reads and copies."""
        src = self.src
        parts = [src.buf]
        escaped = False
        offset = start + 1
        chunk = src.buf
        while True:
            m = _STRING_BODY.match(chunk, offset + (1 if escaped else 0))
            end = m.end() if m is not None else offset
            if end < len(chunk) and chunk[end] == 0x22:  # the closing quote
                break
            escaped = end < len(chunk)  # stopped at a lone backslash at the end of the chunk
            if src.eof:
                break
            chunk = src.read_more()
            if not chunk:
                break
            parts.append(chunk)
            offset = 0
        if len(parts) > 1:
            src.buf = b"".join(parts)

    def close(self) -> None:
        self.src.close()


def _trimmed(buf: bytes, start: int, end: int) -> bytes:
    """``buf[start:end]`` without surrounding whitespace, copied once (an element can be huge)."""
    start += _lead(buf, start, end)
    while end > start and buf[end - 1] in _WS:
        end -= 1
    return buf[start:end]


def _lead(buf: bytes, start: int, end: int | None = None) -> int:
    """Bytes of whitespace at ``buf[start:]``."""
    n = 0
    stop = len(buf) if end is None else end
    while start + n < stop and buf[start + n] in _WS:
        n += 1
    return n


def consumed_trailing_comma(buf: bytes, elem_start: int) -> bool:
    return elem_start > 0 and buf[elem_start - 1 : elem_start] == b","


def decode_json_elements(
    elements: list[bytes], lines: list[int], source: str
) -> Iterator[tuple[int, Any, bytes]]:
    loads = orjson.loads
    for i, text in enumerate(elements):
        try:
            value = loads(text)
        except orjson.JSONDecodeError as exc:
            line = lines[i] if i < len(lines) else 0
            raise ItemReaderFailed(
                cause=f"{source} line {line}: invalid JSON in array element: {exc}"
            ) from None
        yield (lines[i] if i < len(lines) else 0), value, text


# ---------------------------------------------------------------- the format's entry points


def open_file(uri: str, cfg: Any) -> JsonArrayReader:
    return JsonArrayReader(uri)


def decode(spec: Any, block: RawBlock) -> Iterator[tuple[int, Any, bytes]]:
    return decode_json_elements(block.payload, block.lines or [], spec.source)  # type: ignore[arg-type]


def split(spec: Any, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    payload = block.payload
    assert isinstance(payload, list)
    lines = block.lines or [block.first_line] * len(payload)
    return (
        RawBlock(payload[:n], n, lines[0], lines[:n]),
        RawBlock(payload[n:], block.count - n, lines[n] if n < len(lines) else lines[-1], lines[n:]),
    )
