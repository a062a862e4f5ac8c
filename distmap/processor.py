"""The batch executor: runs one dispatch chunk inside a worker and returns encoded results.

Everything per-item lives here, identical on every backend: decoding raw input bytes,
ItemSelector, ItemBatcher grouping, calling the user function with ASL Retry / Catch /
TimeoutSeconds, and encoding result records. Backends only move ``Chunk`` objects in and
``ChunkResult`` objects out.

Concurrency inside one worker (``lanes``, from MaxConcurrency):

* sync function, 1 lane, no timeout: a plain loop in the worker's main thread (fastest);
* sync function, 1 lane, TimeoutSeconds: same loop, timed out with ``SIGALRM``;
* sync function, N lanes: N threads pull executions from the chunk; a watchdog in the calling
  thread sleeps until the earliest attempt deadline, interrupts an overdue attempt, and abandons
  its lane if it has not stopped ``ABANDON_GRACE`` later (blocked in C code; its late result is
  discarded), so a hung item never stalls the run and times out on time;
* ``async def`` function: N tasks on one event loop; an attempt past its deadline is cancelled
  and left to unwind on its own (the item does not wait for its cleanup).

An attempt stopped at TimeoutSeconds ends with ``Error: States.Timeout`` and the cause
``timeout_cause`` gives; if no retrier or catcher takes it, the child execution is TIMED_OUT
(counted in ``timedOut``, recorded in the FAILED files with ``"Status": "TIMED_OUT"``). An item
function that raises States.Timeout itself (a child workflow's Task that timed out) FAILED.
"""

from __future__ import annotations

import ctypes
import heapq
import inspect
import itertools
import os
import queue
import signal
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from distmap.config.model import MapJob
from distmap.dataflow.jsonpath import compile_result_path
from distmap.dataflow.templates import compile_payload
from distmap.dataflow.values import NOT_JSON, NotJson, check_finite
from distmap.errors import ItemReaderFailed, StatesError, Timeout, classify, error_matches
from distmap.imports import load_function
from distmap.readers.base import DecodeSpec, RawBlock, block_spec, decode_block
from distmap.readers.formats import fast_lines, json_lines
from distmap.records import RecordEncoder, RecordIdentity
from distmap.retry import AttemptState, RetryPolicy
from distmap.storage import redact

_dumps = orjson.dumps

#: How long an interrupted attempt gets to leave Python code before the watchdog abandons its
#: lane (it is blocked in C code). A thread running Python gets the exception within the GIL's
#: switch interval (5 ms), a few of them when many threads are busy.
ABANDON_GRACE = 0.05
#: The longest the lane watchdog sleeps between scans, whatever the deadlines.
WATCHDOG_MAX_SLEEP = 0.05


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a worker needs to process chunks of one map run. Picklable."""

    job: MapJob
    decode: DecodeSpec
    identity: RecordIdentity
    lanes: int
    """Items in flight inside one worker."""
    record_sep: bytes
    context: dict[str, Any] = field(default_factory=dict)
    """The context object (``$$``) minus ``Map.Item``."""
    workdir: str | None = None
    """The coordinator's working directory: item functions' modules are loaded from there."""
    mask_causes: bool = True
    """Mask credentials in the ``Cause`` of FAILED records (``distmap.storage.redact``)."""


@dataclass(slots=True)
class Chunk:
    """The unit of dispatch: consecutive items, as raw bytes."""

    seq: int
    first_index: int
    block: RawBlock
    crashes: int = 0
    reruns: int = 0
    """Times re-run after its worker was lost while it was only queued (not to blame)."""


@dataclass(slots=True)
class ChunkResult:
    seq: int
    items: int = 0
    succeeded: bytes = b""
    failed: bytes = b""
    succeeded_records: int = 0
    failed_records: int = 0
    succeeded_ends: bytes = b""
    """End offset of each record in ``succeeded`` (``record_ends``)."""
    failed_ends: bytes = b""
    items_succeeded: int = 0
    items_failed: int = 0
    items_timed_out: int = 0
    retries: int = 0
    reader_error: str | None = None
    """The cause of ``States.ItemReaderFailed`` when the block held malformed data: the items
    before it were run as usual, the rest of the block (``unread``) was not read."""
    unread: int = 0
    busy_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ReadError:
    """Malformed data inside a block: ``unread`` of its items (the bad one on) could not be read."""

    cause: str
    unread: int


class _AlarmTimeout(BaseException):
    """Raised by SIGALRM / the watchdog inside a running item. BaseException so that a user's
    ``except Exception`` cannot swallow it."""


def timeout_cause(seconds: float, *, batch: bool = False, abandoned: bool = False) -> str:
    """The ``Cause`` of a child execution stopped at TimeoutSeconds. (AWS records ``States.Timeout``
    with no cause for a Task timeout; the cause field is shown to users, so distmap says what
    happened.)"""
    what = "batch" if batch else "item"
    cause = f"the {what} did not finish within TimeoutSeconds ({seconds:g} s)"
    if abandoned:
        cause += "; it did not stop when interrupted (code blocked outside Python cannot), so its thread was left running"
    return cause


def resolve_function(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``module:function`` (or pass a callable through), under the import-path rule of
    ``distmap.imports``: only the function's own module may come from the working directory."""
    return load_function(spec)


