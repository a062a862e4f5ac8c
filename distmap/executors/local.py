"""The local backend: one worker process per core on this machine. Does not import Ray.

Each worker owns a socket pair to the coordinator. A reader thread in the worker drains
incoming chunks into a queue so neither side can block the other while large results flow
back. The coordinator watches both the sockets and the process sentinels: a worker that dies
(segfault, ``os._exit``, OOM kill) is replaced, and the chunks it held are reported as
``Crashed`` so the coordinator can re-run or bisect them. No item is lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing as mp
import os
import queue
import signal
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from typing import Any

from distmap.config.model import MapJob
from distmap.contract import Chunk, ChunkResult, RunSpec, chunks_per_worker
from distmap.executors.base import Completed, Completion, Crashed, WorkerInitError, place
from distmap.executors.wire import recv_msg, send_msg, socket_pair
from distmap.executors.worker_context import enter_worker
from distmap.memory import tune_allocator
from distmap.processor import BatchProcessor
from distmap.readers.base import RawBlock

_STOP = "stop"


def pack_chunk(chunk: Chunk, tag: int) -> tuple[Any, tuple[bytes, ...]]:
    """Split a chunk into a small header and its raw payload (sent as a blob). ``tag`` names this
    dispatch: the worker's result carries it as its ``seq`` (results may come back out of order,
    and the halves of a bisected chunk share their ``seq``)."""
    block = chunk.block
    origin = (block.source, block.header)  # several files: the block's file and CSV header
    if isinstance(block.payload, bytes):
        if block.span is not None and len(block.payload) >= SPAN_MIN_BYTES:
            # a plain local file: the worker reads the bytes itself (one copy, none through the socket)
            where = ("span", block.span, len(block.payload))
            return ("chunk", tag, chunk.first_index, block.count, block.first_line, where, origin), ()
        return ("chunk", tag, chunk.first_index, block.count, block.first_line, None, origin), (block.payload,)
    return (
        "chunk",
        tag,
        chunk.first_index,
        block.count,
        block.first_line,
        (block.payload, block.lines),
        origin,
    ), ()


def unpack_chunk(header: Any, blobs: list[bytearray], files: SpanReader) -> Chunk:
    _, seq, first_index, count, first_line, listed, (source, head) = header
    if listed is None:
        payload = bytes(blobs[0]) if blobs else b""
        return Chunk(seq, first_index, RawBlock(payload, count, first_line, None, source, head))
    if listed[0] == "span":
        _, offset, size = listed
        block = RawBlock(b"", count, first_line, None, source, head, offset)
        try:
            block.payload = files.read(source, offset, size)
        except SpanError as exc:
            block.unreadable = str(exc)
        return Chunk(seq, first_index, block)
    payload, lines = listed
    return Chunk(seq, first_index, RawBlock(payload, count, first_line, lines, source, head))


SPAN_MIN_BYTES = 64 << 10
"""Blocks of a plain local file at least this big are read by the worker itself."""


class SpanError(Exception):
    """A worker could not read a block's byte range again."""


class SpanReader:
    """A worker's reads of byte ranges of the run's local input files. Only the file read last
    stays open: blocks come file after file, and a directory of many thousands of files must not
    use up the worker's file descriptors."""

    def __init__(self, default: str) -> None:
        self.default = default
        self.path: str | None = None
        self.fd = -1

    def read(self, path: str | None, offset: int, size: int) -> bytes:
        path = path or self.default
        try:
            if path != self.path:
                self.close()
                self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                self.path = path
            fd = self.fd
            parts, got = [], 0
            while got < size:
                data = os.pread(fd, size - got, offset + got)
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except OSError as exc:
            raise SpanError(f"cannot read {path} again (bytes {offset}-{offset + size}): {exc}") from None
        if got < size:
            raise SpanError(f"{path} changed while the run read it: it ends before byte {offset + size}")
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.path, self.fd = None, -1


def pack_result(res: ChunkResult) -> tuple[Any, tuple[bytes, ...]]:
    ok, bad = res.succeeded, res.failed
    res.succeeded = res.failed = b""
    return ("result", res), (ok, bad)


