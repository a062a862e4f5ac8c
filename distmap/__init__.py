"""distmap: AWS Step Functions Distributed Map semantics, on a laptop or a Ray cluster.

import distmap
result = distmap.run("configs/quickstart.yaml")
print(result.status, result.item_counts.to_dict(), result.manifest)
"""

from typing import TYPE_CHECKING, Any

from distmap.errors import (
    BackendUnavailable,
    ConfigError,
    DistmapError,
    ExceedToleratedFailureThreshold,
    ItemReaderFailed,
    ResultWriterFailed,
    StatesError,
    TaskFailed,
    Timeout,
)

if TYPE_CHECKING:
    from distmap.api import run
    from distmap.asl.callbacks import (
        TaskTokenError,
        current_task_token,
        send_task_failure,
        send_task_heartbeat,
        send_task_success,
    )
    from distmap.asl.execution import validate
    from distmap.config import MapJob, load_job
    from distmap.describe import describe_map_run, list_map_runs, update_map_run
    from distmap.run_state import ItemCounts, MapRunResult
    from distmap.runs import redrive, resume

# Imported on first use, so a worker process that only needs the batch executor (a Ray actor
# unpickling distmap.executors.ray_backend.ChunkWorker) does not pay for the coordinator, the
# readers and the config parser: about 0.15 s less per worker start.
_LAZY = {
    "run": "distmap.api",
    "MapJob": "distmap.config",
    "load_job": "distmap.config",
    "ItemCounts": "distmap.run_state",
    "MapRunResult": "distmap.run_state",
    "send_task_success": "distmap.asl.callbacks",
    "send_task_failure": "distmap.asl.callbacks",
    "send_task_heartbeat": "distmap.asl.callbacks",
    "current_task_token": "distmap.asl.callbacks",
    "TaskTokenError": "distmap.asl.callbacks",
    "validate": "distmap.asl.execution",
    "resume": "distmap.runs",
    "redrive": "distmap.runs",
    "describe_map_run": "distmap.describe",
    "list_map_runs": "distmap.describe",
    "update_map_run": "distmap.describe",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'distmap' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"


def execute(definition, input=None, **kwargs):
    """Run a whole Step Functions state machine; see ``distmap.asl.execution.execute``."""
    from distmap.asl.execution import execute as _execute

    return _execute(definition, input, **kwargs)


__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "DistmapError",
    "ExceedToleratedFailureThreshold",
    "ItemCounts",
    "ItemReaderFailed",
    "MapJob",
    "MapRunResult",
    "ResultWriterFailed",
    "StatesError",
    "TaskFailed",
    "TaskTokenError",
    "Timeout",
    "__version__",
    "current_task_token",
    "describe_map_run",
    "execute",
    "list_map_runs",
    "load_job",
    "redrive",
    "resume",
    "run",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
    "update_map_run",
    "validate",
]
