"""Example item functions. Each takes one item (the child execution input) and returns its output.

Raise any exception to fail an item (its class name becomes the ASL error name), or
``distmap.StatesError("My.Error", "cause")`` to choose the name exactly.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from distmap import StatesError


def noop(item: Any) -> Any:
    """Return the item unchanged (measures engine overhead)."""
    return item


def enrich(item: dict[str, Any]) -> dict[str, Any]:
    """Quickstart: derive a few fields from a sample row; rows tagged "bad" fail validation."""
    if item.get("tag") == "bad":
        raise ValueError(f"item {item.get('id')} is tagged bad")
    name = str(item.get("name", ""))
    return {
        "id": item.get("id"),
        "name": name.upper(),
        "value_squared": float(item.get("value", 0)) ** 2,
        "digest": hashlib.sha256(name.encode()).hexdigest()[:12],
    }


def cpu_1ms(item: Any) -> Any:
    """About one millisecond of pure-Python CPU work."""
    end = time.perf_counter() + 0.001
    n = 0
    while time.perf_counter() < end:
        n += 1
    return {"id": item.get("id") if isinstance(item, dict) else None, "spins": n}


def sleep_10ms(item: Any) -> Any:
    """A latency-bound item: waits 10 ms like a remote call."""
    time.sleep(0.01)
    return item


async def async_sleep_10ms(item: Any) -> Any:
    """The same latency-bound item as a coroutine."""
    await asyncio.sleep(0.01)
    return item


def sum_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """An ItemBatcher function: receives {"Items": [...], "BatchInput": {...}}."""
    items = batch["Items"]
    return {
        "count": len(items),
        "total": sum(float(i.get("value", 0)) for i in items),
        "batch_input": batch.get("BatchInput"),
    }


def throttled(item: dict[str, Any]) -> dict[str, Any]:
    """Fails with an exact ASL error name for items whose id is divisible by 7."""
    if int(item.get("id", 0)) % 7 == 0:
        raise StatesError("Service.Throttled", f"item {item['id']} was throttled")
    return item


_seen_once: set[int] = set()


def flaky(item: dict[str, Any]) -> dict[str, Any]:
    """Deterministic failures for tests and benchmarks, keyed on ``item["id"]``:

    * ids divisible by 100 (1%) fail once with ``TransientError`` and succeed when retried;
    * ids with ``id % 20 == 1`` (5%) always fail with ``PermanentError``;
    * everything else succeeds immediately.
    """
    i = int(item["id"])
    if i % 20 == 1:
        raise PermanentError(f"item {i} always fails")
    if i % 100 == 0 and i not in _seen_once:
        _seen_once.add(i)
        raise TransientError(f"item {i} fails on its first attempt")
    return item


def flaky_clean(item: dict[str, Any]) -> dict[str, Any]:
    """``flaky``'s work on every item (the same checks on ``item["id"]``) without its failures:
    the clean run the failures benchmark is compared with."""
    i = int(item["id"])
    if i % 20 == 1:
        return item
    if i % 100 == 0 and i not in _seen_clean:
        _seen_clean.add(i)
        return item
    return item


_seen_clean: set[int] = set()


class TransientError(Exception):
    """A failure that goes away when retried."""


class PermanentError(Exception):
    """A failure that never goes away."""


def sleep_1ms(item: Any) -> Any:
    """A short latency-bound item (1 ms): many of them measure the engine's per-item cost under lanes."""
    time.sleep(0.001)
    return item


def sleep_100ms(item: Any) -> Any:
    """A latency-bound item at the scale Distributed Map is for: waits 100 ms like an API call."""
    time.sleep(0.1)
    return item


async def async_sleep_100ms(item: Any) -> Any:
    """The same 100 ms item as a coroutine."""
    await asyncio.sleep(0.1)
    return item
