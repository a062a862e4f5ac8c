"""distmap: AWS Step Functions Distributed Map semantics, on a laptop or a Ray cluster.

import distmap
result = distmap.run("configs/quickstart.yaml")
print(result.status, result.item_counts.to_dict(), result.manifest)
"""

from distmap.api import run
from distmap.config import MapJob, load_job
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
from distmap.run_state import ItemCounts, MapRunResult

__version__ = "0.1.0"

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
    "Timeout",
    "__version__",
    "load_job",
    "run",
]
