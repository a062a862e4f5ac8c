"""What a state's result may hold: JSON values only.

Step Functions passes JSON between states. JSON has no NaN or Infinity, so a Lambda whose
runtime writes ``NaN`` (Python's does) hands Step Functions a payload it cannot parse, and the
task fails. orjson, left alone, would write NaN as ``null`` and the data would change silently.
distmap fails the item (``distmap run``) or the Task (``distmap execute``) instead, with
``States.Runtime`` and a cause naming where the value is.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

_dumps = orjson.dumps

NOT_JSON = "States.Runtime"


class NotJson(ValueError):
    """A result that JSON cannot represent (the message says what and where)."""


def _find_non_finite(value: Any, path: str) -> str | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_non_finite(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key!r}]")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _find_non_finite(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def check_finite(value: Any, encoded: bytes | None = None) -> None:
    """Raise :class:`NotJson` if ``value`` holds NaN or an infinity. With ``encoded`` (orjson's
    output for ``value``) the deep walk only runs when that output has a ``null`` in it, which
    is where orjson puts them: the common result costs one substring search."""
    if encoded is not None and encoded.find(b"null") == -1:  # bytes.find is twice as fast as `in`
        return
    where = _find_non_finite(value, "$")
    if where is not None:
        raise NotJson(f"the result holds NaN or Infinity at {where}, which JSON cannot represent")


def dumps_json(value: Any) -> bytes:
    """``orjson.dumps`` that refuses what is not JSON (NaN, Infinity, objects it cannot encode)."""
    try:
        encoded = _dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise NotJson(f"the result is not JSON-serializable: {exc}") from None
    check_finite(value, encoded)
    return encoded
