"""The coordinator: read -> chunk -> dispatch within a bounded window -> collect -> tolerate -> write.

One coordinator drives any executor. It holds at most ``executor.capacity`` chunks plus a few
re-queued ones, so its memory is O(chunk size x window) whatever the input size. It never
parses items: readers hand it record-aligned bytes, workers return encoded records, and the
result writer concatenates them into files.
"""

from __future__ import annotations

import math
import os
import resource
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distmap.checkpoint import DurableRun
from distmap.config.model import MapJob
from distmap.contract import MAX_CHUNK_ITEMS, Chunk, ChunkResult, RunSpec
from distmap.errors import ItemReaderFailed, ResultWriterFailed
from distmap.executors.base import Completed, Crashed, Executor, WorkerInitError
from distmap.journaled import Journaled
from distmap.logs import get_logger
from distmap.memory import tune_allocator
from distmap.processor import BatchProcessor, runs_async
from distmap.readers.base import BlockReader, DecodeSpec, open_reader, reader_tell, split_block
from distmap.readers.formats import decode_format, total_bytes
from distmap.records import RecordIdentity, child_identity, iso_now, region_account
from distmap.results.writer import ResultWriter
from distmap.run_state import ItemCounts, MapRunResult
from distmap.stops import StopNow, StopRequests
from distmap.storage import redact
from distmap.tolerance import describe_threshold, exceeds_threshold

log = get_logger()

#: A single item (or ItemBatcher batch) whose worker dies this many times is marked FAILED.
MAX_CRASHES_PER_ITEM = 3
CRASH_ERROR = "Runtime.ExitError"
#: A chunk lost this many times without blame (queued on a dying worker, on a lost node, result
#: lost) is treated as a suspect from then on: bisected, and its items eventually FAILED.
MAX_RERUNS_PER_CHUNK = 5

THRESHOLD_EXCEEDED = "The specified tolerated failure threshold was exceeded"  # AWS's cause text
MAX_CHUNK_BYTES = 4 << 20
TARGET_CHUNK_SECONDS = 0.1


#: The most thread lanes a local worker process runs when it may start more processes than cores
#: (``LocalExecutor.extra_workers``): CPython threads hand the GIL to each other worse the more
#: of them wake at once (exploratory single runs, 100,000 x 100 ms items at MaxConcurrency 10,000: 2 x 5,000
#: lanes 4.9 s, and at times 30-60 s; 5 x 2,000 lanes 3.2-3.3 s; 10 x 1,000 lanes 3.6-4.0 s).
THREAD_LANES_PER_PROCESS = 2000


def plan_lanes(max_concurrency: int, cores: int, most_per_worker: int | None = None) -> list[int]:
    """Split MaxConcurrency over worker processes: one per core, threads/tasks beyond that; with
    ``most_per_worker``, more processes than cores rather than more lanes than that in one."""
    cores = max(1, cores)
    total = max_concurrency if max_concurrency > 0 else cores
    workers = min(cores, total)
    if most_per_worker and total > workers * most_per_worker:
        workers = -(-total // most_per_worker)
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def map_run_identity(job: MapJob, run_id: str) -> tuple[str, RecordIdentity]:
    region, account = region_account()
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
        # With lanes, a chunk starts as one round of a worker's lanes: a bigger one would leave its
        # worker a partial round that costs a whole item time at the end of a latency-bound run.
        self.items = max(self.lo, 64) if lanes_per_worker > 1 else 64
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


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) used so far by this process and by its joined children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


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