@dataclass(slots=True)
class _Execution:
    """One child execution: a single item, or one ItemBatcher batch."""

    index: int
    items: int
    input: Any
    input_json: bytes | None  # the input's JSON text when already known (raw JSONL line)
    state: AttemptState | None = None
    start: float = 0.0
    stop: float = 0.0
    outcome: tuple | None = None  # ("ok", output) | ("fail" | "timeout", error, cause)


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
        self.is_async = inspect.iscoroutinefunction(self.fn) or inspect.iscoroutinefunction(
            type(self.fn).__call__ if not inspect.isroutine(self.fn) else None
        )
        self.timeout = job.processor.timeout_seconds
        if self.timeout is not None:
            batch = job.item_batcher is not None
            self.timeout_cause = timeout_cause(self.timeout, batch=batch)
            self.abandoned_cause = timeout_cause(self.timeout, batch=batch, abandoned=True)
        self.policy = RetryPolicy(job.processor.retry)
        self.catchers = job.processor.catch
        self.selector = (
            compile_payload(job.item_selector, where="ItemSelector")
            if job.item_selector is not None
            else None
        )
        self.catch_setters = [compile_result_path(c.result_path) for c in self.catchers]
        self.batcher = job.item_batcher
        self.encoder = RecordEncoder(
            spec.identity,
            job.result_writer.transformation if job.result_writer else "NONE",
            mask_cause=redact if spec.mask_causes else None,
        )
        self.flatten = bool(job.result_writer and job.result_writer.transformation == "FLATTEN")
        self.sleep = sleep
        self.async_sleep = async_sleep  # asyncio.sleep when None (asyncio is imported only if needed)
        self.lanes = max(1, spec.lanes)
        self._loop: Any = None
        self._unwinding: set[Any] = set()
        """Tasks of timed-out async attempts that have not finished unwinding."""
        self._retries = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ building executions
    def _executions(self, chunk: Chunk) -> tuple[list[_Execution], ReadError | None]:
        """Decode a chunk into executions. Malformed data ends the list: the items before it
        are returned with a ``ReadError`` saying how many of the chunk's items were not read."""
        spec = self.spec
        selector = self.selector
        state_input = spec.job.input
        base_ctx = spec.context
        out: list[_Execution] = []
        index = chunk.first_index
        error: ReadError | None = None
        try:
            for _line, value, raw in decode_block(spec.decode, chunk.block):
                if selector is not None:
                    ctx = dict(base_ctx)
                    ctx["Map"] = {"Item": {"Index": index, "Value": value}}
                    try:
                        child = selector(state_input, ctx)
                    except StatesError as exc:
                        out.append(_Execution(index, 1, value, None, outcome=("fail", exc.error, exc.cause)))
                        index += 1
                        continue
                    out.append(_Execution(index, 1, child, None))
                else:
                    out.append(_Execution(index, 1, value, raw.strip() if raw is not None else None))
                index += 1
        except ItemReaderFailed as exc:
            error = ReadError(exc.cause, chunk.block.count - len(out))
        if error is None and len(out) != chunk.block.count:  # the splitter and the parser disagree
            error = _count_mismatch(block_spec(spec.decode, chunk.block).source, chunk, len(out))
            del out[chunk.block.count :]
        if self.batcher is None:
            return out, error
        return self._batch(out), error

    def _batch(self, singles: list[_Execution]) -> list[_Execution]:
        b = self.batcher
        assert b is not None
        max_n = b.max_items_per_batch or len(singles) or 1
        max_bytes = b.max_input_bytes_per_batch
        batch_input = b.batch_input
        overhead = len(
            _dumps({"Items": [], "BatchInput": batch_input} if batch_input is not None else {"Items": []})
        )
        batches: list[_Execution] = []
        cur: list[Any] = []
        cur_first = 0
        cur_bytes = overhead

        def flush() -> None:
            nonlocal cur, cur_bytes
            if cur:
                payload: dict[str, Any] = {"Items": cur}
                if batch_input is not None:
                    payload["BatchInput"] = batch_input
                batches.append(_Execution(cur_first, len(cur), payload, None))
            cur = []
            cur_bytes = overhead

        for ex in singles:
            if ex.outcome is not None:  # ItemSelector failed for this item
                flush()
                batches.append(ex)
                continue
            size = len(_dumps(ex.input)) + 1 if max_bytes else 0
            if cur and (len(cur) >= max_n or (max_bytes and cur_bytes + size > max_bytes)):
                flush()
            if not cur:
                cur_first = ex.index
            cur.append(ex.input)
            cur_bytes += size
        flush()
        return batches

    # ------------------------------------------------------------------ public entry points
    def process(self, chunk: Chunk) -> ChunkResult:
        """Run every item of ``chunk``; never raises for item errors (they become FAILED records)."""
        t0 = time.perf_counter()
        res = ChunkResult(seq=chunk.seq, items=chunk.block.count)
        self._retries = 0
        if self._fast_path_ok():
            fast = self._process_fast(chunk, res)
            if fast:
                res.busy_seconds = time.perf_counter() - t0
                return res
        executions, error = self._executions(chunk)
        if error is not None:
            res.reader_error, res.unread = error.cause, error.unread
        if self.is_async:
            self._run_async(executions)
        elif self.lanes == 1 and (
            self.timeout is None or threading.current_thread() is threading.main_thread()
        ):
            self._run_inline(executions)
        else:
            self._run_lanes(executions)
        self._encode(executions, res)
        res.retries = self._retries
        res.busy_seconds = time.perf_counter() - t0
        return res

    def _fast_path_ok(self) -> bool:
        return (
            fast_lines(self.spec.decode)
            and self.selector is None
            and self.batcher is None
            and not self.is_async
            and self.lanes == 1
            and self.timeout is None
            and self.encoder.transformation in ("NONE", "COMPACT")
        )

    def _process_fast(self, chunk: Chunk, res: ChunkResult) -> bool:
        """The hot loop for the common case (JSONL, no selector/batcher/timeout, one lane).

        Identical results to the general path; an item that raises is handed to the general
        retry/catch machinery (retries wait on a timer heap, not in line). A malformed line ends
        the chunk there, as in the general path: the items before it are run and recorded.
        """
        payload = json_lines(self.spec.decode, chunk.block)
        source = block_spec(self.spec.decode, chunk.block).source
        loads, dumps, now = orjson.loads, _dumps, time.time
        fn = self.fn
        if self.encoder.transformation == "COMPACT":
            succeeded = _compact_record  # SUCCEEDED files hold just the outputs
        else:
            succeeded = self.encoder.succeeded_fn()
        ok: list[bytes] = []
        bad: list[bytes] = []
        counts = [0, 0]  # failed, timed out
        waiting = _RetryHeap()
        deferred: list[_Execution] = []
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
                res.reader_error = _bad_line_cause(source, payload, chunk, index - chunk.first_index, exc)
                res.unread = chunk.block.count - (index - chunk.first_index)
                break
            start = now()
            try:
                out = fn(value)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                ex = _Execution(index, 1, value, line.strip(), start=start)
                delay = self._after_exception(ex, exc)
                if delay is None:
                    ex.stop = now()
                    self._collect(ex, ok, bad, counts)
                else:
                    waiting.push(ex, delay)
                    deferred.append(ex)
                index += 1
                continue
            finally:
                if waiting:
                    self._run_due(waiting, block=False)
            stop = now()
            try:
                out_json = dumps(out)
                if b"null" in out_json:  # where orjson writes NaN and Infinity
                    check_finite(out)
            except (TypeError, orjson.JSONEncodeError, NotJson) as exc:
                ex = _Execution(index, 1, value, line.strip(), start=start, stop=stop)
                ex.outcome = ("fail", NOT_JSON, _not_json_cause(exc))
                self._collect(ex, ok, bad, counts)
                index += 1
                continue
            ok.append(succeeded(index, line.strip(), out_json, start, stop))
            index += 1
        if res.reader_error is None and index - chunk.first_index != chunk.block.count:
            mismatch = _count_mismatch(source, chunk, index - chunk.first_index)
            res.reader_error, res.unread = mismatch.cause, mismatch.unread
        self._run_due(waiting, block=True)
        for ex in deferred:
            self._collect(ex, ok, bad, counts)
        _set_records(res, self.spec.record_sep, ok, bad)
        res.items_succeeded = len(ok)
        res.items_failed, res.items_timed_out = counts
        res.retries = self._retries
        return True

    def _collect(self, ex: _Execution, ok: list[bytes], bad: list[bytes], counts: list[int]) -> None:
        """Encode one finished execution of the fast path into ``ok`` / ``bad``."""
        kind = self._encode_one(ex, ok, bad, time.time())
        if kind == "failed":
            counts[0] += 1
        elif kind == "timed_out":
            counts[1] += 1

    def failed_result(self, chunk: Chunk, error: str, cause: str) -> ChunkResult:
        """FAILED records for every item of a chunk that could not be run (its worker kept dying)."""
        res = ChunkResult(seq=chunk.seq, items=chunk.block.count)
        executions, read_error = self._executions(chunk)
        if read_error is not None:
            res.reader_error, res.unread = read_error.cause, read_error.unread
        for ex in executions:
            if ex.outcome is None:
                ex.outcome = ("fail", error, cause)
        self._encode(executions, res)
        return res

    def pending_records(self, chunk: Chunk) -> tuple[bytes, int, bytes, ReadError | None]:
        """Encode PENDING records for a chunk that will not run (early stop / abort): the joined
        records, their number, their end offsets (see ``record_ends``) and the malformed data
        that cut the chunk short, if any."""
        executions, error = self._executions(chunk)
        recs = []
        for ex in executions:
            recs.append(self.encoder.pending(ex.index, ex.input_json or _dumps(ex.input)))
        sep = self.spec.record_sep
        return sep.join(recs), len(recs), record_ends(recs, len(sep)), error

    # ------------------------------------------------------------------ one attempt loop
    def _finish_error(self, ex: _Execution, error: str, cause: str, timed_out: bool = False) -> None:
        for c, put in zip(self.catchers, self.catch_setters, strict=True):
            if error_matches(error, c.error_equals):
                try:
                    ex.outcome = ("ok", put(ex.input, {"Error": error, "Cause": cause}))
                except StatesError as exc:  # States.ResultPathMatchFailure: cannot apply to this input
                    ex.outcome = ("fail", exc.error, exc.cause)
                return
        ex.outcome = ("timeout" if timed_out else "fail", error, cause)

    def _after_timeout(self, ex: _Execution, *, abandoned: bool = False) -> float | None:
        """``_after_failure`` for an attempt stopped at TimeoutSeconds."""
        cause = self.abandoned_cause if abandoned else self.timeout_cause
        return self._after_failure(ex, "States.Timeout", cause, timed_out=True)

    def _after_exception(self, ex: _Execution, exc: BaseException) -> float | None:
        """A failed attempt from the exception the function raised (``errors.classify``); an
        ``errors.Timeout`` means the execution was stopped at a time limit: TIMED_OUT."""
        error, cause = classify(exc)
        return self._after_failure(ex, error, cause, isinstance(exc, Timeout))

    def _after_failure(self, ex: _Execution, error: str, cause: str, timed_out: bool = False) -> float | None:
        """Record a failed attempt; returns the delay before the next one, or None if final.
        ``timed_out``: the attempt was stopped at TimeoutSeconds (not an error it raised)."""
        if self.policy:
            if ex.state is None:
                ex.state = self.policy.new_state()
            delay = self.policy.next_delay(ex.state, error)
            if delay is not None:
                with self._lock:
                    self._retries += 1
                return delay
        self._finish_error(ex, error, cause, timed_out)
        return None

    def _attempt_inline(self, ex: _Execution) -> float | None:
        """Run one attempt in this thread. Returns None when the execution is finished (its
        outcome is set), or the delay before it should be attempted again."""
        fn = self.fn
        timeout = self.timeout
        try:
            if timeout is None:
                ex.outcome = ("ok", fn(ex.input))
                return None
            prev = signal.signal(signal.SIGALRM, _raise_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                out = fn(ex.input)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, prev)
            ex.outcome = ("ok", out)
            return None
        except KeyboardInterrupt:
            raise
        except _AlarmTimeout:
            return self._after_timeout(ex)
        except BaseException as exc:  # the user's error, whatever it is, fails the item
            return self._after_exception(ex, exc)

    def _run_inline(self, executions: list[_Execution]) -> None:
        """One lane in this thread. A failed attempt waiting for its retry does not block the
        lane: it goes on a timer heap and the next items run meanwhile."""
        waiting = _RetryHeap()
        now = time.time
        for ex in executions:
            if ex.outcome is not None:
                continue
            ex.start = now()
            delay = self._attempt_inline(ex)
            if delay is None:
                ex.stop = now()
            else:
                waiting.push(ex, delay)
            if waiting:
                self._run_due(waiting, block=False)
        self._run_due(waiting, block=True)

    def _run_due(self, waiting: _RetryHeap, *, block: bool) -> None:
        """Run the retries that are due; with ``block`` wait until all of them are finished."""
        while waiting:
            wait = waiting.wait_time()
            if wait > 0:
                if not block:
                    return
                self.sleep(wait)
            ex = waiting.pop()
            delay = self._attempt_inline(ex)
            if delay is None:
                ex.stop = time.time()
            else:
                waiting.push(ex, delay)

    # ------------------------------------------------------------------ thread lanes
    def _run_lanes(self, executions: list[_Execution]) -> None:
        todo = [ex for ex in executions if ex.outcome is None]
        if not todo:
            return
        board = _LaneBoard(todo)
        n_lanes = min(self.lanes, len(todo))
        for _ in range(n_lanes):
            board.spawn(self._lane_main)
        timeout = self.timeout
        if timeout is None:
            while not board.all_done.wait(WATCHDOG_MAX_SLEEP):
                pass
            return
        wake = time.monotonic()
        while not board.all_done.wait(max(0.0, wake - time.monotonic())):
            wake = self._watch_lanes(board, timeout)

    def _watch_lanes(self, board: _LaneBoard, timeout: float) -> float:
        """One watchdog scan: interrupt attempts past their deadline, abandon lanes that did not
        stop ``ABANDON_GRACE`` after their interrupt. Returns when to scan next: the earliest
        deadline or grace end (an attempt starting after this scan ends later than any of them),
        at most ``WATCHDOG_MAX_SLEEP`` away."""
        now = time.monotonic()
        wake = now + WATCHDOG_MAX_SLEEP
        for lane in board.running_lanes():
            cur = lane.current
            if cur is None or lane.abandoned:
                continue
            ex, started, attempt = cur
            deadline = started + timeout
            if now < deadline:
                wake = min(wake, deadline)
                continue
            if lane.interrupted != attempt:
                with board.lock:
                    # raise only while the lane is provably still inside this attempt: it
                    # needs this lock to leave it, so the exception lands inside the attempt
                    if lane.current is cur:
                        lane.interrupted = attempt
                        lane.interrupted_at = now
                        _async_raise(lane.thread, _AlarmTimeout)
                wake = min(wake, now + ABANDON_GRACE)
            elif now < lane.interrupted_at + ABANDON_GRACE:
                wake = min(wake, lane.interrupted_at + ABANDON_GRACE)
            else:
                # blocked in C code that does not return to Python: give up on this lane (its
                # thread's late result is ignored) and start another one in its place
                with board.lock:
                    if lane.current is not cur:  # it left the attempt just now, on its own
                        continue
                    lane.abandoned = True
                    lane.current = None
                self._end_attempt(board, ex, self._after_timeout(ex, abandoned=True))
                board.spawn(self._lane_main)
        return wake

    def _lane_main(self, board: _LaneBoard, lane: _Lane) -> None:
        while True:
            try:
                self._lane_loop(board, lane)
                return
            except _AlarmTimeout:
                # The watchdog's interrupt landed between the attempt's end and the lane leaving
                # it (say while the function's own exception was being handled). Only one is
                # sent per attempt, so none can land here: finish the attempt as timed out.
                cur = lane.current
                if cur is None:  # it was left already (cannot happen): the lane goes on
                    continue
                ex = cur[0]
                abandoned, _ = _leave_attempt(board, lane, cur[2])
                if abandoned:
                    return
                self._end_attempt(board, ex, self._after_timeout(ex))

    def _lane_loop(self, board: _LaneBoard, lane: _Lane) -> None:
        fn = self.fn
        while not lane.abandoned:
            item = board.take()
            if item is None:
                return
            ex, ready_at = item
            wait = ready_at - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            if ex.start == 0.0:
                ex.start = time.time()
            attempt = next(_ATTEMPTS)
            result: Any
            try:
                lane.current = (ex, time.monotonic(), attempt)
                result = ("ok", fn(ex.input))
            except BaseException as exc:
                result = exc
            abandoned, interrupted = _leave_attempt(board, lane, attempt)
            if abandoned:  # the watchdog has recorded the timeout; the result is ignored
                return
            if interrupted or isinstance(result, _AlarmTimeout):
                # interrupted at the deadline (even if the function swallowed the interrupt)
                self._end_attempt(board, ex, self._after_timeout(ex))
            elif isinstance(result, BaseException):
                self._end_attempt(board, ex, self._after_exception(ex, result))
            else:
                ex.outcome = result
                board.finish_one(ex)

    @staticmethod
    def _end_attempt(board: _LaneBoard, ex: _Execution, delay: float | None) -> None:
        if delay is None:
            board.finish_one(ex)
        else:
            board.push_retry(ex, time.monotonic() + delay)

    # ------------------------------------------------------------------ asyncio
    def _run_async(self, executions: list[_Execution]) -> None:
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._async_all(executions))

    async def _async_all(self, executions: list[_Execution]) -> None:
        todo = iter([ex for ex in executions if ex.outcome is None])

        async def lane() -> None:
            for ex in todo:
                await self._async_one(ex)

        import asyncio

        await asyncio.gather(*(lane() for _ in range(self.lanes)))

    async def _async_one(self, ex: _Execution) -> None:
        ex.start = time.time()
        try:
            await self._async_attempts(ex)
        finally:
            ex.stop = time.time()

    async def _async_attempts(self, ex: _Execution) -> None:
        import asyncio

        sleep = self.async_sleep or asyncio.sleep
        while True:
            try:
                if self.timeout is None:
                    out = await self.fn(ex.input)
                else:
                    out = await self._async_attempt_with_deadline(ex)
                ex.outcome = ("ok", out)
                return
            except _AlarmTimeout:
                delay = self._after_timeout(ex)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                delay = self._after_exception(ex, exc)
            if delay is None:
                return
            if delay > 0:
                res = sleep(delay)
                if inspect.isawaitable(res):
                    await res

    async def _async_attempt_with_deadline(self, ex: _Execution) -> Any:
        """One attempt, stopped at TimeoutSeconds: the attempt's task is cancelled and left to
        unwind on its own (``asyncio.wait_for`` would wait for its cleanup, however long that
        takes), and ``_AlarmTimeout`` is raised at the deadline. As lean as ``wait_for``: a
        waiter released by the task's end or by the deadline timer, whichever comes first."""
        import asyncio

        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self.fn(ex.input), loop=loop)
        waiter = loop.create_future()

        def release(_: Any = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = loop.call_later(self.timeout, release)
        task.add_done_callback(release)
        try:
            await waiter
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.remove_done_callback(release)
        task.cancel()
        # abandoned on purpose: if the loop goes away first (the processor is dropped), asyncio
        # need not warn that the task was destroyed while pending
        task._log_destroy_pending = False  # type: ignore[attr-defined]
        self._unwinding.add(task)
        task.add_done_callback(self._unwound)
        raise _AlarmTimeout()

    def _unwound(self, task: Any) -> None:
        """A timed-out attempt's task finished unwinding: its result or error is ignored."""
        self._unwinding.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved

    # ------------------------------------------------------------------ encoding
    def _encode(self, executions: list[_Execution], res: ChunkResult) -> None:
        ok: list[bytes] = []
        bad: list[bytes] = []
        now = time.time()
        for ex in executions:
            kind = self._encode_one(ex, ok, bad, now)
            if kind == "succeeded":
                res.items_succeeded += ex.items
            elif kind == "timed_out":
                res.items_timed_out += ex.items
            else:
                res.items_failed += ex.items
        _set_records(res, self.spec.record_sep, ok, bad)

    def _encode_one(self, ex: _Execution, ok: list[bytes], bad: list[bytes], now: float) -> str:
        """Append one finished execution's record(s); return succeeded / failed / timed_out."""
        enc = self.encoder
        outcome = ex.outcome
        start = ex.start or now
        stop = ex.stop or now
        if outcome is None:  # cannot happen; never lose an item silently
            outcome = ("fail", "States.Runtime", "internal error: the item was not run")
        input_json = ex.input_json
        if input_json is None:
            input_json = _dumps(ex.input)
        if outcome[0] == "ok":
            try:
                out_json = _dumps(outcome[1])
                check_finite(outcome[1], out_json)
            except (TypeError, orjson.JSONEncodeError, NotJson) as exc:
                outcome = ("fail", NOT_JSON, _not_json_cause(exc))
            else:
                if self.flatten and isinstance(outcome[1], list):
                    ok.extend(_dumps(v) for v in outcome[1])
                else:
                    ok.append(enc.succeeded(ex.index, input_json, out_json, start, stop))
                return "succeeded"
        kind, error, cause = outcome
        timed_out = kind == "timeout"
        bad.append(enc.failed(ex.index, input_json, error, cause, start, stop, timed_out=timed_out))
        return "timed_out" if timed_out else "failed"


def _not_json_cause(exc: Exception) -> str:
    if isinstance(exc, NotJson):
        return f"the function returned a value that is not JSON: {exc}"
    return f"the function returned a value that is not JSON-serializable: {exc}"


def _count_mismatch(source: str, chunk: Chunk, decoded: int) -> ReadError:
    """The splitter counted the chunk's records and the parser found another number: a bug, reported
    as a reader failure (the chunk's items past those decoded are not read)."""
    count = chunk.block.count
    return ReadError(
        f"{source} lines {chunk.block.first_line}+: internal error: {decoded} records decoded where "
        f"{count} were counted",
        max(0, count - decoded),
    )


def _bad_line_cause(source: str, payload: bytes, chunk: Chunk, good: int, exc: Exception) -> str:
    """The cause for the malformed line that follows the chunk's first ``good`` items."""
    line_no = chunk.block.first_line
    seen = 0
    for line in payload.split(b"\n"):
        if line and not line.isspace():
            if seen == good:
                break
            seen += 1
        line_no += 1
    return f"{source} line {line_no}: invalid JSON: {exc}"


def _compact_record(index: int, input_json: bytes, output_json: bytes, start: float, stop: float) -> bytes:
    return output_json


def record_ends(records: list[bytes], sep_len: int) -> bytes:
    """Where each record of ``sep.join(records)`` ends, plus ``sep_len`` (so: where the next one
    starts), as native uint32s. Lets the result writer split one chunk's records over several
    files at MaxFileBytes without parsing them."""
    return array("I", itertools.accumulate(len(r) + sep_len for r in records)).tobytes()


def _set_records(res: ChunkResult, sep: bytes, ok: list[bytes], bad: list[bytes]) -> None:
    res.succeeded = sep.join(ok)
    res.failed = sep.join(bad)
    res.succeeded_records = len(ok)
    res.failed_records = len(bad)
    res.succeeded_ends = record_ends(ok, len(sep))
    res.failed_ends = record_ends(bad, len(sep))


class _RetryHeap:
    """Executions waiting for their next attempt, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Execution]] = []
        self._tie = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, ex: _Execution, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._tie), ex))

    def wait_time(self) -> float:
        return self._heap[0][0] - time.monotonic()

    def pop(self) -> _Execution:
        return heapq.heappop(self._heap)[2]


def _raise_alarm(signum: int, frame: Any) -> None:
    raise _AlarmTimeout()


_ATTEMPTS = itertools.count(1)


def _async_raise(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` inside ``thread`` the next time it runs Python bytecode."""
    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type))


