"""Item functions used by the tests (importable by worker processes as ``itemfns:<name>``)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from distmap import StatesError


def echo(item: Any) -> Any:
    return item


def double(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "double": item["id"] * 2}


def fail_if_mod(item: dict[str, Any]) -> Any:
    """Fails items whose id is divisible by the ``mod`` field (default 10)."""
    if item["id"] % item.get("mod", 10) == 0:
        raise ValueError(f"bad item {item['id']}")
    return item


def fail_ids_below(item: dict[str, Any]) -> Any:
    if item["id"] < item.get("limit", 0):
        raise ValueError(f"bad item {item['id']}")
    return item


def always_fail(item: Any) -> Any:
    raise RuntimeError("nope")


def states_error(item: Any) -> Any:
    raise StatesError("Custom.Error", "exact cause")


class CountingFailure(Exception):
    pass


_calls: dict[Any, int] = {}


def fail_first_n(item: dict[str, Any]) -> Any:
    """Fails the first ``item['fails']`` attempts for this item (per process), then succeeds."""
    key = item["id"]
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] <= item.get("fails", 1):
        raise CountingFailure(f"attempt {_calls[key]}")
    if item.get("sleep_ms"):
        time.sleep(item["sleep_ms"] / 1000)
    return {"id": key, "attempts": _calls[key]}


def not_json(item: Any) -> Any:
    return {"when": object()}


def hang_if_flagged(item: dict[str, Any]) -> Any:
    """Sleeps far longer than any timeout for items with ``hang: true``."""
    if item.get("hang"):
        time.sleep(600)
    return item


def busy_hang_if_flagged(item: dict[str, Any]) -> Any:
    """A pure-Python infinite loop for flagged items."""
    if item.get("hang"):
        while True:
            pass
    return item


def sleep_ms(item: dict[str, Any]) -> Any:
    time.sleep(item.get("ms", 10) / 1000)
    return {"id": item["id"], "thread": threading.get_ident(), "pid": os.getpid()}


def sleep_span(item: dict[str, Any]) -> Any:
    """Sleeps ``ms`` and reports when it ran (wall clock), to measure how many items overlap."""
    start = time.time()
    time.sleep(item.get("ms", 10) / 1000)
    return {"id": item["id"], "start": start, "end": time.time()}


async def async_sleep_ms(item: dict[str, Any]) -> Any:
    await asyncio.sleep(item.get("ms", 10) / 1000)
    if item.get("hang"):
        await asyncio.sleep(600)
    return {"id": item["id"], "pid": os.getpid()}


def kill_worker_on(item: dict[str, Any]) -> Any:
    """Kills its own worker process (SIGKILL) for items with ``kill: true``."""
    if item.get("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def exit_once(item: dict[str, Any]) -> Any:
    """``os._exit`` the first time an item with ``exit_once`` is seen (marker file in ``dir``)."""
    if item.get("exit_once"):
        marker = Path(item["dir"]) / f"exited-{item['id']}"
        if not marker.exists():
            marker.write_text("x")
            os._exit(7)
    return item


def batch_sum(batch: dict[str, Any]) -> Any:
    return {"n": len(batch["Items"]), "ids": [i["id"] for i in batch["Items"]], "bi": batch.get("BatchInput")}


def batch_fail_if_contains(batch: dict[str, Any]) -> Any:
    if any(i["id"] == 13 for i in batch["Items"]):
        raise ValueError("batch holds 13")
    return len(batch["Items"])


def fail_flagged(item: dict[str, Any]) -> Any:
    """Fails (ValueError) when the item's ``fail`` field is truthy ("1" in CSV); else echoes it."""
    if item.get("fail") in (True, "1"):
        raise ValueError(f"item {item.get('i')} is flagged to fail")
    return item


def returns_nan(item: dict[str, Any]) -> Any:
    """Returns NaN inside its output (JSON cannot hold it)."""
    return {"id": item.get("id"), "score": float("nan")}


