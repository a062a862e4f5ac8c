"""Numbers that a Map state's ``*Path`` fields select, checked with AWS's error names and texts.

Recorded AWS responses (Step Functions, 2023-2024) give, for a state named ``MapState``::

    States.Runtime  An error occurred while executing the state 'MapState' (entered at the event
                    id #2). The MaxItemsPath field refers to value "1.5" which is not a valid
                    integer: $.MaxItems
    States.Runtime  ... ToleratedFailureCount cannot be negative.
    States.Runtime  ... The ToleratedFailurePercentagePath field refers to value "NoNumber" which
                    is not a valid float: $.ToleratedFailurePercentage
    States.Runtime  ... ToleratedFailurePercentage must be between 0 and 100.
    States.ItemReaderFailed  field MaxItems must be positive          (MaxItemsPath -> -1)

distmap writes the same texts. It keeps no event history, so the ``(entered at the event id
#N)`` part is left out. Where AWS has no recording (a negative MaxConcurrencyPath, where AWS
stalls; the ItemBatcher paths), the same patterns are used.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from distmap.dataflow.jsonpath import Query
from distmap.errors import ItemReaderFailed, Runtime


def state_failure(state: str, detail: str) -> Runtime:
    """``States.Runtime`` as AWS words an error raised while a state runs."""
    return Runtime(cause=f"An error occurred while executing the state '{state}'. {detail}")


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def integer_at(query: Query, field: str, state: str, value: Any, context: Any) -> int:
    """The integer ``field`` (e.g. ``MaxItemsPath``) selects, or AWS's States.Runtime."""
    raw = query.evaluate(value, context)
    number = _as_int(raw)
    if number is None:
        raise state_failure(
            state, f'The {field} field refers to value "{_shown(raw)}" which is not a valid integer: {query.path}'
        )
    return number


def max_items(query: Query, state: str, value: Any, context: Any) -> int:
    number = integer_at(query, "MaxItemsPath", state, value, context)
    if number < 0:
        raise ItemReaderFailed(cause="field MaxItems must be positive")
    return number


def non_negative(query: Query, field: str, state: str, value: Any, context: Any) -> int:
    """``MaxConcurrencyPath``, ``ToleratedFailureCountPath`` and the ItemBatcher paths."""
    number = integer_at(query, field, state, value, context)
    if number < 0:
        raise state_failure(state, f"{field.removesuffix('Path')} cannot be negative.")
    return number


def percentage(query: Query, state: str, value: Any, context: Any) -> float:
    raw = query.evaluate(value, context)
    number = _as_float(raw)
    if number is None:
        raise state_failure(
            state,
            f'The ToleratedFailurePercentagePath field refers to value "{_shown(raw)}" which is not a '
            f"valid float: {query.path}",
        )
    if not 0 <= number <= 100:
        raise state_failure(state, "ToleratedFailurePercentage must be between 0 and 100.")
    return number
