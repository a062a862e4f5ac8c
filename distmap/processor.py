"""The batch executor: runs dispatch chunks inside a worker and returns encoded results.

Everything per-item lives here and in ``distmap.batch``, identical on every backend: decoding
raw input bytes, ItemSelector, ItemBatcher grouping (``batch.selection``), calling the user
function with ASL Retry / Catch / TimeoutSeconds (``batch.attempts``) in lanes, and encoding
result records (``batch.encoding``). Backends only move ``Chunk`` objects in and
``ChunkResult`` objects out (``distmap.contract``).

Where the attempts run (``lanes``, a worker's share of MaxConcurrency):

* sync function, 1 lane: a plain loop in the calling thread (``batch.inline_lane``; the JSONL
  fast path below when nothing else is configured), TimeoutSeconds enforced with ``SIGALRM``;
* sync function, N lanes: N threads that live for the whole run (``batch.thread_lanes``);
* ``async def`` function: N tasks on one event loop thread (``batch.async_lanes``).

With lanes (``concurrent``), ``process`` is thread-safe: a worker calls it for several chunks at
once and they share the lanes, so no chunk waits for another's slow item.

An attempt stopped at TimeoutSeconds ends with ``Error: States.Timeout`` and the cause
``batch.attempts.timeout_cause`` gives; if no retrier or catcher takes it, the child execution is TIMED_OUT
(counted in ``timedOut``, recorded in the FAILED files with ``"Status": "TIMED_OUT"``). An item
function that raises States.Timeout itself (a child workflow's Task that timed out) FAILED.
"""

from __future__ import annotations

import inspect
import threading
import time
import weakref
from collections.abc import Callable
from math import inf
from typing import Any

import orjson

from distmap.batch.async_lanes import AsyncLanes
from distmap.batch.attempts import Attempts, failure_of
from distmap.batch.encoding import (
    FAILED,
    TIMED_OUT,
    ChunkEncoder,
    compact_record,
    not_json_cause,
    set_records,
)
from distmap.batch.executions import Execution, Failed
from distmap.batch.inline_lane import InlineLane, RetryHeap
from distmap.batch.selection import ItemSelection, bad_line_cause, count_mismatch
from distmap.batch.thread_lanes import ThreadLanes
from distmap.contract import Chunk, ChunkResult, ReadError, RunSpec
from distmap.dataflow.values import NOT_JSON, NotJson, check_finite
from distmap.imports import load_function
from distmap.readers.base import block_spec
from distmap.readers.formats import fast_block, fast_lines

__all__ = ["BatchProcessor", "is_coroutine_function", "resolve_function", "runs_async"]

_dumps = orjson.dumps


