"""JSON Lines: one JSON value per line; JSON types are kept; whitespace-only lines are skipped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson

from distmap.errors import ItemReaderFailed
from distmap.readers.base import ByteSource, RawBlock

_WS = b" \t\r\n\x0b\x0c"
# A whitespace-only line can only exist if a newline is followed by whitespace (or the block
# starts with it). One regex search finds that at memchr speed; only blocks that contain such a
# spot pay for a per-line scan.
_BLANK_SPOT = re.compile(rb"\n[\n\r\t \x0b\x0c]")


def count_items(block: bytes) -> int:
    """Number of non-blank lines in ``block``."""
    if not block:
        return 0
    if _has_blank(block):
        return sum(1 for line in block.split(b"\n") if line.strip())
    return block.count(b"\n") + (0 if block.endswith(b"\n") else 1)


def _has_blank(block: bytes) -> bool:
    return bool(block) and (block[0] in _WS or _BLANK_SPOT.search(block) is not None)


def jsonl_nth_end(block: bytes, n: int) -> int:
    """Offset just past the ``n``-th non-blank line."""
    if _has_blank(block):
        return jsonl_item_ends(block, n)[-1]
    size = len(block)
    total = block.count(b"\n")
    if n <= 0 or total < n:
        return size if n > 0 else 0
    # Guess from the average line length, count the newlines before the guess (C speed), then
    # step the few lines between the guess and the n-th newline: no Python loop over every line.
    guess = size * n // total
    k = block.count(b"\n", 0, guess)  # newlines in block[:guess]
    if k < n:
        pos = guess - 1
        for _ in range(n - k):
            pos = block.find(b"\n", pos + 1)
    else:
        pos = block.rfind(b"\n", 0, guess)  # the k-th newline
        for _ in range(k - n):
            pos = block.rfind(b"\n", 0, pos)
    return pos + 1


def jsonl_item_ends(block: bytes, n: int) -> list[int]:
    """End offsets (just past the newline) of the first ``n`` non-blank lines."""
    ends: list[int] = []
    pos = 0
    size = len(block)
    while pos < size and len(ends) < n:
        nl = block.find(b"\n", pos)
        end = size if nl == -1 else nl + 1
        if block[pos:end].strip():
            ends.append(end)
        pos = end
    return ends


class JsonlReader:
    """Cuts a JSONL stream into blocks of whole lines."""

    header: tuple[str, ...] = ()

    def __init__(self, uri: str) -> None:
        self.src = ByteSource(uri)
        self.line = 1

    @property
    def bytes_read(self) -> int:
        return self.src.bytes_read

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        src = self.src
        while True:
            src.fill(target_bytes)
            buf = src.buf
            if not buf:
                return None
            limit = min(len(buf), target_bytes)
            cut = buf.rfind(b"\n", 0, limit)
            while cut == -1:
                cut = buf.find(b"\n", limit)
                if cut != -1:
                    break
                if src.eof:
                    cut = len(buf) - 1  # last line, no trailing newline
                    break
                limit = len(buf)
                src.fill(len(buf) * 2)
                buf = src.buf
            end = cut + 1
            block = buf[:end]
            count = count_items(block)
            if count > max_items:
                end = jsonl_nth_end(block, max_items)
                block = buf[:end]
                count = max_items
            span = src.tell() if src.plain_local else None  # where ``block`` starts in the file
            src.buf = buf[end:]
            first = self.line
            self.line += block.count(b"\n")
            if count:
                return RawBlock(block, count, first, span=span)
            # only blank lines: keep reading

    def tell(self) -> dict[str, int]:
        return {"o": self.src.tell(), "l": self.line}

    def seek(self, token: dict[str, int]) -> None:
        self.src.seek(token["o"])
        self.line = token["l"]

    def close(self) -> None:
        self.src.close()


def decode_jsonl(payload: bytes, first_line: int, source: str) -> Iterator[tuple[int, Any, bytes]]:
    loads = orjson.loads
    line_no = first_line
    for line in payload.split(b"\n"):
        if line and not line.isspace():
            try:
                value = loads(line)
            except orjson.JSONDecodeError as exc:
                raise ItemReaderFailed(cause=f"{source} line {line_no}: invalid JSON: {exc}") from None
            yield line_no, value, line
        line_no += 1


# ---------------------------------------------------------------- the format's entry points


def open_file(uri: str, cfg: Any) -> JsonlReader:
    return JsonlReader(uri)


def decode(spec: Any, block: RawBlock) -> Iterator[tuple[int, Any, bytes]]:
    return decode_jsonl(block.payload, block.first_line, spec.source)  # type: ignore[arg-type]


def split(spec: Any, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    payload = block.payload
    assert isinstance(payload, bytes)
    cut = jsonl_item_ends(payload, n)[n - 1]
    lines = payload.count(b"\n", 0, cut)
    return RawBlock(payload[:cut], n, block.first_line), RawBlock(
        payload[cut:], block.count - n, block.first_line + lines
    )
