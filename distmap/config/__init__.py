"""Job configuration: the ASL-shaped file format and its validated model.

The parser (``load_job``, ``parse_job``, ``apply_override``) is imported on first use, so worker
processes that only need the model do not import YAML.
"""

from typing import Any

from distmap.config.model import (
    CatcherConfig,
    ItemBatcherConfig,
    ItemReaderConfig,
    MapJob,
    ProcessorConfig,
    ResultWriterConfig,
    RetrierConfig,
)

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


def __getattr__(name: str) -> Any:
    if name in ("apply_override", "load_job", "parse_job"):
        from distmap.config import parse

        return getattr(parse, name)
    raise AttributeError(f"module 'distmap.config' has no attribute {name!r}")