def _leave_attempt(board: _LaneBoard, lane: _Lane, attempt: int) -> tuple[bool, bool]:
    """End a lane's attempt: returns (abandoned by the watchdog, interrupted by it).

    The watchdog interrupts only while the lane is inside the attempt (``lane.current`` set,
    checked under ``board.lock``), and the interrupt lands at the thread's next bytecode: inside
    the function, or on the way here. So the lane leaves under the lock and, if it was
    interrupted, cancels an interrupt still pending; from then on none can land."""
    interrupted = False
    while True:
        try:
            with board.lock:
                lane.current = None
                if lane.interrupted == attempt:
                    interrupted = True
                    # NULL clears this thread's pending async exception, if any
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)
                return lane.abandoned, interrupted
        except _AlarmTimeout:  # the interrupt landed on the way out: leave again
            interrupted = True


@dataclass(slots=True, eq=False)
class _Lane:
    thread: threading.Thread | None = None
    current: tuple | None = None
    """(execution, monotonic start of the attempt, attempt number) while an attempt runs."""
    interrupted: int = 0
    """The attempt the watchdog interrupted last, and when (monotonic)."""
    interrupted_at: float = 0.0
    abandoned: bool = False
    busy: bool = True
    """True while the lane's thread is running it (pooled threads outlive their lanes)."""


