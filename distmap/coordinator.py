"""The coordinator: read -> chunk -> dispatch within a bounded window -> collect -> tolerate -> write.

One coordinator drives any executor. It holds at most ``executor.capacity`` chunks plus a few
re-queued ones, so its memory is O(chunk size x window) whatever the input size. It never
parses items: readers hand it record-aligned bytes, workers return encoded records, and the
result writer concatenates them into files.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from distmap.config.model import MapJob
from distmap.errors import ItemReaderFailed, ResultWriterFailed
from distmap.executors.base import Completed, Crashed, Executor, WorkerInitError
from distmap.memory import tune_allocator
from distmap.processor import BatchProcessor, Chunk, ChunkResult, RunSpec
from distmap.readers.base import BlockReader, DecodeSpec, open_reader, split_block
from distmap.records import RecordIdentity, child_identity, iso_now
from distmap.results.writer import ResultWriter
from distmap.run_state import ItemCounts, MapRunResult
from distmap.storage import redact, size_of
from distmap.tolerance import describe_threshold, exceeds_threshold

log = structlog.get_logger("distmap")

#: A single item (or ItemBatcher batch) whose worker dies this many times is marked FAILED.
MAX_CRASHES_PER_ITEM = 3
CRASH_ERROR = "Runtime.ExitError"
#: A chunk lost this many times without blame (queued on a dying worker, on a lost node, result
#: lost) is treated as a suspect from then on: bisected, and its items eventually FAILED.
MAX_RERUNS_PER_CHUNK = 5

MAX_CHUNK_ITEMS = 8192
MAX_CHUNK_BYTES = 4 << 20
TARGET_CHUNK_SECONDS = 0.1


def plan_lanes(max_concurrency: int, cores: int) -> list[int]:
    """Split MaxConcurrency over worker processes: one per core, threads/tasks beyond that."""
    cores = max(1, cores)
    total = max_concurrency if max_concurrency > 0 else cores
    workers = min(cores, total)
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def map_run_identity(job: MapJob, run_id: str) -> tuple[str, RecordIdentity]:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    account = os.environ.get("DISTMAP_ACCOUNT_ID", "123456789012")
    sm = job.state_machine_name
    map_name = job.map_name
    map_run_arn = f"arn:aws:states:{region}:{account}:mapRun:{sm}/{map_name}:{run_id}"
    ident = child_identity(region, account, sm, map_name, run_id, job.processor.execution_type)
    return map_run_arn, ident


class ChunkSizer:
    """Adapts items per chunk so a chunk is ~TARGET_CHUNK_SECONDS of work in a worker."""

    def __init__(self, lanes_per_worker: int, batch_items: int, max_items: int = MAX_CHUNK_ITEMS) -> None:
        self.batch = max(1, batch_items)
        self.max_items = max(1, max_items)
        self.lo = min(max(1, lanes_per_worker), self.max_items)
        self.items = max(self.lo * 2, 64)
        self.bytes_per_item = 256.0

    def _round(self, n: int) -> int:
        n = max(self.lo, min(self.max_items, n))
        if self.batch > 1:
            n = max(self.batch, n - n % self.batch)
        return n

    def next_size(self, remaining: int | None) -> tuple[int, int]:
        n = self._round(self.items)
        if remaining is not None:
            n = min(n, remaining)
        # aim slightly under n items' worth of bytes: cutting by bytes is free, cutting by count is not
        nbytes = int(min(MAX_CHUNK_BYTES, max(4096, n * self.bytes_per_item)))
        return max(1, n), nbytes

    def saw_block(self, nbytes: int, items: int) -> None:
        if items:
            self.bytes_per_item = 0.8 * self.bytes_per_item + 0.2 * (nbytes / items)

    def saw_result(self, res: ChunkResult) -> None:
        if res.items <= 0 or res.busy_seconds <= 0:
            return
        per_item = res.busy_seconds / res.items
        want = TARGET_CHUNK_SECONDS / per_item
        self.items = int(min(want, self.items * 4))


class _Counter:
    """Counts the input's items on a second stream, a block per step, so the percentage
    threshold can be decided (and the run stopped early) before the main reader reaches the end."""

    def __init__(self, job: MapJob) -> None:
        self.reader: BlockReader | None = open_reader(job.item_reader)
        self.max_items = job.item_reader.max_items or math.inf
        self.count = 0
        self.total: int | None = None

    def step(self) -> None:
        if self.reader is None:
            return
        try:
            block = self.reader.read_block(1 << 30, 8 << 20)
        except ItemReaderFailed:
            block = None  # the main reader will report it with the line number
            self._finish(None)
            return
        if block is None:
            self._finish(self.count)
            return
        self.count += block.count
        if self.count >= self.max_items:
            self._finish(int(self.max_items))

    def _finish(self, total: int | None) -> None:
        self.total = total
        if self.reader is not None:
            self.reader.close()
        self.reader = None


@dataclass
class _Stop:
    kind: str  # "threshold" | "reader" | "abort" | "writer" | "worker"
    error: str
    cause: str


ProgressHook = Callable[[dict[str, Any]], None]


class Coordinator:
    """Runs one map run of ``job`` on ``executor``."""

    def __init__(
        self,
        job: MapJob,
        executor: Executor,
        *,
        run_id: str | None = None,
        progress: ProgressHook | None = None,
        cores: int | None = None,
        handle_signals: bool = True,
        max_chunk_items: int = MAX_CHUNK_ITEMS,
    ) -> None:
        self.job = job
        self.executor = executor
        self.run_id = run_id or str(uuid.uuid4())
        self.map_run_arn, self.identity = map_run_identity(job, self.run_id)
        self.progress = progress
        self.cores = cores
        self.handle_signals = handle_signals
        self.max_chunk_items = max_chunk_items
        self.log = log.bind(map_run_id=self.run_id)
        self.counts = ItemCounts()
        self._abort = threading.Event()
        self._requeue: deque[Chunk] = deque()
        self._reader_done = False
        self._chunks_done = 0
        self._crashes = 0
        self._lost = 0
        self._retries = 0
        self._total_bytes: int | None = None
        self._backend_seconds = 0.0
        self._next_index = 0
        """Index the next block read will start at: items dispatched so far."""
        self._unread = 0
        """Items counted by the splitter that a worker could not read (malformed data): not items."""
        self._read_stop: _Stop | None = None

    def request_abort(self) -> None:
        """Stop the run: no new chunks, running ones are cut short, unrun items become PENDING."""
        self._abort.set()

    # ------------------------------------------------------------------ setup
    def _spec(self, reader: BlockReader, writer: ResultWriter | None, lanes: int) -> RunSpec:
        job = self.job
        rc = job.item_reader
        start = iso_now()
        name = self.run_id
        # the map run's own execution is a Standard one, whatever its children's ExecutionType
        parent_arn = self.identity.state_machine_arn.rsplit("/", 1)[0].replace(
            ":stateMachine:", ":execution:"
        )
        context = {
            "Execution": {
                "Id": f"{parent_arn}:{name}",
                "Name": name,
                "StartTime": start,
                "Input": job.input,
            },
            "StateMachine": {"Id": self.identity.state_machine_arn, "Name": job.state_machine_name},
            "State": {"Name": job.map_name, "EnteredTime": start},
        }
        return RunSpec(
            job=job,
            decode=DecodeSpec(rc.input_type, rc.source, tuple(reader.header), rc.csv_delimiter),
            identity=self.identity,
            lanes=lanes,
            record_sep=writer.record_sep if writer else b"\n",
            context=context,
        )

    # ------------------------------------------------------------------ run
    def run(self) -> MapRunResult:
        """Run the map run to its end and return the result (see ``distmap.run``)."""
        try:
            return self._run()
        finally:
            self.executor.close()

    def _run(self) -> MapRunResult:
        job = self.job
        tune_allocator()  # before workers fork, so they inherit it
        started = iso_now()
        reader = open_reader(job.item_reader)  # raises ItemReaderFailed before any work
        t_connect = time.perf_counter()
        try:
            workers = self.executor.connect(job)
        except BaseException:
            reader.close()
            raise
        t0 = time.perf_counter()
        self._backend_seconds = t0 - t_connect
        lanes = plan_lanes(job.max_concurrency, self.cores or workers)
        writer: ResultWriter | None = None
        if job.result_writer is not None:
            writer = ResultWriter(job.result_writer, self.run_id, self.map_run_arn)
            writer.open()
        spec = self._spec(reader, writer, max(lanes))
        local = BatchProcessor(spec)  # coordinator-side: PENDING records and crash records
        self.log.info(
            "map_run.started",
            map_run_arn=self.map_run_arn,
            backend=self.executor.name,
            **self.executor.describe(),
            source=redact(job.item_reader.source),
            input_type=job.item_reader.input_type,
            workers=len(lanes),
            max_concurrency=sum(lanes),
            result_writer=redact(job.result_writer.destination) if job.result_writer else None,
        )
        if writer is None:
            self.log.warning(
                "map_run.no_result_writer", hint="item outputs are not kept; add ResultWriter.Destination"
            )
        self._total_bytes = size_of(job.item_reader.source)
        counter = None
        if job.tolerated_failure_percentage not in (None, 100.0):
            counter = _Counter(job)
        previous = self._install_signals()
        self.executor.start(spec, lanes)
        stop: _Stop | None = None
        try:
            stop = self._loop(reader, writer, local, lanes, counter)
        except WorkerInitError as exc:
            stop = _Stop("worker", "States.Runtime", f"a worker could not start: {exc}")
        except KeyboardInterrupt:
            stop = _Stop("abort", "States.Aborted", "interrupted")
        except ResultWriterFailed as exc:
            stop = _Stop("writer", exc.error, exc.cause)
        except BaseException:
            self.executor.shutdown(abort=True)
            if writer is not None:
                writer.abort()
            raise
        finally:
            self._restore_signals(previous)
            if counter is not None and counter.reader is not None:
                counter.reader.close()
        return self._finish(stop, reader, writer, local, started, t0)

    def _loop(
        self,
        reader: BlockReader,
        writer: ResultWriter | None,
        local: BatchProcessor,
        lanes: list[int],
        counter: _Counter | None,
    ) -> _Stop | None:
        job = self.job
        ex = self.executor
        batch_items = job.item_batcher.max_items_per_batch if job.item_batcher else 1
        sizer = ChunkSizer(max(lanes), batch_items, self.max_chunk_items)
        self._sizer = sizer
        max_items = job.item_reader.max_items
        next_seq = 0
        last_progress = 0.0
        stop: _Stop | None = None

        def total_known() -> int | None:
            if self._reader_done or self._read_stop is not None:
                return self.counts.total
            if counter is not None and counter.total is not None:
                return counter.total - self._unread
            return None

        while True:
            if self._abort.is_set() and stop is None:
                stop = _Stop("abort", "States.Aborted", "the run was stopped by the user")
                break
            # fill the window
            while stop is None and len(ex.outstanding()) < ex.capacity:
                if self._requeue:
                    ex.submit(self._requeue.popleft())
                    continue
                if self._reader_done:
                    break
                remaining = (max_items - self._next_index) if max_items else None
                if remaining is not None and remaining <= 0:
                    self._reader_done = True
                    break
                n, nbytes = sizer.next_size(remaining)
                try:
                    block = reader.read_block(n, nbytes)
                except ItemReaderFailed as exc:
                    stop = _Stop("reader", exc.error, exc.cause)
                    break
                if block is None:
                    self._reader_done = True
                    break
                size = (
                    len(block.payload) if isinstance(block.payload, bytes) else sum(map(len, block.payload))
                )
                sizer.saw_block(size, block.count)
                chunk = Chunk(next_seq, self._next_index, block)
                next_seq += 1
                self._next_index += block.count
                self.counts.total = self._next_index - self._unread
                ex.submit(chunk)
            if not ex.outstanding() and (stop is not None or (self._reader_done and not self._requeue)):
                break
            for done in ex.poll(0.05):
                new_stop = self._handle(done, writer, local)
                if new_stop is not None and stop is None:
                    stop = new_stop
                if stop is None:
                    failed = self.counts.failed + self.counts.timed_out
                    if exceeds_threshold(
                        failed, total_known(), job.tolerated_failure_percentage, job.tolerated_failure_count
                    ):
                        stop = self._threshold_stop(failed, total_known())
            if counter is not None and counter.total is None:
                counter.step()
                if stop is None and counter.total is not None:
                    failed = self.counts.failed + self.counts.timed_out
                    if exceeds_threshold(
                        failed, counter.total, job.tolerated_failure_percentage, job.tolerated_failure_count
                    ):
                        stop = self._threshold_stop(failed, counter.total)
            now = time.monotonic()
            if now - last_progress >= 0.2:
                last_progress = now
                self._report(reader, total_known(), running=len(ex.outstanding()))
        return stop

    def _threshold_stop(self, failed: int, total: int | None) -> _Stop:
        job = self.job
        cause = (
            f"{failed} item(s) failed or timed out"
            + (f" out of {total}" if total is not None else "")
            + f", which exceeds {describe_threshold(job.tolerated_failure_percentage, job.tolerated_failure_count)}"
        )
        self.log.warning("map_run.threshold_exceeded", failed=failed, total=total, cause=cause)
        return _Stop("threshold", "States.ExceedToleratedFailureThreshold", cause)

    def _handle(
        self, done: Completed | Crashed, writer: ResultWriter | None, local: BatchProcessor
    ) -> _Stop | None:
        if isinstance(done, Crashed):
            return self._handle_crash(done, writer, local)
        res = done.result
        self._record(res, writer)
        self._sizer.saw_result(res)
        return self._read_stop

    def _unreadable(self, unread: int, cause: str) -> None:
        """A worker found malformed data: the block's items from there on are not items. The run
        fails with States.ItemReaderFailed (the first such cause is kept)."""
        self._unread += unread
        self.counts.total = self._next_index - self._unread
        if self._read_stop is None:
            self.log.error("map_run.item_reader_failed", cause=cause)
            self._read_stop = _Stop("reader", "States.ItemReaderFailed", cause)

    def _record(self, res: ChunkResult, writer: ResultWriter | None) -> None:
        if res.reader_error is not None:
            self._unreadable(res.unread, res.reader_error)
        if writer is not None:
            writer.write("SUCCEEDED", res.succeeded, res.succeeded_records, res.succeeded_ends)
            writer.write("FAILED", res.failed, res.failed_records, res.failed_ends)
            self.counts.results_written = writer.results_written
        self.counts.succeeded += res.items_succeeded
        self.counts.failed += res.items_failed
        self.counts.timed_out += res.items_timed_out
        self._chunks_done += 1
        self._retries += res.retries

    def _handle_crash(
        self, done: Crashed, writer: ResultWriter | None, local: BatchProcessor
    ) -> _Stop | None:
        chunk = done.chunk
        chunk.reruns += 0 if done.blame else 1
        if not done.blame and chunk.reruns <= MAX_RERUNS_PER_CHUNK:
            # it was queued behind the chunk that crashed, or its node went away: just run it again
            self._lost += 1
            self.log.info("map_run.chunk_lost", chunk=chunk.seq, items=chunk.block.count, reason=done.reason)
            self._requeue.append(chunk)
            return None
        self._crashes += 1
        decode = local.spec.decode
        ib = self.job.item_batcher
        batch = ib.max_items_per_batch if ib is not None and ib.max_items_per_batch else 1
        single = chunk.block.count <= batch  # one execution: nothing left to bisect
        self.log.warning(
            "map_run.worker_died",
            chunk=chunk.seq,
            first_index=chunk.first_index,
            items=chunk.block.count,
            reason=done.reason,
            crashes=chunk.crashes + 1,
        )
        if not single:
            half = chunk.block.count // 2
            if batch > 1:
                half = max(batch, half - half % batch)
            head, tail = split_block(decode, chunk.block, half)
            # re-run both halves first: bisecting isolates the item that kills workers
            self._requeue.appendleft(Chunk(chunk.seq, chunk.first_index + half, tail))
            self._requeue.appendleft(Chunk(chunk.seq, chunk.first_index, head))
            return None
        chunk.crashes += 1
        if chunk.crashes < MAX_CRASHES_PER_ITEM:
            self._requeue.appendleft(chunk)
            return None
        cause = f"{done.reason} while running this item, {chunk.crashes} times; it was not retried further"
        self.log.error("map_run.item_killed_worker", first_index=chunk.first_index, cause=cause)
        self._record(local.failed_result(chunk, CRASH_ERROR, cause), writer)
        return self._read_stop

    # ------------------------------------------------------------------ end of run
    def _write_pending(
        self, reader: BlockReader, writer: ResultWriter | None, local: BatchProcessor, include_rest: bool
    ) -> None:
        chunks = list(self._requeue)
        self._requeue.clear()
        pending = 0
        for chunk in chunks:
            data, n, bounds, error = local.pending_records(chunk)
            if writer is not None:
                writer.write("PENDING", data, n, bounds)
            pending += n
            if error is not None:
                self._unreadable(error.unread, error.cause)
        if include_rest and not self._reader_done and self._read_stop is None:
            index = self._next_index
            max_items = self.job.item_reader.max_items
            while True:
                remaining = (max_items - index) if max_items else None
                if remaining is not None and remaining <= 0:
                    break
                try:
                    block = reader.read_block(
                        min(remaining or MAX_CHUNK_ITEMS, MAX_CHUNK_ITEMS), MAX_CHUNK_BYTES
                    )
                except ItemReaderFailed as exc:
                    self.log.warning("map_run.pending_incomplete", cause=exc.cause)
                    break
                if block is None:
                    break
                chunk = Chunk(-1, index, block)
                index += block.count
                self._next_index = index
                data, n, bounds, error = local.pending_records(chunk)
                if writer is not None:
                    writer.write("PENDING", data, n, bounds)
                pending += n
                if error is not None:
                    self.log.warning("map_run.pending_incomplete", cause=error.cause)
                    self._unread += error.unread
                    break
            self.counts.total = self._next_index - self._unread
        self.counts.pending += pending

    def _finish(
        self,
        stop: _Stop | None,
        reader: BlockReader,
        writer: ResultWriter | None,
        local: BatchProcessor,
        started: str,
        t0: float,
    ) -> MapRunResult:
        job = self.job
        hard_stop = stop is not None and stop.kind in ("abort", "worker", "writer")
        if stop is not None and stop.kind in ("abort", "worker"):
            # in-flight chunks are cut short: written as PENDING (and counted ABORTED on abort)
            for chunk in self.executor.outstanding():
                self._requeue.append(chunk)
                if stop.kind == "abort":
                    self.counts.aborted += chunk.block.count
            self.counts.pending -= self.counts.aborted
        self.executor.shutdown(abort=hard_stop)
        status, error, cause = "SUCCEEDED", None, None
        if stop is not None:
            status = "ABORTED" if stop.kind == "abort" else "FAILED"
            error, cause = stop.error, stop.cause
        else:
            failed = self.counts.failed + self.counts.timed_out
            if exceeds_threshold(
                failed, self.counts.total, job.tolerated_failure_percentage, job.tolerated_failure_count
            ):
                s = self._threshold_stop(failed, self.counts.total)
                status, error, cause = "FAILED", s.error, s.cause
        manifest_uri = None
        try:
            if stop is not None and stop.kind != "writer":
                self._write_pending(
                    reader, writer, local, include_rest=stop.kind in ("threshold", "abort", "worker")
                )
            if writer is not None:
                if stop is not None and stop.kind == "writer":
                    writer.abort()
                else:
                    writer.commit()
                    manifest_uri = writer.manifest_uri
                    self.counts.results_written = writer.results_written
        except ResultWriterFailed as exc:
            writer.abort() if writer is not None else None
            status, error, cause = "FAILED", exc.error, exc.cause
            manifest_uri = None
        except KeyboardInterrupt:
            if writer is not None:
                writer.abort()
            raise
        finally:
            reader.close()
        elapsed = time.perf_counter() - t0
        self.counts.running = 0
        done_items = self.counts.succeeded + self.counts.failed + self.counts.timed_out
        stats = {
            "seconds": round(elapsed, 3),
            "itemsPerSecond": round(done_items / elapsed, 1) if elapsed > 0 else None,
            "chunks": self._chunks_done,
            "retries": self._retries,
            "workerCrashes": self._crashes,
            "chunksRerun": self._lost,
            "backendStartSeconds": round(self._backend_seconds, 3),
        }
        result = MapRunResult(
            status=status,
            map_run_arn=self.map_run_arn,
            run_id=self.run_id,
            item_counts=self.counts,
            start_date=started,
            stop_date=iso_now(),
            error=error,
            cause=redact(cause) if cause else cause,
            manifest=manifest_uri,
            backend=self.executor.name,
            stats=stats,
        )
        self._report(None, self.counts.total, running=0, final=True)
        self.log.info(
            "map_run.finished",
            status=status,
            error=error,
            cause=result.cause,
            item_counts=self.counts.to_dict(),
            manifest=redact(manifest_uri) if manifest_uri else None,
            **stats,
        )
        return result

    # ------------------------------------------------------------------ progress / signals
    def _report(
        self, reader: BlockReader | None, total: int | None, *, running: int, final: bool = False
    ) -> None:
        if self.progress is None:
            return
        c = self.counts
        self.progress(
            {
                "succeeded": c.succeeded,
                "failed": c.failed,
                "timedOut": c.timed_out,
                "total": total,
                "running": running,
                "bytesRead": reader.bytes_read if reader is not None else None,
                "totalBytes": self._total_bytes,
                "final": final,
            }
        )

    def _install_signals(self) -> Any:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return None
        previous = {}

        def on_signal(signum: int, frame: Any) -> None:
            if self._abort.is_set():
                raise KeyboardInterrupt  # second Ctrl-C: stop now, no manifest
            self.log.warning(
                "map_run.aborting",
                signal=signal.Signals(signum).name,
                hint="press Ctrl-C again to stop without writing results",
            )
            self._abort.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
        return previous

    def _restore_signals(self, previous: Any) -> None:
        if previous:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
