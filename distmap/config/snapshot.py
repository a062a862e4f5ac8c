"""A job as JSON and back: the config snapshot a run journal keeps, so a run can be resumed or
redriven from its directory alone.

The snapshot is the validated ``MapJob`` (paths already resolved), not the job file: a job file
edited after the run started does not change what a resume runs. An item function given as a
callable (Python API) is stored as ``module:qualname`` when it can be imported that way; else the
snapshot names no function and ``distmap.resume(..., function=...)`` must give it again.
"""

from __future__ import annotations

import dataclasses
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


def function_ref(fn: Any) -> str | None:
    """``module:function`` for an importable top-level callable, else None."""
    if isinstance(fn, str):
        return fn
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not name or "<" in name or "." in name or module == "__main__":
        return None
    return f"{module}:{name}"


def job_to_dict(job: MapJob) -> dict[str, Any]:
    """The job as plain JSON values."""
    data = dataclasses.asdict(job)
    data["processor"]["function"] = function_ref(job.processor.function)
    data["item_selector"] = dict(job.item_selector) if job.item_selector is not None else None
    data["variables"] = dict(job.variables)
    return data


def job_from_dict(data: dict[str, Any], function: Any = None) -> MapJob:
    """Rebuild the ``MapJob`` of ``job_to_dict``; ``function`` replaces the stored one."""
    ir = dict(data["item_reader"])
    ir["csv_headers"] = tuple(ir.get("csv_headers") or ())
    ir["list_params"] = tuple(tuple(p) for p in ir.get("list_params") or ())
    pr = dict(data["processor"])
    pr["retry"] = tuple(
        RetrierConfig(**{**r, "error_equals": tuple(r["error_equals"])}) for r in pr.get("retry") or ()
    )
    pr["catch"] = tuple(
        CatcherConfig(**{**c, "error_equals": tuple(c["error_equals"])}) for c in pr.get("catch") or ()
    )
    if function is not None:
        pr["function"] = function
    if pr["function"] is None:
        raise ValueError("the run's item function was a callable that cannot be imported: pass function=")
    top = dict(data)
    top["item_reader"] = ItemReaderConfig(**ir)
    top["processor"] = ProcessorConfig(**pr)
    if top.get("item_batcher") is not None:
        top["item_batcher"] = ItemBatcherConfig(**top["item_batcher"])
    if top.get("result_writer") is not None:
        top["result_writer"] = ResultWriterConfig(**top["result_writer"])
    return MapJob(**top)