class _LaneThreads:
    """Threads for lanes, kept between chunks: starting 100 threads per chunk costs more than a
    latency-bound chunk's last round. An idle thread waits for its next lane; a thread abandoned
    by the watchdog (stuck in C code) rejoins the pool if it ever returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[threading.Thread, queue.SimpleQueue]] = []

    def run(self, target: Callable[[Any, _Lane], None], board: Any, lane: _Lane) -> threading.Thread:
        with self._lock:
            entry = self._idle.pop() if self._idle else None
        if entry is None:
            inbox: queue.SimpleQueue = queue.SimpleQueue()
            thread = threading.Thread(target=self._loop, args=(inbox,), daemon=True, name="distmap-lane")
            entry = (thread, inbox)
            inbox.put((target, board, lane))
            thread.start()
        else:
            entry[1].put((target, board, lane))
        return entry[0]

    def _loop(self, inbox: queue.SimpleQueue) -> None:
        me = (threading.current_thread(), inbox)
        while True:
            try:
                target, board, lane = inbox.get()
                try:
                    target(board, lane)
                finally:
                    lane.busy = False
                with self._lock:
                    self._idle.append(me)
            except _AlarmTimeout:  # a late watchdog interrupt that missed its item: keep serving
                continue

    def forget(self) -> None:
        """After fork: the parent's threads do not exist in the child."""
        self._lock = threading.Lock()
        self._idle = []


