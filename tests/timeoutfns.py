"""Item functions for the timeout tests (tests/test_timeouts.py).

``block_in_c`` blocks in C code that a thread-level interrupt cannot reach (a lock wait); the
tests release it when they end, so no abandoned thread outlives its test by long.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from distmap.errors import StatesError

RELEASE = threading.Event()
"""Set to let every blocked ``block_in_c`` call return (at most 30 s after it started anyway)."""


def block_in_c(item: dict[str, Any]) -> Any:
    """Items with ``block: true`` wait on a lock (C code, never returning to Python) until released."""
    if item.get("block"):
        RELEASE.wait(30)
    return {"id": item["id"]}


def python_loop(item: dict[str, Any]) -> Any:
    """Items with ``block: true`` loop in Python bytecode for up to 30 s."""
    if item.get("block"):
        end = time.monotonic() + 30
        while time.monotonic() < end:
            pass
    return {"id": item["id"]}


def batch_block_in_c(batch: dict[str, Any]) -> Any:
    """An ItemBatcher function: a batch holding an item with ``block: true`` blocks (C code)."""
    if any(i.get("block") for i in batch["Items"]):
        RELEASE.wait(30)
    return {"ids": [i["id"] for i in batch["Items"]]}


async def async_hang(item: dict[str, Any]) -> Any:
    """Items with ``block: true`` await for up to 30 s (cancellable)."""
    if item.get("block"):
        await asyncio.sleep(30)
    return {"id": item["id"]}


async def async_slow_cleanup(item: dict[str, Any]) -> Any:
    """Items with ``block: true`` hang, and when cancelled take ``cleanup`` seconds to clean up
    (an aiohttp session close, a database rollback...)."""
    if item.get("block"):
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(item.get("cleanup", 3))
    return {"id": item["id"]}


def raise_states_timeout(item: dict[str, Any]) -> Any:
    """Raises States.Timeout itself, as a child workflow whose Task timed out does (a plain
    StatesError: ``distmap.errors.Timeout`` is the class distmap raises when it stops an execution
    at a time limit)."""
    if item.get("block"):
        raise StatesError("States.Timeout", "the task did not finish within 1 seconds")
    return {"id": item["id"]}


def near_deadline(item: dict[str, Any]) -> Any:
    """Ends about ``s`` seconds in, by sleeping (C), looping (Python) or raising, per ``how``."""
    end = time.monotonic() + item["s"]
    how = item["how"]
    if how == "sleep":
        time.sleep(item["s"])
    else:
        while time.monotonic() < end:
            pass
        if how == "raise":
            raise ValueError(f"item {item['id']} raised at its deadline")
    return {"id": item["id"]}
