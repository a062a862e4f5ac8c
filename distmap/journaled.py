"""The coordinator's journaled side: resuming from a journal, committing to it each turn,
applying ``distmap update`` limits, and recording the run's end (a mixin of ``Coordinator``).

Kept apart from the coordinator's read -> dispatch -> collect loop, which calls these at its
seams: after set-up (``_resume_from``), once per turn (``_journal_tick``), when filling the window
(``_below_cap``, ``_capped``, ``_remaining``) and at the end (``_journal_end``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from distmap.checkpoint import DurableRun
from distmap.errors import ResultWriterFailed
from distmap.readers.base import BlockReader
from distmap.run_state import ItemCounts, MapRunResult

if TYPE_CHECKING:
    from distmap.config.model import MapJob
    from distmap.executors.base import Executor


class Journaled:
    """State and methods the coordinator's journal needs (see ``Coordinator.__init__``)."""

    job: MapJob
    durable: DurableRun | None
    executor: Executor
    counts: ItemCounts
    log: Any
    _cap: int | None
    _count_now: bool
    _known_total: int | None
    _read_until: int | None
    _resumed_read_cause: str | None
    _read_stop: Any
    _reader_done: bool
    _next_index: int
    _unread: int
    _chunks_done: int
    _retries: int

    def _sync_total(self) -> None: ...

    @property
    def _resuming(self) -> bool:
        return self.durable is not None and self.durable.done is not None

    def _resume_from(self, reader: BlockReader) -> None:
        """Take a resumed run's counts from its journal and move the reader past its done work."""
        assert self.durable is not None
        done = self.durable.done
        if done is None:
            return
        self._known_total = done.total
        c = done.counts
        self.counts.succeeded, self.counts.failed = c.get("succeeded", 0), c.get("failed", 0)
        self.counts.timed_out = c.get("timedOut", 0)
        self._chunks_done = done.stats.get("chunks", 0)
        self._retries = done.stats.get("retries", 0)
        self._unread = done.stats.get("unread", 0)
        if done.stats.get("readError"):
            self._read_until = done.stats["readUntil"]
            self._resumed_read_cause = done.stats["readError"]
        self._next_index = self.durable.start(reader)
        self._sync_total()
        self.log.info("map_run.resumed", done_items=done.done_items, watermark=done.watermark)

    def _journal_tick(self, *, force: bool = False) -> None:
        """Commit the chunks written since the last turn, and apply ``distmap update`` limits."""
        if self.durable is None:
            return
        c = self.counts.to_dict()
        c["running"] = sum(ch.block.count for ch in self.executor.outstanding())
        stats: dict[str, Any] = {
            "chunks": self._chunks_done,
            "retries": self._retries,
            "unread": self._unread,
        }
        cause = self._read_stop.cause if self._read_stop is not None else self._resumed_read_cause
        if cause is not None and self._read_until is not None:
            stats.update(readError=cause, readUntil=self._read_until)
        checkpoint = self.durable.checkpoint
        if checkpoint is not None and checkpoint.total is None:
            if self._known_total is not None:
                checkpoint.total = self._known_total
            elif self._reader_done and self._read_stop is None:
                checkpoint.total = self._next_index
        update = self.durable.tick(c, stats, force=force)
        if update:
            self._apply_update(update)

    def _journal_end(self, result: MapRunResult) -> None:
        """The run's end in its header (a crash before this leaves it RUNNING: resumable)."""
        assert self.durable is not None
        try:
            self.durable.journal.write_header(
                status=result.status,
                stopDate=result.stop_date,
                error=result.error,
                cause=result.cause,
                itemCounts=result.item_counts.to_dict(),
                manifest=result.manifest,
                pid=None,
            )
        except ResultWriterFailed as exc:
            self.log.warning("map_run.journal_not_written", cause=exc.cause)
        self.durable.journal.close()

    def _remaining(self, max_items: int, index: int) -> int | None:
        """Items that may still be read from ``index`` (None: up to the input's end)."""
        limits = [x - index for x in (max_items or None, self._read_until) if x is not None]
        return min(limits) if limits else None

    def _below_cap(self) -> bool:
        if self._cap is None:
            return True
        return sum(c.block.count for c in self.executor.outstanding()) < self._cap

    def _capped(self, n: int) -> int:
        if self._cap is None:
            return n
        return max(1, min(n, self._cap - sum(c.block.count for c in self.executor.outstanding())))

    def _apply_update(self, update: dict[str, Any]) -> None:
        assert self.durable is not None
        changes: dict[str, Any] = {}
        if update.get("maxConcurrency") is not None:
            self._cap = int(update["maxConcurrency"]) or None
            changes["max_concurrency"] = int(update["maxConcurrency"])
        if "toleratedFailurePercentage" in update:
            changes["tolerated_failure_percentage"] = update["toleratedFailurePercentage"]
            self._count_now = update["toleratedFailurePercentage"] not in (None, 100.0)
        if "toleratedFailureCount" in update:
            changes["tolerated_failure_count"] = update["toleratedFailureCount"]
        self.job = replace(self.job, **changes)
        header = self.durable.header
        header["job"].update(changes)
        self.durable.journal.write_header()
        self.log.info("map_run.updated", **{k: v for k, v in update.items() if k != "at"})
