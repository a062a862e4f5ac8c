"""The Ray actor class. Kept apart from ``ray_backend`` so that a worker process unpickling it
imports only the batch executor (not structlog, the coordinator or the config parser): Ray
worker start-up is the fixed cost of every Ray run.

Ray starts actors with the driver's working directory first on ``sys.path``. So this module
imports nothing at load time but ``distmap.imports``, and the actor receives its ``RunSpec`` as
pickled bytes: it takes that directory off ``sys.path`` (``adopt_workdir``) before anything
else is imported, so a ``csv.py`` or ``orjson.py`` there cannot shadow the real modules. Only the
item function's own modules are then loaded from there (see ``distmap.imports``).
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from distmap.imports import adopt_workdir, allow

if TYPE_CHECKING:
    from distmap.contract import Chunk, ChunkResult


class ChunkWorker:
    """Runs chunks of one map run inside a Ray actor. Wrapped with ``ray.remote`` at run time."""

    def __init__(self, spec_bytes: bytes, workdir: str | None, modules: tuple[str, ...] = ()) -> None:
        adopt_workdir(workdir)  # before any other import: see the module docstring
        for module in modules:
            allow(module)
        import ray

        from distmap.executors.worker_context import enter_worker
        from distmap.memory import tune_allocator
        from distmap.processor import BatchProcessor

        tune_allocator()
        enter_worker("ray")  # a DISTRIBUTED Map inside a child workflow runs in this actor
        self.node_id = ray.get_runtime_context().get_node_id()
        self.error: str | None = None
        self.proc: Any = None
        try:
            self.proc = BatchProcessor(pickle.loads(spec_bytes))
            self.proc.start()
        except BaseException as exc:  # reported through ready(), like a local worker's init_error
            self.proc = None
            self.error = f"{type(exc).__name__}: {exc}"

    def ready(self) -> tuple[str, str | None]:
        return self.node_id, self.error

    def process(self, chunk: Chunk) -> ChunkResult:
        assert self.proc is not None
        res = self.proc.process(chunk)
        # out-of-band: the encoded records are copied into the object store once, and the driver
        # writes them to the result files straight from there (no unpickling copy)
        res.succeeded = pickle.PickleBuffer(res.succeeded)  # type: ignore[assignment]
        res.failed = pickle.PickleBuffer(res.failed)  # type: ignore[assignment]
        return res