def unpack_result(header: Any, blobs: list[bytearray]) -> ChunkResult:
    res: ChunkResult = header[1]
    res.succeeded, res.failed = blobs[0], blobs[1]  # bytearrays: written to files without a copy
    return res


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except Exception:
            pass


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker_main(sock: socket.socket, spec: RunSpec) -> None:
    # Ctrl-C reaches the whole process group: only the coordinator acts on it. SIGTERM kills just
    # this worker (its chunks are re-run elsewhere); the coordinator's handler must not survive
    # the fork, or the worker would ignore SIGTERM and multiprocessing's exit hook would wait forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by _spawn around the fork
    _die_with_parent()
    enter_worker("local")  # a DISTRIBUTED Map inside a child workflow runs in this process
    tune_allocator()  # spawned (not forked) workers need it too
    try:
        proc = BatchProcessor(spec)
        proc.start()
    except BaseException as exc:
        send_msg(sock, ("init_error", f"{type(exc).__name__}: {exc}"))
        os._exit(3)
    inbox: queue.SimpleQueue[Chunk | None] = queue.SimpleQueue()
    files = SpanReader(spec.decode.source)

    def pump() -> None:
        # Drain incoming chunks even while the main thread is busy or blocked sending a
        # result, so coordinator and worker can never wait on each other.
        while True:
            try:
                header, blobs = recv_msg(sock)
            except (EOFError, OSError):
                inbox.put(None)
                return
            if header == _STOP:
                inbox.put(None)
                return
            inbox.put(unpack_chunk(header, blobs, files))

    threading.Thread(target=pump, name="distmap-inbox", daemon=True).start()
    send_lock = threading.Lock()

    def run_chunks() -> None:
        while True:
            chunk = inbox.get()
            if chunk is None:
                inbox.put(None)  # for the other runners
                return
            result = proc.process(chunk)
            header, blobs = pack_result(result)
            with send_lock:
                send_msg(sock, header, blobs)

    if spec.lanes > 1:  # chunks run side by side, sharing the lanes
        runners = [
            threading.Thread(target=run_chunks, name="distmap-chunk", daemon=True)
            for _ in range(chunks_per_worker(spec.lanes))
        ]
        for t in runners:
            t.start()
        for t in runners:
            t.join()
    else:
        run_chunks()
    sock.close()
    os._exit(0)  # abandoned lane threads (hung items) must not keep the process alive


@dataclass(eq=False)
class _Worker:
    slot: int
    proc: Any
    conn: socket.socket
    inflight: dict[int, Chunk] = field(default_factory=dict)
    """Chunks given to it, by dispatch tag, oldest first."""
    alive: bool = True


def default_start_method() -> str:
    env = os.environ.get("DISTMAP_START_METHOD")
    if env:
        return env
    return "fork" if sys.platform.startswith("linux") else "spawn"


