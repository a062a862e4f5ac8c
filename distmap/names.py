"""Rules for the names that end up in ARNs and result paths: ``--run-id``, ``Label`` and
``StateMachineName``. Each check returns the reason a value is refused, or None."""

from __future__ import annotations

import json
import re
from typing import Any

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_BAD_NAME_CHARS = frozenset('/\\:*?"<>|')

RUN_ID_RULE = (
    "must be 1-80 letters, digits, '.', '_' or '-', start with a letter or digit, and not contain '..'"
)
NAME_RULE = 'must be 1-80 characters without / \\ : * ? " < > |, control characters or ".."'


def _show(val: Any) -> str:
    text = json.dumps(val, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def run_id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a map run id (it names the result directory), or None."""
    if isinstance(value, str) and _RUN_ID.fullmatch(value) and ".." not in value:
        return None
    return f"{RUN_ID_RULE}, got {_show(value)}"


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a Label or StateMachineName (used in ARNs), or None."""
    if (
        not value
        or len(value) > 80
        or ".." in value
        or any(c in _BAD_NAME_CHARS or ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        return f"{NAME_RULE}, got {_show(value)}"
    return None
