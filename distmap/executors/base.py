"""The executor seam: where chunks run.

The coordinator owns reading, sizing, the in-flight window, tolerance and writing. An executor
only runs ``BatchProcessor.process(chunk)`` somewhere and reports what came back:

* ``Completed(chunk, result)`` - the chunk ran (item failures are inside ``result``);
* ``Crashed(chunk, reason, blame)`` - the process running it died. With ``blame`` the chunk may
  have caused it (it was running), so the coordinator bisects it to isolate a poison item; without
  (it was only queued, or its node went away) the chunk is simply re-run.

A worker with several lanes runs its chunks side by side. When it dies, every chunk it held may
have caused it (all are blamed), and a ``suspect`` chunk (one being bisected) runs alone on a
worker (``place``), so a death is blamed on exactly the chunk, and in the end the item, that
caused it.

An executor must never hold more than the chunks it was given (the coordinator bounds that by
``capacity``), so memory stays O(window), and must not import anything heavy at module import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from distmap.config.model import MapJob
from distmap.contract import Chunk, ChunkResult, RunSpec

W = TypeVar("W")


@dataclass(slots=True)
class Completed:
    chunk: Chunk
    result: ChunkResult


@dataclass(slots=True)
class Crashed:
    chunk: Chunk
    reason: str
    blame: bool = True


Completion = Completed | Crashed


class WorkerInitError(Exception):
    """A worker could not start processing (for example the item function failed to import there)."""


class Executor(Protocol):
    name: str

    def connect(self, job: MapJob) -> int:
        """Get the compute ready (start or join a cluster) and return how many worker processes it
        can run at once; MaxConcurrency is spread over that many workers."""

    def describe(self) -> dict[str, object]:
        """A few facts for the ``map_run.started`` log event (cluster address, CPUs, ...)."""

    def start(self, spec: RunSpec, lanes: list[int]) -> None:
        """Start one worker per entry of ``lanes`` (items in flight inside that worker)."""

    @property
    def capacity(self) -> int:
        """How many chunks the coordinator may have submitted and not yet collected."""

    def submit(self, chunk: Chunk) -> None:
        """Queue a chunk; never blocks for long."""

    def poll(self, timeout: float) -> list[Completion]:
        """Wait up to ``timeout`` seconds and return whatever finished."""

    def outstanding(self) -> list[Chunk]:
        """Chunks submitted and not yet returned by ``poll``."""

    def shutdown(self, *, abort: bool = False) -> None:
        """Stop the workers; with ``abort`` do not wait for running chunks."""

    def close(self) -> None:
        """Release what ``connect`` acquired (for example a Ray cluster it started)."""


def place(chunk: Chunk, workers: list[W], held: Callable[[W], list[Chunk]], concurrent: bool) -> W | None:
    """The worker to give ``chunk`` to, or None to hold it back for now.

    One chunk at a time per worker (``concurrent`` False): the least loaded worker. Chunks side
    by side: a suspect chunk only goes to an idle worker, and nothing goes to a worker running a
    suspect chunk."""
    if not workers:
        return None
    if not concurrent:
        return min(workers, key=lambda w: len(held(w)))
    if chunk.suspect:
        return next((w for w in workers if not held(w)), None)
    free = [w for w in workers if not any(c.suspect for c in held(w))]
    return min(free, key=lambda w: len(held(w))) if free else None