class LocalExecutor:
    """Runs chunks in worker processes on this machine."""

    name = "local"
    extra_workers = True
    """It may start more worker processes than cores for latency-bound work at thousands of lanes
    (``coordinator.THREAD_LANES_PER_PROCESS``)."""

    def __init__(
        self, *, workers: int | None = None, per_worker_window: int = 2, start_method: str | None = None
    ) -> None:
        self.max_workers = workers or os.cpu_count() or 1
        self.base_window = per_worker_window
        self.per_worker_window = per_worker_window
        self.ctx = mp.get_context(start_method or default_start_method())
        self.workers: list[_Worker] = []
        self.spec: RunSpec | None = None
        self.lanes: list[int] = []
        self.init_error: str | None = None
        self.held: deque[Chunk] = deque()
        """Chunks waiting for a worker they may run on (``place``)."""
        self._tags = itertools.count()

    # -------------------------------------------------------------- lifecycle
    def connect(self, job: MapJob) -> int:
        return self.max_workers

    def describe(self) -> dict[str, object]:
        return {"start_method": self.ctx.get_start_method()}

    def start(self, spec: RunSpec, lanes: list[int]) -> None:
        self.spec = spec
        self.lanes = list(lanes)
        self.concurrent = max(lanes, default=1) > 1
        self.per_worker_window = chunks_per_worker(max(lanes, default=1), self.base_window)
        self.workers = [self._spawn(slot) for slot in range(len(lanes))]

    def _spawn(self, slot: int) -> _Worker:
        assert self.spec is not None
        parent, child = socket_pair()
        spec = replace(self.spec, lanes=self.lanes[slot])
        proc = self.ctx.Process(
            target=_worker_main, args=(child, spec), name=f"distmap-worker-{slot}", daemon=True
        )
        # no signal may reach the child before it has reset the coordinator's handlers
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()
        return _Worker(slot, proc, parent)

    @property
    def capacity(self) -> int:
        return max(1, len(self.workers)) * self.per_worker_window

    def outstanding(self) -> list[Chunk]:
        return [c for w in self.workers for c in w.inflight.values()] + list(self.held)

    # -------------------------------------------------------------- work
    def submit(self, chunk: Chunk) -> None:
        self.held.append(chunk)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.held:
            chunk = self.held[0]
            alive = [w for w in self.workers if w.alive]
            w = place(chunk, alive, lambda w: list(w.inflight.values()), self.concurrent)
            if w is None:
                return
            self.held.popleft()
            tag = next(self._tags)
            w.inflight[tag] = chunk
            try:
                header, blobs = pack_chunk(chunk, tag)
                send_msg(w.conn, header, blobs)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass  # the worker died; poll() sees its sentinel and reports the chunk as crashed

    def poll(self, timeout: float) -> list[Completion]:
        by_obj: dict[Any, tuple[str, _Worker]] = {}
        for w in self.workers:
            by_obj[w.conn] = ("conn", w)
            by_obj[w.proc.sentinel] = ("dead", w)
        ready = wait(list(by_obj), timeout)
        out: list[Completion] = []
        dead: list[_Worker] = []
        for obj in ready:
            kind, w = by_obj[obj]
            if kind == "conn":
                if not self._drain(w, out):
                    dead.append(w)
            elif w not in dead:
                dead.append(w)
        for w in dead:
            self._drain(w, out)
            if self.init_error is None:  # a worker that cannot start is not replaced
                self._replace(w, out)
        if self.init_error is not None and not out:
            raise WorkerInitError(self.init_error)
        self._dispatch()
        return out

    def _drain(self, w: _Worker, out: list[Completion]) -> bool:
        """Read every finished result; False if the connection is closed."""
        try:
            while wait([w.conn], 0):
                header, blobs = recv_msg(w.conn)
                if header[0] == "init_error":
                    self.init_error = header[1]  # raised once the results already read are returned
                    return False
                result = unpack_result(header, blobs)
                chunk = w.inflight.pop(result.seq, None)
                if chunk is None:  # pragma: no cover - protocol invariant
                    raise RuntimeError(f"worker returned a chunk it was not given (tag {result.seq})")
                result.seq = chunk.seq
                out.append(Completed(chunk, result))
        except (EOFError, OSError):
            return False
        return True

    def _replace(self, w: _Worker, out: list[Completion]) -> None:
        w.proc.join(timeout=5)
        code = w.proc.exitcode
        w.alive = False
        with contextlib.suppress(OSError):
            w.conn.close()
        reason = _describe_exit(code)
        # one lane: a worker runs its chunks in order, only the first was running; lanes: all
        # of them were running side by side, and any may hold the item that killed it
        blame = True
        for chunk in w.inflight.values():
            out.append(Crashed(chunk, reason, blame))
            blame = self.concurrent
        w.inflight.clear()
        self.workers[self.workers.index(w)] = self._spawn(w.slot)

    def shutdown(self, *, abort: bool = False) -> None:
        self.held.clear()
        for w in self.workers:
            if abort:
                w.proc.kill()
                continue
            with contextlib.suppress(OSError):
                send_msg(w.conn, _STOP)
        for w in self.workers:
            w.proc.join(timeout=0.5 if abort else 10)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)
            with contextlib.suppress(OSError):
                w.conn.close()
        self.workers = []

    def close(self) -> None:
        pass


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the worker process stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"the worker process was terminated by {name}{hint}"
    return f"the worker process exited with code {code}"
