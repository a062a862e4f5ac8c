"""The coordinator's side of the run journal: what to commit, and where a resumed run reads.

``Checkpoint`` collects the chunks whose records were written since the last commit and, once
per turn of the coordinator's loop, flushes the result files and appends one journal line
covering them (so the line never claims bytes the OS does not have). It remembers the reader's
position at the boundaries of the chunks in flight (O(window)), so the journal can tell a
resumed run where to seek.

``ResumeCursor`` moves a fresh reader past the work a journal says is done: a seek to the last
position at or below the watermark (reading forward past the few items between them), then, at
each committed range above the watermark, a seek past it (or, for a reader that cannot seek, a
read that drops its items). Finished items are never run again, and with a seekable reader
(JSONL, CSV) never read again.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from typing import Any

from distmap.contract import MAX_CHUNK_ITEMS
from distmap.errors import ItemReaderFailed
from distmap.journal import HEADER, HEARTBEAT_SECONDS, JOURNAL, UPDATE, Replay, RunJournal
from distmap.readers.base import BlockReader, reader_seek
from distmap.readers.identity import input_identity
from distmap.results.writer import ResultWriter


class Checkpoint:
    def __init__(self, journal: RunJournal, writer: ResultWriter | None, done: Replay | None = None) -> None:
        self.journal = journal
        self.writer = writer
        self.state = done or Replay()
        self.positions: dict[int, Any] = {}
        """Reader tokens at the boundaries of chunks read and not yet below the watermark."""
        self._ranges: list[list[Any]] = []
        self.total: int | None = self.state.total
        self._total_written = self.total is not None
        if writer is not None:
            writer.keep_parts = True

    def read(self, first: int, count: int, start: Any, end: Any) -> None:
        if start is not None:
            self.positions.setdefault(first, start)
        if end is not None:
            self.positions[first + count] = end

    def done(self, first: int, count: int) -> None:
        """A chunk's records were handed to the writer (not yet durable)."""
        pos = self.positions
        self._ranges.append([first, count, pos.get(first), pos.get(first + count)])

    def commit(self, counts: dict[str, int], stats: dict[str, Any], *, force: bool = False) -> None:
        """Make the chunks done so far durable with their result bytes, or beat the heart."""
        journal = self.journal
        if not self._ranges:
            if force or time.monotonic() - journal.last_line >= HEARTBEAT_SECONDS:
                journal.append(self._extra({"t": "h", "c": counts}))
            return
        line: dict[str, Any] = {"t": "c", "r": self._ranges, "c": counts, "s": stats}
        if self.writer is not None:
            self.writer.flush()  # raises ResultWriterFailed: then nothing is committed
            line["w"] = self.writer.state()
            line["f"] = self.writer.closed_files
        journal.append(self._extra(line))
        if self.writer is not None:
            self.writer.closed_files = []
        state = self.state
        for first, count, start, end in self._ranges:
            state.commit(first, count, start, end)
        self._ranges = []
        wm = state.watermark
        for index in [i for i in self.positions if i < wm]:
            del self.positions[index]

    def _extra(self, line: dict[str, Any]) -> dict[str, Any]:
        if self.total is not None and not self._total_written:
            line["total"] = self.total
            self._total_written = True
        return line


class ResumeCursor:
    """Skips a reader over the items a journal says are done."""

    def __init__(self, done: Replay) -> None:
        self.watermark, self.anchor = done.watermark, done.anchor
        self.above = dict(done.above)  # the run's checkpoint moves ``done`` on from here
        self.starts = deque(sorted(self.above))

    def start(self, reader: BlockReader) -> int:
        """Position ``reader`` at the watermark; returns it (the next item's index)."""
        index, token = self.anchor
        if token is None or not reader_seek(reader, token):
            index = 0
        drop(reader, self.watermark - index)
        return self.watermark

    def limit(self, index: int) -> int | None:
        """How many items may be read from ``index`` before the next done range (None: no limit)."""
        while self.starts and self.starts[0] < index:
            self.starts.popleft()
        return self.starts[0] - index if self.starts else None

    def skip(self, reader: BlockReader, index: int) -> int:
        """At a done range's start: move past it; returns the next index."""
        while self.starts and self.starts[0] == index:
            self.starts.popleft()
            count, end = self.above.pop(index)
            if end is None or not reader_seek(reader, end):
                drop(reader, count)
            index += count
        return index


def drop(reader: BlockReader, n: int) -> None:
    """Read ``n`` items and drop them."""
    while n > 0:
        block = reader.read_block(min(n, MAX_CHUNK_ITEMS), 8 << 20)
        if block is None:
            raise ItemReaderFailed(cause="the input holds fewer items than the run journal says were done")
        n -= block.count


class DurableRun:
    """One run's journal as the coordinator drives it: opening (fresh or resumed), reading past
    done work, committing, limit updates, the final status."""

    def __init__(self, run_dir: Any, header: dict[str, Any], done: Replay | None = None) -> None:
        self.dir = run_dir
        self.journal = RunJournal(run_dir, header)
        self.done = done
        self.checkpoint: Checkpoint | None = None
        self.cursor = ResumeCursor(done) if done is not None else None
        self._last_update_check = 0.0

    @property
    def header(self) -> dict[str, Any]:
        return self.journal.header

    def open(self, writer: ResultWriter | None, reader_config: Any = None) -> None:
        """Open the journal (after the reader and the writer opened): a new run records its
        input's identity now."""
        if self.header.get("input") is None and reader_config is not None:
            self.header["input"] = input_identity(reader_config)
        if self.done is not None and writer is not None:
            writer.restore(self.done.writer, self.done.closed)
        self.journal.open(resume=self.done is not None)
        self.checkpoint = Checkpoint(self.journal, writer, self.done)

    def discard(self) -> None:
        """A new run that could not start (its backend, say): remove its journal, so nothing is
        left behind; a resumed run keeps its own."""
        self.journal.close()
        if self.done is not None or self.checkpoint is None:
            return  # resumed, or never opened (the directory may hold another run's journal)
        for name in (HEADER, JOURNAL, UPDATE):
            (self.dir / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.dir.rmdir()  # only if empty (no ResultWriter: the state directory's run dir)

    def start(self, reader: BlockReader) -> int:
        """The index the run reads from (past the done items of a resumed run)."""
        return self.cursor.start(reader) if self.cursor is not None else 0

    def before_read(self, reader: BlockReader, index: int, n: int) -> tuple[int, int]:
        """Skip done ranges at ``index``; returns the index and how many items to read at most."""
        if self.cursor is None:
            return index, n
        index = self.cursor.skip(reader, index)
        gap = self.cursor.limit(index)
        return index, n if gap is None else max(1, min(n, gap))

    def tick(
        self, counts: dict[str, int], stats: dict[str, Any], *, force: bool = False
    ) -> dict[str, Any] | None:
        """Commit what is done (or a heartbeat); about once a second, the limits asked for by
        ``distmap update`` since the last look (None when none)."""
        assert self.checkpoint is not None
        self.checkpoint.commit(counts, stats, force=force)
        now = time.monotonic()
        if now - self._last_update_check < 0.5:
            return None
        self._last_update_check = now
        return self.journal.read_update()
