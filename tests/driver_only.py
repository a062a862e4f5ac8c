"""An item function module that only the pytest process can import: the session's Ray cluster
ships tests/itemfns.py to its workers, not this file, so Ray workers fail to load it."""

from __future__ import annotations

from typing import Any


def echo(item: Any) -> Any:
    return item
