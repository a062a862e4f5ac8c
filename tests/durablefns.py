"""Item functions for the crash tests: each call is logged to ``$DISTMAP_TEST_CALLS`` (one id per
line, an unbuffered O_APPEND write, so a SIGKILL loses none), to count the work done twice."""

from __future__ import annotations

import os
from typing import Any

_fd: list[int] = []


def logged(item: dict[str, Any]) -> dict[str, Any]:
    if not _fd:
        _fd.append(os.open(os.environ["DISTMAP_TEST_CALLS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    os.write(_fd[0], b"%d\n" % item["id"])
    if item["id"] % 97 == 5:
        raise ValueError(f"item {item['id']} fails")
    return {"id": item["id"]}


def slow(item: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``ms`` milliseconds; fails when ``fail`` is set."""
    import time

    time.sleep(item.get("ms", 5) / 1000)
    if item.get("fail"):
        raise ValueError(f"item {item['id']} is flagged to fail")
    return {"id": item["id"]}