ABORT = None
"""Set by a test to a Coordinator: ``abort_on_first`` calls its ``request_abort`` (inline backend)."""


def abort_on_first(item: dict[str, Any]) -> Any:
    """Asks the run to stop (graceful abort) while running item ``i == 0``; echoes the item."""
    if item.get("i") == 0 and ABORT is not None:
        ABORT.request_abort()
    return item


_in_flight = 0
_in_flight_peak = 0
_in_flight_lock = threading.Lock()


def _in_flight_reset_after_fork() -> None:
    """A forked worker starts counting afresh (it inherits the parent's counters)."""
    global _in_flight, _in_flight_peak, _in_flight_lock
    _in_flight = _in_flight_peak = 0
    _in_flight_lock = threading.Lock()


os.register_at_fork(after_in_child=_in_flight_reset_after_fork)


def track_in_flight(item: dict[str, Any]) -> Any:
    """Sleeps ``ms`` and reports the most items this process has had inside this function at once."""
    global _in_flight, _in_flight_peak
    with _in_flight_lock:
        _in_flight += 1
        _in_flight_peak = max(_in_flight_peak, _in_flight)
    try:
        time.sleep(item.get("ms", 10) / 1000)
    finally:
        with _in_flight_lock:
            _in_flight -= 1
    return {"id": item["id"], "pid": os.getpid(), "peak": _in_flight_peak}


async def async_track_in_flight(item: dict[str, Any]) -> Any:
    """``track_in_flight`` for a coroutine function (one event loop: no lock needed)."""
    global _in_flight, _in_flight_peak
    _in_flight += 1
    _in_flight_peak = max(_in_flight_peak, _in_flight)
    try:
        await asyncio.sleep(item.get("ms", 10) / 1000)
    finally:
        _in_flight -= 1
    return {"id": item["id"], "pid": os.getpid(), "peak": _in_flight_peak}


def hang_or_sleep(item: dict[str, Any]) -> Any:
    """Hangs in C (sleeps ``hang_s``, default 600 s) for ``hang: true``, else sleeps ``ms``."""
    time.sleep(item.get("hang_s", 600) if item.get("hang") else item.get("ms", 10) / 1000)
    return {"id": item["id"]}


class UnprintableError(Exception):
    """An exception whose message cannot be read (its ``__str__`` raises)."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


def raise_unprintable(item: dict[str, Any]) -> Any:
    """Raises ``UnprintableError`` for items with ``bad: true``."""
    if item.get("bad"):
        raise UnprintableError()
    return item


def by_kind(item: dict[str, Any]) -> Any:
    """An outcome chosen by ``item['kind']``: "ok" echoes; "fail" raises ValueError; "caught"
    raises KeyError (a test's Catch takes it); "timeout" raises ``errors.Timeout``; "retry"
    fails its first attempt (CountingFailure) and then succeeds; "nan" returns NaN; "object"
    returns a value that is not JSON."""
    kind = item["kind"]
    if kind == "fail":
        raise ValueError(f"item {item['id']} fails")
    if kind == "caught":
        raise KeyError(item["id"])
    if kind == "timeout":
        from distmap.errors import Timeout

        raise Timeout("States.Timeout", f"item {item['id']} ran out of time")
    if kind == "retry":
        return fail_first_n({"id": ("by_kind", item["id"]), "fails": 1})
    if kind == "nan":
        return {"v": float("nan")}
    if kind == "object":
        return {"v": object()}
    return item


def fail_until_gate(item: dict[str, Any]) -> Any:
    """Fails items with ``flaky: true`` while the file ``gate`` does not exist (an outage that
    ends when the test creates it); visible to every worker process and Ray actor."""
    if item.get("flaky") and not Path(item["gate"]).exists():
        raise ConnectionError(f"item {item['id']}: service unavailable")
    return {"id": item["id"]}
