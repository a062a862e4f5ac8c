"""Job configuration: the ASL-shaped file format and its validated model."""

from distmap.config.model import (
    CatcherConfig,
    ItemBatcherConfig,
    ItemReaderConfig,
    MapJob,
    ProcessorConfig,
    ResultWriterConfig,
    RetrierConfig,
)
from distmap.config.parse import apply_override, load_job, parse_job

__all__ = [
    "CatcherConfig",
    "ItemBatcherConfig",
    "ItemReaderConfig",
    "MapJob",
    "ProcessorConfig",
    "ResultWriterConfig",
    "RetrierConfig",
    "apply_override",
    "load_job",
    "parse_job",
]