_LANE_THREADS = _LaneThreads()
os.register_at_fork(after_in_child=_LANE_THREADS.forget)


class _LaneBoard:
    """Shared work list for the lanes of one chunk."""

    def __init__(self, todo: list[_Execution]) -> None:
        self.fresh = iter(todo)
        self.remaining = len(todo)
        self.retries: list[tuple[float, int, _Execution]] = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.all_done = threading.Event()
        self.lanes: list[_Lane] = []
        self._tie = itertools.count()

    def spawn(self, target: Callable[[_LaneBoard, _Lane], None]) -> None:
        lane = _Lane()
        self.lanes.append(lane)
        lane.thread = _LANE_THREADS.run(target, self, lane)

    def running_lanes(self) -> list[_Lane]:
        return [lane for lane in self.lanes if lane.thread is not None and lane.busy]

    def take(self) -> tuple[_Execution, float] | None:
        with self.cond:
            while True:
                if self.retries:
                    ready_at, _, ex = heapq.heappop(self.retries)
                    return ex, ready_at
                ex = next(self.fresh, None)
                if ex is not None:
                    return ex, 0.0
                if self.remaining <= 0:
                    return None
                # wait for a retry to be scheduled or for everything to finish
                self.cond.wait(0.05)
                if self.remaining <= 0:
                    return None

    def push_retry(self, ex: _Execution, ready_at: float) -> None:
        with self.cond:
            heapq.heappush(self.retries, (ready_at, next(self._tie), ex))
            self.cond.notify()

    def finish_one(self, ex: _Execution) -> None:
        ex.stop = time.time()
        with self.cond:
            self.remaining -= 1
            if self.remaining <= 0:
                self.all_done.set()
                self.cond.notify_all()
