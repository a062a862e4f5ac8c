"""``describe``, ``list`` and ``update`` of map runs, from their run directories.

``describe`` has the shape of DescribeMapRun (dates as ISO 8601 strings, like the rest of
distmap's output). While the run goes, its counts come from the journal's last line, which the
coordinator writes at least once a second: they are at most about a second old. ``update``
changes a running run's limits the way UpdateMapRun does: the coordinator reads ``update.json``
about twice a second and applies it; a run whose coordinator is not running gets the new limits
in its config snapshot, for its resume or redrive.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from distmap.errors import ConfigError
from distmap.journal import UPDATE, is_run_dir, last_line, state_dir
from distmap.runs import coordinator_alive, open_run

COUNT_FIELDS = ("pending", "running", "succeeded", "failed", "timedOut", "aborted", "total", "resultsWritten")


def _counts(header: dict[str, Any], run_dir: Path) -> dict[str, int]:
    if header.get("status") != "RUNNING" and header.get("itemCounts"):
        counts = dict(header["itemCounts"])
    else:
        line = last_line(run_dir) or {}
        counts = dict(line.get("c") or {})
        if not coordinator_alive(header):
            counts["running"] = 0
    out = {k: int(counts.get(k, 0)) for k in COUNT_FIELDS}
    if header.get("status") == "RUNNING":
        known = line.get("total") if (line := last_line(run_dir)) else None
        total = max(out["total"], known or 0)
        done = out["succeeded"] + out["failed"] + out["timedOut"]
        out["total"] = total
        out["pending"] = max(0, total - done - out["running"])
    out["failuresNotRedrivable"] = 0  # every FAILED, TIMED_OUT or ABORTED item can be redriven
    out["pendingRedrive"] = 0
    if header.get("status") == "RUNNING" and header.get("pendingRedrive"):
        since = out["succeeded"] - int(header.get("redriveBase") or 0) + out["failed"] + out["timedOut"]
        out["pendingRedrive"] = max(0, int(header["pendingRedrive"]) - since)
    return out


def _execution_counts(items: dict[str, int], batch: int) -> dict[str, int]:
    """Child executions: one per item, or one per ItemBatcher batch (estimated from the items)."""
    if batch <= 1:
        return dict(items)
    return {k: -(-v // batch) for k, v in items.items()}


def describe_map_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The DescribeMapRun response for the run in ``run_dir``."""
    path, header = open_run(run_dir)
    job = header["job"]
    items = _counts(header, path)
    batcher = job.get("item_batcher") or {}
    out: dict[str, Any] = {
        "mapRunArn": header["mapRunArn"],
        "executionArn": header["executionArn"],
        "status": header["status"],
        "startDate": header.get("startDate"),
    }
    if header.get("stopDate"):
        out["stopDate"] = header["stopDate"]
    out.update(
        maxConcurrency=job.get("max_concurrency") or 0,
        toleratedFailurePercentage=float(job.get("tolerated_failure_percentage") or 0),
        toleratedFailureCount=int(job.get("tolerated_failure_count") or 0),
        itemCounts=items,
        executionCounts=_execution_counts(items, int(batcher.get("max_items_per_batch") or 1)),
        redriveCount=int(header.get("redriveCount") or 0),
    )
    if header.get("redriveDate"):
        out["redriveDate"] = header["redriveDate"]
    if header.get("status") == "RUNNING" and not coordinator_alive(header):
        out["coordinator"] = "not running: `distmap resume` continues the run"
    return out


def list_map_runs(destination: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The runs under ``destination`` (default: the state directory), newest first."""
    root = Path(destination) if destination is not None else state_dir()
    if destination is None and not root.exists():
        return []  # no run without a ResultWriter yet
    if not root.is_dir():
        raise ConfigError("DESTINATION", f"{root} is not a directory")
    runs = []
    for child in root.iterdir():
        if child.is_dir() and is_run_dir(child):
            try:
                d = describe_map_run(child)
            except (ConfigError, OSError, ValueError, KeyError):
                continue
            runs.append(
                {
                    "runDir": str(child),
                    "executionArn": d["executionArn"],
                    "mapRunArn": d["mapRunArn"],
                    "stateMachineArn": d["mapRunArn"].replace(":mapRun:", ":stateMachine:").rsplit(":", 1)[0],
                    "status": d["status"],
                    "startDate": d["startDate"],
                    "stopDate": d.get("stopDate"),
                    "itemCounts": d["itemCounts"],
                }
            )
    runs.sort(key=lambda r: r["startDate"] or "", reverse=True)
    return runs


def update_map_run(
    run_dir: str | os.PathLike[str],
    *,
    max_concurrency: int | None = None,
    tolerated_failure_percentage: float | None = None,
    tolerated_failure_count: int | None = None,
) -> dict[str, Any]:
    """Change a run's limits (UpdateMapRun). Returns the change as the coordinator reads it."""
    path, header = open_run(run_dir)
    change: dict[str, Any] = {}
    if max_concurrency is not None:
        if max_concurrency < 0:
            raise ConfigError("maxConcurrency", f"must be 0 or more, got {max_concurrency}")
        change["maxConcurrency"] = int(max_concurrency)
    if tolerated_failure_percentage is not None:
        if not 0 <= tolerated_failure_percentage <= 100:
            raise ConfigError(
                "toleratedFailurePercentage", f"must be between 0 and 100, got {tolerated_failure_percentage}"
            )
        change["toleratedFailurePercentage"] = float(tolerated_failure_percentage)
    if tolerated_failure_count is not None:
        if tolerated_failure_count < 0:
            raise ConfigError("toleratedFailureCount", f"must be 0 or more, got {tolerated_failure_count}")
        change["toleratedFailureCount"] = int(tolerated_failure_count)
    if not change:
        raise ConfigError(
            "update", "give at least one of maxConcurrency, toleratedFailurePercentage, toleratedFailureCount"
        )
    if header.get("status") != "RUNNING":
        raise ConfigError(
            "RUN_DIR",
            f"map run {header['runId']!r} is {header.get('status')}: only a running run can be updated",
        )
    target = path / UPDATE
    pending: dict[str, Any] = {}
    if target.exists():
        try:
            pending = orjson.loads(target.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            pending = {}
    pending.update(change)
    tmp = path / f".{UPDATE}.tmp-{os.getpid()}"
    tmp.write_bytes(orjson.dumps(pending))
    os.replace(tmp, target)
    if not coordinator_alive(header):
        from distmap.journal import atomic_write, read_header

        fields = {"maxConcurrency": "max_concurrency", "toleratedFailurePercentage": "tolerated_failure_percentage",
                  "toleratedFailureCount": "tolerated_failure_count"}  # fmt: skip
        header = read_header(path)
        for key, value in change.items():
            header["job"][fields[key]] = value
        atomic_write(path / "run.json", orjson.dumps(header, option=orjson.OPT_INDENT_2))
    return pending
