"""``s3:listObjectsV2`` items: one per object under a prefix (or in a local directory).

Each item has the fields and spellings AWS's Distributed Map gives it::

    {"Etag": "\\"05704fbdccb224cb01c59005bebbad28\\"", "Key": "images/n02085620_1073.jpg",
     "LastModified": 1668699881, "Size": 34910, "StorageClass": "STANDARD"}

(``Etag``, not S3's ``ETag``; ``LastModified`` in seconds since the epoch.) The listing is read a
page (1,000 keys) at a time, as blocks are asked for, so a listing of millions of keys holds one
page in memory. Blocks are the items as JSON lines: workers decode them as JSONL.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from distmap.readers.base import RawBlock
from distmap.readers.sources import Listed, list_objects


def listing_item(obj: Listed) -> dict[str, object]:
    return {
        "Etag": obj.etag,
        "Key": obj.key,
        "LastModified": obj.last_modified,
        "Size": obj.size,
        "StorageClass": obj.storage_class,
    }


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
        dumps = orjson.dumps
        while len(lines) < max_items and size < target_bytes:
            obj, self._first = (
                (self._first, None) if self._first is not None else (next(self._objects, None), None)
            )
            if obj is None:
                break
            line = dumps(listing_item(obj))
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