class Coordinator(Journaled):
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
        mask_causes: bool = True,
        stops: StopRequests | None = None,
        durable: DurableRun | None = None,
    ) -> None:
        self.job = job
        self.durable = durable
        """The run journal (``distmap.checkpoint``), when the run keeps one."""
        self._cap: int | None = None
        """Items in flight at most, once ``distmap update`` lowered MaxConcurrency."""
        self.mask_causes = mask_causes
        self.executor = executor
        self.run_id = run_id or str(uuid.uuid4())
        self.map_run_arn, self.identity = map_run_identity(job, self.run_id)
        if durable is not None and durable.header.get("redriveCount"):
            from dataclasses import replace

            self.identity = replace(self.identity, redrive_count=durable.header["redriveCount"])
        self.progress = progress
        self.cores = cores
        self.handle_signals = handle_signals
        self.max_chunk_items = max_chunk_items
        self.log = log.bind(map_run_id=self.run_id)
        self.counts = ItemCounts()
        self.stops = stops or StopRequests()
        self._requeue: deque[Chunk] = deque()
        self._reader_done = False
        self._chunks_done = 0
        self._crashes = 0
        self._lost = 0
        self._retries = 0
        self._total_bytes: int | None = None
        self._backend_seconds = 0.0
        self._t0 = 0.0
        self._cpu0 = _cpu_seconds()
        self._first_dispatch: float | None = None
        """When the first chunk was given to a worker (workers that start slowly, like Ray
        actors, take no chunk before they are up)."""
        self._next_index = 0
        """Index the next block read will start at: items dispatched so far."""
        self._unread = 0
        """Items counted by the splitter that a worker could not read (malformed data): not items."""
        self._read_stop: _Stop | None = None
        self._known_total: int | None = None
        """The input's item count from a resumed run's journal."""
        self._read_until: int | None = None
        """Items dispatched when malformed data was found: no item from there on is read (kept
        in the journal, so a resumed run reads no further either)."""
        self._resumed_read_cause: str | None = None
        """A resumed run's journal says malformed data ended its reading, with this cause."""
        self._count_now = False
        """An update set a tolerated percentage: count the input's items to decide it early."""
        self._counter: _Counter | None = None
        self._writer_broken = False
        self._cut_short: set[int] = set()
        """``id()`` of the chunks that were running when the run was aborted."""

    def request_abort(self, *, now: bool = False) -> None:
        """Stop the run: no new chunks, running ones are cut short, unrun items become PENDING.
        A second request (or ``now``) stops at once without writing the manifest."""
        self.stops.request(now=now)

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
            decode=DecodeSpec(decode_format(rc, reader), rc.source, tuple(reader.header), rc.csv_delimiter),
            identity=self.identity,
            lanes=lanes,
            record_sep=writer.record_sep if writer else b"\n",
            context=context,
            workdir=os.getcwd(),
            mask_causes=self.mask_causes,
        )

    # ------------------------------------------------------------------ run
    def run(self) -> MapRunResult:
        """Run the map run to its end and return the result (see ``distmap.run``)."""
        # from the start: a signal during set-up must not kill the run half-way
        installed = self.handle_signals and self.stops.install()
        try:
            try:
                return self._run()
            finally:
                self.executor.close()
        finally:
            if installed:
                self.stops.restore()

    def _run(self) -> MapRunResult:
        job = self.job
        tune_allocator()  # before workers fork, so they inherit it
        started = iso_now()
        reader = open_reader(job.item_reader)  # raises ItemReaderFailed before any work
        writer: ResultWriter | None = None
        try:
            if job.result_writer is not None:
                writer = ResultWriter(job.result_writer, self.run_id, self.map_run_arn)
                writer.open(resume=self._resuming)  # raises ResultWriterFailed (also for an existing run)
            if self.durable is not None:
                self.durable.header["startDate"] = self.durable.header["startDate"] or started
                self.durable.open(writer, job.item_reader)
            t_connect = time.perf_counter()
            workers = self.executor.connect(job)
        except BaseException:
            reader.close()
            if self.durable is not None:
                self.durable.discard()
            if writer is not None:
                writer.abort()
            raise
        if self.handle_signals:
            self.stops.install()  # again: ray.init installs a SIGTERM handler of its own
        t0 = time.perf_counter()
        self._backend_seconds = t0 - t_connect
        self._t0 = t0
        self._cpu0 = _cpu_seconds()
        most = None
        if getattr(self.executor, "extra_workers", False) and not runs_async(job.processor.function):
            most = THREAD_LANES_PER_PROCESS  # latency-bound sync work at thousands of lanes
        lanes = plan_lanes(job.max_concurrency, self.cores or workers, most)
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
        self._total_bytes = total_bytes(job.item_reader)
        counter = None
        if self.durable is not None:
            self._resume_from(reader)
        if job.tolerated_failure_percentage not in (None, 100.0) and self._known_total is None:
            counter = _Counter(job)
        stop: _Stop | None = None
        try:
            self.executor.start(spec, lanes)
            stop = self._loop(reader, writer, local, lanes, counter)
        except StopNow:
            return self._stop_now(reader, writer, started, t0)
        except WorkerInitError as exc:
            stop = _Stop("worker", "States.Runtime", f"a worker could not start: {exc}")
        except ResultWriterFailed as exc:
            stop = self._writer_stop(exc)
        except BaseException:
            self.executor.shutdown(abort=True)
            if writer is not None:
                writer.abort()
            reader.close()
            if self.durable is not None:
                self.durable.journal.close()
            raise
        finally:
            for c in (counter, self._counter):
                if c is not None and c.reader is not None:
                    c.reader.close()
        try:
            return self._finish(stop, reader, writer, local, started, t0)
        except StopNow:
            return self._stop_now(reader, writer, started, t0)

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
            if self._known_total is not None:
                return self._known_total - self._unread
            return None

        while True:
            if self._check_stop():
                # also cuts short a run that was only waiting for its last chunks (threshold, reader)
                stop = stop or _Stop("abort", "States.Aborted", self._abort_cause())
                break
            if stop is not None and stop.kind == "writer":
                break  # nothing more can be written: in-flight chunks become PENDING
            # fill the window
            while stop is None and len(ex.outstanding()) < ex.capacity and self._below_cap():
                if self._requeue:
                    ex.submit(self._requeue.popleft())
                    continue
                if self._reader_done:
                    break
                remaining = self._remaining(max_items, self._next_index)
                if remaining is not None and remaining <= 0:
                    self._reader_done = True
                    break
                n, nbytes = sizer.next_size(remaining)
                start_pos = None
                try:
                    if self.durable is not None:
                        self._next_index, n = self.durable.before_read(reader, self._next_index, n)
                        n = self._capped(n)
                        start_pos = reader_tell(reader)
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
                if self.durable is not None:
                    assert self.durable.checkpoint is not None
                    self.durable.checkpoint.read(
                        self._next_index, block.count, start_pos, reader_tell(reader)
                    )
                next_seq += 1
                self._next_index += block.count
                self._sync_total()
                ex.submit(chunk)
                if self._first_dispatch is None:
                    self._first_dispatch = time.perf_counter()
            if not ex.outstanding() and (stop is not None or (self._reader_done and not self._requeue)):
                break
            for done in ex.poll(0.05):
                try:
                    new_stop = self._handle(done, writer, local)
                except ResultWriterFailed as exc:
                    new_stop = self._writer_stop(exc)
                if new_stop is not None and stop is None:
                    stop = new_stop
                if stop is None:
                    failed = self.counts.failed + self.counts.timed_out
                    if exceeds_threshold(
                        failed,
                        total_known(),
                        self.job.tolerated_failure_percentage,
                        self.job.tolerated_failure_count,
                    ):
                        stop = self._threshold_stop(failed, total_known())
            if counter is None and self._count_now and total_known() is None:
                counter = self._counter = _Counter(self.job)  # an update asked for a percentage
            if counter is not None and counter.total is None:
                counter.step()
                self._known_total = counter.total
                if stop is None and counter.total is not None:
                    failed = self.counts.failed + self.counts.timed_out
                    if exceeds_threshold(
                        failed,
                        counter.total,
                        self.job.tolerated_failure_percentage,
                        self.job.tolerated_failure_count,
                    ):
                        stop = self._threshold_stop(failed, counter.total)
            if self.durable is not None and not self._writer_broken:
                # after a failed write nothing more is committed: the chunks of this turn are redone
                try:
                    self._journal_tick()
                except ResultWriterFailed as exc:
                    if stop is None or stop.kind != "writer":
                        stop = self._writer_stop(exc)
            now = time.monotonic()
            if now - last_progress >= 0.2:
                last_progress = now
                self._report(reader, total_known(), running=len(ex.outstanding()))
        return stop

    def _threshold_stop(self, failed: int, total: int | None) -> _Stop:
        job = self.job
        cause = (
            f"{THRESHOLD_EXCEEDED} ({failed} item(s) failed or timed out"
            + (f" out of {total}" if total is not None else "")
            + f"; allowed: {describe_threshold(job.tolerated_failure_percentage, job.tolerated_failure_count)})"
        )
        self.log.warning("map_run.threshold_exceeded", failed=failed, total=total, cause=cause)
        return _Stop("threshold", "States.ExceedToleratedFailureThreshold", cause)

    def _handle(
        self, done: Completed | Crashed, writer: ResultWriter | None, local: BatchProcessor
    ) -> _Stop | None:
        if isinstance(done, Crashed):
            return self._handle_crash(done, writer, local)
        res = done.result
        self._record(res, writer, done.chunk)
        self._sizer.saw_result(res)
        return self._read_stop

    def _sync_total(self) -> None:
        """``total`` is what was read: the items dispatched, less those found unreadable."""
        self.counts.total = self._next_index - self._unread

    def _unreadable(self, unread: int, cause: str) -> None:
        """A worker found malformed data: the block's items from there on are not items. The run
        fails with States.ItemReaderFailed (the first such cause is kept)."""
        self._unread += unread
        self._sync_total()
        if self._read_until is None:
            self._read_until = self._next_index
        if self._read_stop is None:
            self.log.error("map_run.item_reader_failed", cause=cause)
            self._read_stop = _Stop("reader", "States.ItemReaderFailed", cause)

    def _record(self, res: ChunkResult, writer: ResultWriter | None, chunk: Chunk) -> None:
        if res.reader_error is not None:
            self._unreadable(res.unread, res.reader_error)
        # the items ran whatever happens to their records: count them first
        self.counts.succeeded += res.items_succeeded
        self.counts.failed += res.items_failed
        self.counts.timed_out += res.items_timed_out
        self._chunks_done += 1
        self._retries += res.retries
        if writer is not None and not self._writer_broken:
            writer.write("SUCCEEDED", res.succeeded, res.succeeded_records, res.succeeded_ends)
            writer.write("FAILED", res.failed, res.failed_records, res.failed_ends)
            self.counts.results_written = writer.results_written
        if self.durable is not None and not self._writer_broken:
            assert self.durable.checkpoint is not None
            self.durable.checkpoint.done(chunk.first_index, chunk.block.count)

    def _writer_stop(self, exc: ResultWriterFailed) -> _Stop:
        """The result writer failed: nothing more is written, and the run ends FAILED."""
        self._writer_broken = True
        self.log.error("map_run.result_writer_failed", cause=exc.cause)
        return _Stop("writer", exc.error, exc.cause)

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
            self._requeue.appendleft(Chunk(chunk.seq, chunk.first_index + half, tail, suspect=True))
            self._requeue.appendleft(Chunk(chunk.seq, chunk.first_index, head, suspect=True))
            return None
        chunk.crashes += 1
        chunk.suspect = True
        if chunk.crashes < MAX_CRASHES_PER_ITEM:
            self._requeue.appendleft(chunk)
            return None
        cause = f"{done.reason} while running this item, {chunk.crashes} times; it was not retried further"
        self.log.error("map_run.item_killed_worker", first_index=chunk.first_index, cause=cause)
        self._record(local.failed_result(chunk, CRASH_ERROR, cause), writer, chunk)
        return self._read_stop

    # ------------------------------------------------------------------ end of run
    def _write_pending(
        self, reader: BlockReader, writer: ResultWriter | None, local: BatchProcessor, include_rest: bool
    ) -> None:
        """Write every unrun item (re-queued chunks, then the unread input) as PENDING. With a broken
        ``writer`` (None) they are only counted. Malformed data found in them ends what was read."""
        while self._requeue:
            self._check_stop()
            chunk = self._requeue[0]
            data, n, bounds, error = local.pending_records(chunk)
            if writer is not None:
                writer.write("PENDING", data, n, bounds)
            self._requeue.popleft()  # counted once taken (a failed write counts it on the retry)
            if id(chunk) in self._cut_short:  # running when the run was aborted: ABORTED items
                self.counts.aborted += n
            else:
                self.counts.pending += n
            if error is not None:
                self._unreadable(error.unread, error.cause)
        if include_rest and not self._reader_done and self._read_stop is None:
            index = self._next_index
            max_items = self.job.item_reader.max_items
            while True:
                self._check_stop()
                remaining = self._remaining(max_items, index)
                if remaining is not None and remaining <= 0:
                    break
                try:
                    n = min(remaining or MAX_CHUNK_ITEMS, MAX_CHUNK_ITEMS)
                    if self.durable is not None:
                        index, n = self.durable.before_read(reader, index, n)
                        self._next_index = index
                        if (rest := self._remaining(max_items, index)) is not None and rest <= 0:
                            break
                    block = reader.read_block(n, MAX_CHUNK_BYTES)
                except ItemReaderFailed as exc:
                    self.log.warning("map_run.pending_incomplete", cause=exc.cause)
                    break
                if block is None:
                    break
                chunk = Chunk(-1, index, block)
                index += block.count
                self._next_index = index
                data, n, bounds, error = local.pending_records(chunk)
                self.counts.pending += n  # counted first: written or not, it is pending
                if error is not None:
                    self._unread += error.unread
                    self._reader_done = True  # nothing after the bad record is read, on a retry either
                self._sync_total()
                if writer is not None:
                    writer.write("PENDING", data, n, bounds)
                if error is not None:
                    self.log.warning("map_run.pending_incomplete", cause=error.cause)
                    break
            self._reader_done = True

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
        if self.durable is not None and not self._writer_broken:
            try:
                self._journal_tick(force=True)  # the last chunks, before any PENDING record
            except ResultWriterFailed as exc:
                stop = stop if stop is not None and stop.kind == "writer" else self._writer_stop(exc)
        if stop is None and self._resumed_read_cause is not None:
            stop = _Stop("reader", "States.ItemReaderFailed", self._resumed_read_cause)
        cut_short = stop is not None and (stop.kind in ("abort", "worker", "writer") or self.stops.level > 0)
        if cut_short:
            # in-flight chunks are cut short: written as PENDING (and counted ABORTED on abort)
            assert stop is not None
            for chunk in self.executor.outstanding():
                self._requeue.append(chunk)
                if stop.kind == "abort":
                    self._cut_short.add(id(chunk))  # counted as ABORTED once decoded (_write_pending)
        self.executor.shutdown(abort=cut_short)
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
            if stop is not None:
                self._write_pending_or_count(reader, writer, local, stop)
            if writer is not None and not self._writer_broken:
                self._check_stop()
                writer.commit()
                manifest_uri = writer.manifest_uri
        except ResultWriterFailed as exc:
            s = self._writer_stop(exc)
            status, error, cause = "FAILED", s.error, s.cause
        finally:
            reader.close()
        if writer is not None:
            if manifest_uri is None:
                writer.abort()  # unfinished files are removed; finished ones stay, no manifest
            self.counts.results_written = writer.results_written
        return self._result(status, error, cause, manifest_uri, started, t0)

    def _write_pending_or_count(
        self, reader: BlockReader, writer: ResultWriter | None, local: BatchProcessor, stop: _Stop
    ) -> None:
        include_rest = stop.kind in ("threshold", "abort", "worker", "writer")
        target = None if self._writer_broken else writer
        try:
            self._write_pending(reader, target, local, include_rest)
        except ResultWriterFailed:
            self._write_pending(reader, None, local, include_rest)  # count the rest, then report
            raise

    def _stop_now(
        self, reader: BlockReader, writer: ResultWriter | None, started: str, t0: float
    ) -> MapRunResult:
        """A second stop request: kill the workers, remove unfinished files, write no manifest."""
        for chunk in self.executor.outstanding():
            self.counts.aborted += chunk.block.count
        self.executor.shutdown(abort=True)
        self.counts.pending += sum(c.block.count for c in self._requeue)
        self._requeue.clear()
        reader.close()
        if writer is not None:
            writer.abort()
            self.counts.results_written = writer.results_written
        c = self.counts
        # whatever else was read is accounted for: items read but not yet counted are pending
        c.pending = c.total - c.succeeded - c.failed - c.timed_out - c.aborted
        cause = (
            f"stopped at once by a second {self.stops.signal_name() or 'stop request'}; "
            "no manifest was written and unfinished result files were removed"
        )
        return self._result("ABORTED", "States.Aborted", cause, None, started, t0)

    def _result(
        self,
        status: str,
        error: str | None,
        cause: str | None,
        manifest_uri: str | None,
        started: str,
        t0: float,
    ) -> MapRunResult:
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
            "workersStartSeconds": round((self._first_dispatch or self._t0) - self._t0, 3),
        }
        cpu = _cpu_seconds()
        # the coordinator's process (with any threads of its caller, through the Python API)
        stats["coordinatorCpuSeconds"] = round(cpu[0] - self._cpu0[0], 3)
        if self.executor.name == "local":  # its workers are child processes, joined by now
            stats["workersCpuSeconds"] = round(cpu[1] - self._cpu0[1], 3)
        if self._writer_broken:
            stats["resultsNotWritten"] = max(0, done_items - self.counts.results_written)
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
        if self.durable is not None:
            self._journal_end(result)
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
                "mapRunId": self.run_id,
                "succeeded": c.succeeded,
                "failed": c.failed,
                "timedOut": c.timed_out,
                "total": total,
                "running": running,
                "bytesRead": reader.bytes_read if reader is not None else None,
                "totalBytes": self._total_bytes,
                "itemsRead": c.total,
                "maxItems": self.job.item_reader.max_items or None,
                "final": final,
            }
        )

    def _check_stop(self) -> bool:
        """Read the stop requests (at a safe point of the main thread) and log what they do.
        Returns True when the run must stop; raises StopNow when it must stop at once."""
        level = self.stops.level
        if level > self.stops.announced:
            self.stops.announced = level
            sig = self.stops.signal_name()
            if level == 1:
                self.log.warning(
                    "map_run.aborting",
                    signal=sig,
                    hint="unfinished items go to PENDING files; stop again to quit at once without a manifest",
                )
            else:
                self.log.warning("map_run.stopping_now", signal=sig, hint="no manifest will be written")
        if level >= 2:
            raise StopNow
        return level > 0

    def _abort_cause(self) -> str:
        sig = self.stops.signal_name()
        return f"the run was stopped by {sig}" if sig else "the run was stopped by the user"
