"""Executors for DISTRIBUTED Map states run by ``distmap execute``: bounded, whatever the nesting.

Two rules keep the number of worker processes (or Ray actors) of a whole execution bounded:

* **Inside a worker, in process.** A DISTRIBUTED Map that starts inside a worker (the child
  workflow of an outer DISTRIBUTED Map, on a local worker process or a Ray actor) runs on the
  ``InlineExecutor`` in that worker: the real coordinator, readers, batch executor and writer,
  with its MaxConcurrency as lanes (threads) of that worker. A worker never starts workers, so
  nothing waits for a process another waiting process holds: no deadlock.
* **In the driver, one budget.** DISTRIBUTED Maps that run at the same time in the driver
  (iterations of an inline Map, Parallel branches, child executions) take their workers from one
  budget per backend: the workers the backend offers (cores, or the Ray cluster's CPUs). A map
  run takes as many as it wants that are free (at least one), and waits while none is; it gives
  them back when it ends. Nothing that holds workers ever waits for the budget (a map run's
  children run in its workers, where the first rule applies), so the wait always ends.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from distmap.config.model import MapJob
from distmap.executors.worker_context import current_worker


class WorkerBudget:
    """Worker slots shared by the map runs of this process on one backend."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.used = 0
        self.peak = 0

    def acquire(self, total: int, wanted: int) -> int:
        """Take between 1 and ``wanted`` slots of ``total``, waiting while none is free."""
        wanted = max(1, min(wanted, total))
        with self._cond:
            while total - self.used < 1:
                self._cond.wait()
            granted = min(wanted, total - self.used)
            self.used += granted
            self.peak = max(self.peak, self.used)
            return granted

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


_BUDGETS: dict[str, WorkerBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def budget_for(backend: str) -> WorkerBudget:
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(backend, WorkerBudget())


def _reset_after_fork() -> None:
    global _BUDGETS_LOCK
    _BUDGETS.clear()
    _BUDGETS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


class BudgetedExecutor:
    """Wraps an executor so its map run takes its workers from the backend's ``WorkerBudget``:
    ``connect`` returns how many it was granted (the coordinator starts that many), ``close``
    gives them back."""

    def __init__(self, inner: Any, budget: WorkerBudget) -> None:
        self.inner = inner
        self.budget = budget
        self.name = inner.name
        self.granted = 0
        self.extra_workers = False  # it runs exactly the workers the budget granted

    def connect(self, job: MapJob) -> int:
        total = self.inner.connect(job)
        wanted = min(total, job.max_concurrency) if job.max_concurrency > 0 else total
        self.granted = self.budget.acquire(total, wanted)
        return self.granted

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if self.granted:
                self.budget.release(self.granted)
                self.granted = 0

    def __getattr__(self, name: str) -> Any:  # describe, start, capacity, submit, poll, ...
        return getattr(self.inner, name)


def executor_for_map(backend: str, options: dict[str, Any]) -> tuple[Any, int | None]:
    """The executor for a DISTRIBUTED Map state, and the lanes to use when the state sets no
    MaxConcurrency (None: the backend's default, one per worker)."""
    from distmap.executors import make_executor

    if current_worker() is not None:
        from distmap.executors.inline import InlineExecutor

        return InlineExecutor(), os.cpu_count() or 1
    executor = make_executor(backend, **options)
    if backend == "inline":
        return executor, None
    return BudgetedExecutor(executor, budget_for(backend)), None
