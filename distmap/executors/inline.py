"""The inline backend: chunks run in the calling process, one at a time, in the order submitted.

It plays the part httpx's ``MockTransport`` plays for httpx: the coordinator, readers, writer and
batch executor are all real, only the processes are gone. That makes it the backend for

* fast tests of the coordinator (no fork, no Ray; a run takes milliseconds), with ``crash`` to
  script worker deaths (bisection, re-runs, items that kill their worker) and ``die`` to script
  the coordinator's own death at any chunk (the run journal and ``distmap.resume`` tests), with
  ``per_poll`` chunks finishing in one turn of its loop;
* debugging an item function with ``pdb`` or a profiler (``--backend inline``).

MaxConcurrency still applies: all lanes live in this one process (threads for sync functions,
asyncio tasks for async ones). Never imports Ray.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace

from distmap.config.model import MapJob
from distmap.contract import Chunk, RunSpec
from distmap.executors.base import Completed, Completion, Crashed
from distmap.processor import BatchProcessor

CrashScript = Callable[[Chunk], "str | None"]
"""Called before each chunk runs; a returned reason makes the chunk crash (blamed) instead."""

CoordinatorDeath = Callable[[int], bool]
"""Called with the number of chunks run so far, before each poll returns; True kills the
coordinator there (``CoordinatorDied`` is raised out of ``poll``)."""


class CoordinatorDied(BaseException):
    """A scripted death of the coordinator (SIGKILL, OOM, a reboot), for journal and resume tests.

    A BaseException, so no ``except Exception`` in the coordinator takes it for an item's or a
    writer's failure. The chunks run so far stay run; what the coordinator had not committed is
    lost, as after a real crash (the run's header still says RUNNING)."""


class InlineExecutor:
    """Runs chunks in this process. ``window`` is how many chunks may be submitted at once."""

    name = "inline"

    def __init__(
        self,
        *,
        window: int = 2,
        crash: CrashScript | None = None,
        die: CoordinatorDeath | None = None,
        per_poll: int = 1,
    ) -> None:
        """``per_poll`` chunks run in each ``poll`` (so several finish in one turn of the
        coordinator's loop); ``die`` scripts the coordinator's death."""
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.crash = crash
        self.die = die
        self.per_poll = max(1, per_poll)
        self.queue: deque[Chunk] = deque()
        self.processor: BatchProcessor | None = None
        self.chunks_run = 0

    def connect(self, job: MapJob) -> int:
        return 1

    def describe(self) -> dict[str, object]:
        return {"window": self.window}

    def start(self, spec: RunSpec, lanes: list[int]) -> None:
        self.processor = BatchProcessor(replace(spec, lanes=sum(lanes)))

    @property
    def capacity(self) -> int:
        return self.window

    def submit(self, chunk: Chunk) -> None:
        self.queue.append(chunk)

    def outstanding(self) -> list[Chunk]:
        return list(self.queue)

    def poll(self, timeout: float) -> list[Completion]:
        """Run the oldest queued chunks (there is nothing to wait for)."""
        done: list[Completion] = []
        while self.queue and len(done) < self.per_poll:
            done.append(self._run_one())
            if self.die is not None and self.die(self.chunks_run):
                raise CoordinatorDied(f"scripted coordinator death after {self.chunks_run} chunks")
        return done

    def _run_one(self) -> Completion:
        assert self.processor is not None, "start() first"
        chunk = self.queue[0]
        reason = self.crash(chunk) if self.crash is not None else None
        if reason is not None:
            self.queue.popleft()
            return Crashed(chunk, reason, blame=True)
        result = self.processor.process(chunk)
        self.queue.popleft()
        self.chunks_run += 1
        return Completed(chunk, result)

    def shutdown(self, *, abort: bool = False) -> None:
        self.queue.clear()

    def close(self) -> None:
        if self.processor is not None:
            self.processor.close()
        self.processor = None