def resolve_function(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``module:function`` (or pass a callable through), under the import-path rule of
    ``distmap.imports``: only the function's own module may come from the working directory."""
    return load_function(spec)


def is_coroutine_function(fn: Any) -> bool:
    """Whether calling ``fn`` returns an awaitable to run on an event loop (``async def``, or an
    object whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(fn) or (
        not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)
    )


def runs_async(spec: str | Callable[..., Any]) -> bool:
    """Whether the item function ``spec`` names is an ``async def`` one (it is imported)."""
    return is_coroutine_function(resolve_function(spec))


class BatchProcessor:
    """Processes chunks for one map run. Build one per worker process and reuse it."""

    def __init__(
        self,
        spec: RunSpec,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        async_sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.spec = spec
        job = spec.job
        self.fn = resolve_function(job.processor.function)
        self.is_async = is_coroutine_function(self.fn)
        self.attempts = Attempts(job)
        self.selection = ItemSelection(spec)
        self.encoder = ChunkEncoder(spec)
        self.lanes = max(1, spec.lanes)
        self.inline = InlineLane(self.fn, self.attempts, sleep)
        self.async_sleep = async_sleep
        self._engine: ThreadLanes | AsyncLanes | None = None
        self._engine_lock = threading.Lock()
        self._decode_lock = threading.Lock()
        """Chunks side by side decode one at a time, first come first served: under the GIL they
        would only slow each other down, and the lanes start on the first chunk sooner."""

    @property
    def concurrent(self) -> bool:
        """Whether chunks run through lanes, so that ``process`` may run several at once."""
        return self.is_async or self.lanes > 1

    def engine(self) -> ThreadLanes | AsyncLanes:
        """The lanes, started on first use; they live until ``close`` (or this object's end)."""
        with self._engine_lock:
            if self._engine is None:
                if self.is_async:
                    self._engine = AsyncLanes(self.fn, self.lanes, self.attempts, self.async_sleep)
                else:
                    self._engine = ThreadLanes(self.fn, self.lanes, self.attempts)
                weakref.finalize(self, self._engine.close)
            return self._engine

    def start(self) -> None:
        """Start the lanes now, if this run has any (workers call it before their first chunk
        arrives, so the lanes' thread or event loop is up when it does)."""
        if self.concurrent:
            self.engine()

    def close(self) -> None:
        """Stop the lanes (idempotent)."""
        if self._engine is not None:
            self._engine.close()

    # ------------------------------------------------------------------ public entry points
    def process(self, chunk: Chunk) -> ChunkResult:
        """Run every item of ``chunk``; never raises for item errors (they become FAILED records)."""
        t0 = time.perf_counter()
        res = ChunkResult(seq=chunk.seq, items=chunk.block.count)
        if chunk.block.unreadable is not None:  # a local worker could not read the bytes again
            res.reader_error, res.unread = chunk.block.unreadable, chunk.block.count
            return res
        if self._fast_path_ok() and self._process_fast(chunk, res):
            res.busy_seconds = time.perf_counter() - t0
            return res
        if self.concurrent:
            with self._decode_lock:
                executions, error = self.selection.executions(chunk)
        else:
            executions, error = self.selection.executions(chunk)
        if error is not None:
            res.reader_error, res.unread = error.cause, error.unread
        if self.concurrent or (
            self.attempts.timeout is not None and threading.current_thread() is not threading.main_thread()
        ):
            self.engine().run(executions)
        else:
            self.inline.run(executions)
        self.encoder.encode(executions, res)
        res.busy_seconds = time.perf_counter() - t0
        return res

    def failed_result(self, chunk: Chunk, error: str, cause: str) -> ChunkResult:
        """FAILED records for every item of a chunk that could not be run (its worker kept dying)."""
        res = ChunkResult(seq=chunk.seq, items=chunk.block.count)
        executions, read_error = self.selection.executions(chunk)
        if read_error is not None:
            res.reader_error, res.unread = read_error.cause, read_error.unread
        for ex in executions:
            if ex.outcome is None:
                ex.outcome = Failed(error, cause)
        self.encoder.encode(executions, res)
        return res

    def pending_records(self, chunk: Chunk) -> tuple[bytes, int, bytes, ReadError | None]:
        """Encode PENDING records for a chunk that will not run (early stop / abort): the joined
        records, their number, their end offsets (see ``batch.encoding.record_ends``) and the malformed data
        that cut the chunk short, if any."""
        executions, error = self.selection.executions(chunk)
        data, n, ends = self.encoder.pending(executions)
        return data, n, ends, error

    # ------------------------------------------------------------------ the JSONL fast path
    def _fast_path_ok(self) -> bool:
        return (
            fast_lines(self.spec.decode)
            and self.selection.selector is None
            and self.selection.batcher is None
            and not self.concurrent
            and self.attempts.timeout is None
            and self.encoder.transformation in ("NONE", "COMPACT")
        )

    def _process_fast(self, chunk: Chunk, res: ChunkResult) -> bool:
        """The hot loop for the common case (JSONL, no selector/batcher/timeout, one lane).

        Identical results to the general path; an item that raises is handed to the general
        retry/catch machinery (retries wait on a timer heap, not in line). A malformed line ends
        the chunk there, as in the general path: the items before it are run and recorded.
        """
        payload, loads = fast_block(self.spec.decode, chunk.block)  # loads: each line's value, in turn
        source = block_spec(self.spec.decode, chunk.block).source
        dumps, now = _dumps, time.time
        fn = self.fn
        compact = self.encoder.transformation == "COMPACT"  # SUCCEEDED files hold just the outputs
        succeeded = compact_record if compact else self.encoder.records.succeeded_fn()
        failed = self.encoder.records.failed
        ok: list[bytes] = []
        bad: list[bytes] = []
        counts = [0, 0, 0]  # failed, timed out, retries
        waiting = RetryHeap()
        # When the earliest waiting retry is due, on the time.time() clock each item's start is read
        # from: one float comparison per item instead of a heap look-up (the heap's clock is
        # monotonic; the offset between the two only decides when the heap is looked at).
        next_due = inf
        clock_offset = time.time() - time.monotonic()
        deferred: list[Execution] = []
        attempts = self.attempts
        inline = self.inline
        index = chunk.first_index
        end = index + chunk.block.count
        for line in payload.split(b"\n"):
            if not line or line.isspace():
                continue
            if index == end:  # more lines than the splitter counted: never run them (reported below)
                index += 1
                break
            try:
                value = loads(line)
            except orjson.JSONDecodeError as exc:
                res.reader_error = bad_line_cause(source, chunk, index - chunk.first_index, exc)
                res.unread = chunk.block.count - (index - chunk.first_index)
                break
            start = now()
            try:
                out = fn(value)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                error, cause, timed_out = failure_of(exc)
                if attempts.is_final(error):  # no Retry or Catch for it: the record, at once
                    bad.append(failed(index, line.strip(), error, cause, start, now(), timed_out=timed_out))
                    counts[1 if timed_out else 0] += 1
                    index += 1
                    continue
                ex = Execution(index, 1, value, line.strip(), start=start)
                delay = attempts.after_failure(ex, error, cause, timed_out)
                if delay is None:
                    ex.stop = now()
                    self._collect(ex, ok, bad, counts)
                else:
                    waiting.push(ex, delay)
                    deferred.append(ex)
                    next_due = waiting.due() + clock_offset
                index += 1
                continue
            finally:
                if start >= next_due:
                    inline.run_due(waiting, block=False)
                    next_due = waiting.due() + clock_offset if waiting else inf
            try:
                out_json = dumps(out)
                if out_json.find(b"null") != -1:  # where orjson writes NaN and Infinity (find: 2x faster than `in`)
                    check_finite(out)
            except (TypeError, orjson.JSONEncodeError, NotJson) as exc:
                ex = Execution(index, 1, value, line.strip(), start=start, stop=now())
                ex.outcome = Failed(NOT_JSON, not_json_cause(exc))
                self._collect(ex, ok, bad, counts)
                index += 1
                continue
            if compact:  # the record is the output: no StopDate to take
                ok.append(out_json)
            else:
                ok.append(succeeded(index, line.strip(), out_json, start, now()))
            index += 1
        if res.reader_error is None and index - chunk.first_index != chunk.block.count:
            mismatch = count_mismatch(source, chunk, index - chunk.first_index)
            res.reader_error, res.unread = mismatch.cause, mismatch.unread
        inline.run_due(waiting, block=True)
        for ex in deferred:
            self._collect(ex, ok, bad, counts)
        set_records(res, self.spec.record_sep, ok, bad)
        res.items_succeeded = len(ok)
        res.items_failed, res.items_timed_out, res.retries = counts
        return True

    def _collect(self, ex: Execution, ok: list[bytes], bad: list[bytes], counts: list[int]) -> None:
        """Encode one finished execution of the fast path into ``ok`` / ``bad``."""
        kind = self.encoder.encode_one(ex, ok, bad, time.time())
        if kind == FAILED:
            counts[0] += 1
        elif kind == TIMED_OUT:
            counts[1] += 1
        counts[2] += ex.retries
