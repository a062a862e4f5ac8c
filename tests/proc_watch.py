"""Counts the worker processes (local backend) or worker actors (Ray) alive while a test runs.

``with WorkerWatch(backend) as w: ...`` samples every 5 ms; ``w.peak`` is the most workers seen
alive at once beyond those alive before the block (local: descendant processes of this process,
read from /proc; Ray: actors of class ChunkWorker that are not DEAD, pending ones included, read
from the GCS)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any


def descendants(pid: int) -> set[int]:
    """Every live descendant process of ``pid`` (Linux /proc)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list(Path(f"/proc/{p}/task").glob("*"))
        except OSError:  # the process ended while we looked
            continue
        for task in tasks:
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def live_ray_workers() -> int:
    from ray._private.state import actors

    return sum(
        1
        for a in actors().values()
        if a.get("ActorClassName", a.get("ClassName", "")).endswith("ChunkWorker")
        and a.get("State") != "DEAD"
    )


class WorkerWatch:
    def __init__(self, backend: str, interval: float = 0.005) -> None:
        self.backend = backend
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._baseline = 0

    def _count(self) -> int:
        if self.backend == "ray":
            return live_ray_workers()
        return len(descendants(os.getpid()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._count() - self._baseline)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> WorkerWatch:
        self._baseline = self._count()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
