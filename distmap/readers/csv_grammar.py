"""Where CSV records end: one grammar shared by the coordinator's splitter and the workers' parser.

The reference is Python's ``csv`` module with ``strict=True`` and ``escapechar='\\'`` (AWS's CSV
dialect: RFC 4180 quoting, ``""`` inside quotes, and backslash escapes), so splitting bytes into
records on the coordinator and parsing them in a worker can never disagree:

* a record ends at an unquoted, unescaped ``\\r\\n``, ``\\r`` or ``\\n``;
* a field that starts with ``"`` is quoted up to the closing ``"`` (``""`` and ``\\"`` are literal
  quotes); after the closing quote only a delimiter or the end of the line may follow;
* a ``"`` in the middle of an unquoted field is an ordinary character;
* a backslash makes the next character literal (a delimiter, quote, newline or backslash);
* an empty record (a bare line terminator) is not an item; any other record is, even one made of
  spaces only.

:func:`scan` walks a buffer record by record. Blocks without quotes, backslashes, lone ``\\r`` and
empty lines (nearly all large files) take a fast path of ``bytes.count`` / ``rfind``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MAX_RECORD_BYTES = 256 << 20
"""A single record larger than this fails the run instead of filling memory (an unclosed quote
usually)."""


@dataclass(slots=True)
class Scan:
    end: int
    """Offset just past the last whole record taken (0 = none)."""
    items: int
    """Item records (non-empty) in ``buf[:end]``."""
    error: str | None = None
    """Malformed data right at ``end`` (what is wrong there)."""
    error_at: int = 0
    """Offset of the offending byte when ``error`` is set."""


@functools.lru_cache(maxsize=16)
def _grammar(delimiter: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    d = re.escape(delimiter.encode())
    quoted = rb'"(?:[^"\\]++|\\[\s\S]|"")*+"'
    unquoted = rb'(?:[^"' + d + rb"\r\n\\]|\\[\s\S])(?:[^" + d + rb"\r\n\\]++|\\[\s\S])*+"
    field = rb"(?:" + quoted + rb"|" + unquoted + rb")?"
    fields = field + rb"(?:" + d + field + rb")*+"
    record = re.compile(fields + rb"(?:\r\n|\r|\n)")
    # the longest valid start of a record: ends where the data is malformed, or at the buffer's
    # end (the record is incomplete); group 1 is a quoted field still open at that end, group 2 a
    # dangling backslash
    prefix = re.compile(fields + rb'(?:("(?:[^"\\]++|\\[\s\S]|"")*+\\?)|(\\))?')
    return record, prefix


def line_breaks(data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None) -> int:
    """Lines ended in ``data[start:end]``: ``\\r\\n``, ``\\r`` and ``\\n`` each end one (as Python's
    universal newlines count them)."""
    view = data[start:end] if (start or end is not None) else data
    return view.count(b"\n") + view.count(b"\r") - view.count(b"\r\n")


def _fast(window: bytes, max_items: int) -> Scan | None:
    """The no-quote, no-escape, no-empty-line case, or None when it does not apply."""
    if b'"' in window or b"\\" in window:
        return None
    if window[:1] in (b"\n", b"\r") or b"\n\n" in window:
        return None
    if b"\r" in window:
        crlf = window.count(b"\r\n")
        if window.count(b"\r") != crlf or b"\n\r\n" in window:
            return None
    cut = window.rfind(b"\n") + 1
    if cut == 0:
        return None
    n = window.count(b"\n", 0, cut)
    if n > max_items:
        pos = -1
        find = window.find
        for _ in range(max_items):
            pos = find(b"\n", pos + 1)
        cut, n = pos + 1, max_items
    return Scan(cut, n)


def scan(buf: bytes, delimiter: str, *, max_items: int, limit: int, eof: bool) -> Scan:
    """Take whole records from the start of ``buf``.

    Stops after ``max_items`` items, before the first record that would end past ``limit`` bytes
    (unless nothing was taken yet), at data that cannot be a record (``error``), or at a record
    that is still incomplete where ``buf`` ends. With ``eof`` a last record without a line
    terminator is whole, and an incomplete one is an error.
    """
    fast = _fast(buf[: min(limit, len(buf))], max_items)
    if fast is not None:
        return fast
    record, prefix = _grammar(delimiter)
    size = len(buf)
    pos = items = 0
    match = record.match
    while items < max_items:
        m = match(buf, pos)
        if m is not None:
            end = m.end()
            if end > limit and pos > 0:
                break
            if end == size and buf[end - 1] == 13 and not eof:
                break  # a '\r' at the buffer's end may be the first half of '\r\n'
            if buf[pos] not in (10, 13):
                items += 1
            pos = end
            continue
        if pos == size:
            break
        p = prefix.match(buf, pos)
        assert p is not None  # every alternative may match empty
        stop = p.end()
        if stop < size:
            found = buf[stop : stop + 1].decode("latin-1")
            return Scan(
                pos,
                items,
                f"after a closing quote, expected a delimiter or a line end, found {found!r}",
                stop,
            )
        if not eof:
            break  # incomplete: the caller reads more
        if p.group(1) is not None:
            return Scan(pos, items, "a quoted field is not closed before the end of the file", p.start(1))
        if p.group(2) is not None:
            return Scan(pos, items, "the file ends with an escape character (backslash)", p.start(2))
        items += 1  # the last record, without a line terminator
        pos = size
        break
    return Scan(pos, items)
