"""Task functions for the state machine tests (mapped in each test's resources)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from distmap import StatesError


class OrderRejected(Exception):
    pass


def echo(params: Any) -> Any:
    return params


def add(params: dict[str, Any]) -> dict[str, Any]:
    return {"sum": params["a"] + params["b"]}


def double(params: Any) -> Any:
    value = params["value"] if isinstance(params, dict) else params
    return value * 2


def reject(params: Any) -> Any:
    raise OrderRejected(f"order {params.get('id') if isinstance(params, dict) else params} rejected")


def throttle(params: Any) -> Any:
    raise StatesError("Service.Throttled", "slow down")


def flaky(params: dict[str, Any]) -> Any:
    """Fails ``params['fails']`` times (counted in ``params['dir']``), then succeeds."""
    counter = Path(params["dir"]) / "calls"
    calls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(calls))
    if calls <= params["fails"]:
        raise StatesError("Service.Unavailable", f"attempt {calls}")
    return {"attempts": calls}


def sleep(params: dict[str, Any]) -> Any:
    time.sleep(params["seconds"])
    return {"slept": params["seconds"]}


def fail_odd(params: dict[str, Any]) -> Any:
    """Child-workflow task: items with an odd id fail."""
    if params["id"] % 2:
        raise ValueError(f"odd id {params['id']}")
    return {"id": params["id"], "ok": True}


def batch_ids(params: dict[str, Any]) -> Any:
    return {"ids": [item["id"] for item in params["Items"]], "input": params.get("BatchInput")}


def nan_result(event: Any) -> Any:
    """A Task result holding Infinity (JSON cannot hold it)."""
    return {"ratio": float("inf")}


def with_pid(params: dict[str, Any]) -> Any:
    """The input plus the id of the process running this Task (nested-map tests)."""
    import os

    return {**params, "pid": os.getpid()}


def double_with_pid(params: Any) -> Any:
    """``value * 2`` and the id of the process running this Task."""
    import os

    return {"value": double(params), "pid": os.getpid()}


def mark(params: dict[str, Any]) -> Any:
    """Appends a line to ``params['dir']/<params['key']>`` (a side effect counted by the tests);
    returns the input."""
    with open(Path(params["dir"]) / str(params["key"]), "a") as fh:
        fh.write("ran\n")
    return params


def kill_worker_once(params: dict[str, Any]) -> Any:
    """SIGKILLs the process running it the first time it sees ``params['key'] == params['victim']``
    (a marker file in ``params['dir']`` remembers it), like an OOM kill; else returns the input."""
    import os
    import signal

    if params["key"] == params["victim"]:
        marker = Path(params["dir"]) / "killed"
        if not marker.exists():
            marker.write_text("once")
            os.kill(os.getpid(), signal.SIGKILL)
    return params
