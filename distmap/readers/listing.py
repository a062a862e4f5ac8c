"""``s3:listObjectsV2`` items: one per object under a prefix (or in a local directory).

Each item has the fields and spellings AWS's Distributed Map gives it::

    {"Etag": "\\"05704fbdccb224cb01c59005bebbad28\\"", "Key": "images/n02085620_1073.jpg",
     "LastModified": 1.668699881E9, "Size": 34910, "StorageClass": "STANDARD"}

(``Etag``, not S3's ``ETag``, with its quotes; ``LastModified`` in seconds since the epoch, written
as AWS writes it in a child execution's input: a floating-point number in Java's notation, so an
item function gets a float.) The listing is read a page (1,000 keys) at a time, as blocks are asked
for, so a listing of millions of keys holds one page in memory. Blocks are the items as JSON lines:
workers decode them as JSONL.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from distmap.readers.base import RawBlock
from distmap.readers.sources import Listed, list_objects


def java_seconds(seconds: int) -> bytes:
    """Whole seconds as Java's ``Double.toString`` writes them: ``1.668699881E9``, ``1.7E9``,
    ``86400.0`` (below 10^7 without an exponent)."""
    sign, n = ("-", -seconds) if seconds < 0 else ("", seconds)
    if n < 10_000_000:
        return f"{sign}{n}.0".encode()
    digits = str(n)
    tail = digits[1:].rstrip("0") or "0"
    return f"{sign}{digits[0]}.{tail}E{len(digits) - 1}".encode()


def item_line(obj: Listed) -> bytes:
    """One listing item as a JSON line, fields in AWS's order."""
    dumps = orjson.dumps
    return b'{"Etag":%s,"Key":%s,"LastModified":%s,"Size":%d,"StorageClass":%s}' % (
        dumps(obj.etag),
        dumps(obj.key),
        java_seconds(obj.last_modified),
        obj.size,
        dumps(obj.storage_class),
    )


class ListingReader:
    header: tuple[str, ...] = ()

    def __init__(self, source: str, params: tuple[tuple[str, str], ...] = ()) -> None:
        self.source = source
        self._objects: Iterator[Listed] = list_objects(source, params)
        # the first page is fetched now: a listing that cannot be made fails before any work
        self._first: Listed | None = next(self._objects, None)
        self.line = 1
        self.bytes_read = 0

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        lines: list[bytes] = []
        size = 0
        while len(lines) < max_items and size < target_bytes:
            obj, self._first = (
                (self._first, None) if self._first is not None else (next(self._objects, None), None)
            )
            if obj is None:
                break
            line = item_line(obj)
            lines.append(line)
            size += len(line) + 1
        if not lines:
            return None
        payload = b"\n".join(lines) + b"\n"
        self.bytes_read += len(payload)
        first = self.line
        self.line += len(lines)
        return RawBlock(payload, len(lines), first, source=f"{self.source} (listObjectsV2)")

    def close(self) -> None:
        close = getattr(self._objects, "close", None)
        if close is not None:
            close()
