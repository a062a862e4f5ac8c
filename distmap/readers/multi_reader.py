"""Several objects read as one stream of items: a directory, a glob, a prefix, a manifest's files.

Each object is read in turn by its format's own splitter, opened only when the previous one is
done, so memory stays that of one reader whatever the number of files. A block never spans two
files; it carries the file's name (and, for CSV, the file's header) so a worker's error names
the file and the line in that file. Item indexes run on across files.

An empty object (0 bytes) holds no items, whatever the format (AWS is silent; a JSON or CSV
reader would otherwise call it malformed). Any other error ends the stream, naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from distmap.errors import ItemReaderFailed
from distmap.readers.base import BlockReader, RawBlock


class MultiReader:
    header: tuple[str, ...] = ()
    decode_type: str | None = None
    """The format workers decode, when the configuration does not say it (see formats.decode_format)."""

    def __init__(self, objects: Iterator[str], open_one: Callable[[str], BlockReader]) -> None:
        self.objects = objects
        self.open_one = open_one
        self.current: BlockReader | None = None
        self.current_name = ""
        self._done_bytes = 0
        self.files = 0
        try:
            self._next()  # the first object is opened now: a source that cannot be read fails before any work
        except BaseException:
            self.close()
            raise

    @property
    def bytes_read(self) -> int:
        return self._done_bytes + (self.current.bytes_read if self.current is not None else 0)

    def _next(self) -> bool:
        from distmap.readers.sources import ObjectUri

        for uri in self.objects:
            self.files += 1
            if _is_empty(uri):
                continue
            self.current = self.open_one(uri if isinstance(uri, ObjectUri) else ObjectUri(uri))
            self.current_name = str(uri)
            return True
        return False

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        while True:
            if self.current is None and not self._next():
                return None
            assert self.current is not None
            block = self.current.read_block(max_items, target_bytes)
            if block is None:
                self._close_current()
                continue
            block.source = self.current_name
            header = tuple(self.current.header)
            block.header = header if header else None
            return block

    def tell(self) -> dict[str, object] | None:
        """Where the stream stands: the current file's number (1-based, in key order), its name and
        the position inside it; None when its format cannot tell."""
        from distmap.readers.base import reader_tell

        if self.current is None:
            return {"f": self.files, "u": None, "p": None}
        inner = reader_tell(self.current)
        return None if inner is None else {"f": self.files, "u": self.current_name, "p": inner}

    def seek(self, token: dict[str, object]) -> None:
        """Continue at a ``tell`` token: skip the files before it unopened, seek inside it."""
        from distmap.readers.base import reader_seek
        from distmap.readers.sources import ObjectUri

        target = int(token["f"])  # type: ignore[call-overload]
        if target < self.files or (target == self.files and token["u"] not in (None, self.current_name)):
            raise ItemReaderFailed(cause=f"cannot seek back to file {target} of the input")
        if target > self.files:
            self._close_current()
            for uri in self.objects:
                self.files += 1
                if self.files == target and token["u"] is None:
                    break  # that file was done: the next one opens on the next read
                if self.files == target:
                    if str(uri) != token["u"]:
                        raise ItemReaderFailed(
                            cause=f"the input changed: file {target} is now {uri}, it was {token['u']}"
                        )
                    self.current = self.open_one(uri if isinstance(uri, ObjectUri) else ObjectUri(uri))
                    self.current_name = str(uri)
                    break
        if token["p"] is not None and self.current is not None:
            reader_seek(self.current, token["p"])

    def _close_current(self) -> None:
        if self.current is not None:
            self._done_bytes += self.current.bytes_read
            self.current.close()
            self.current = None

    def close(self) -> None:
        self._close_current()
        close = getattr(self.objects, "close", None)
        if close is not None:
            close()


def _is_empty(uri: str) -> bool:
    """A zero-byte object: its listed size, or a local file's size."""
    size = getattr(uri, "size", None)
    if size is not None:
        return size == 0
    if "://" not in uri:
        try:
            return os.path.getsize(uri) == 0
        except OSError:
            return False  # the reader reports it
    return False
