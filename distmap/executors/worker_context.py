"""Whether this process is one of distmap's workers, and which backend's.

The worker entry points (``local._worker_main`` and the Ray ``ChunkWorker``) call ``enter_worker``
before they build their batch executor. A DISTRIBUTED Map that starts inside a worker (the child
workflow of an outer DISTRIBUTED Map) asks ``current_worker()`` and runs on the in-process executor
instead of starting processes or actors of its own: a worker never forks workers, so the number of
processes (or actors) of a whole execution is that of its outermost map runs, and no worker ever
waits for a process slot another worker holds.

A plain module flag, not an environment variable: it must not leak into subprocesses a child
workflow's Task starts (a ``distmap execute`` run from a Task is not a worker).
"""

from __future__ import annotations

_backend: str | None = None


def enter_worker(backend: str) -> None:
    """Mark this process as a ``backend`` worker (``local`` or ``ray``), for its whole life."""
    global _backend
    _backend = backend


def current_worker() -> str | None:
    """The backend this process is a worker of, or None in a driver / interpreter process."""
    return _backend
