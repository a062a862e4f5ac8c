"""The Ray actor class. Kept apart from ``ray_backend`` so that a worker process unpickling it
imports only the batch executor (not structlog, the coordinator or the config parser): Ray
worker start-up is the fixed cost of every Ray run."""

from __future__ import annotations

import pickle

from distmap.executors.worker_context import enter_worker
from distmap.memory import tune_allocator
from distmap.processor import BatchProcessor, Chunk, ChunkResult, RunSpec


class ChunkWorker:
    """Runs chunks of one map run inside a Ray actor. Wrapped with ``ray.remote`` at run time."""

    def __init__(self, spec: RunSpec) -> None:
        import ray

        tune_allocator()
        enter_worker("ray")  # a DISTRIBUTED Map inside a child workflow runs in this actor
        self.node_id = ray.get_runtime_context().get_node_id()
        self.error: str | None = None
        try:
            self.proc: BatchProcessor | None = BatchProcessor(spec)
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
