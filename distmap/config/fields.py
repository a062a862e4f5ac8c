"""``Fields``: reads one object of a job file or definition and checks each field as it goes.

Every accessor names the field by its dotted path in errors (``ItemReader.ReaderConfig.MaxItems``),
``finish`` rejects unknown fields with a "did you mean" hint, and a missing required field points
at a misspelt look-alike. Used by the job-file parser (``config.parse``) and by the state-machine
parser (``asl``).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from distmap.errors import ConfigError


class Fields:
    """Reads one mapping, tracking which keys were consumed, so leftovers become errors."""

    def __init__(self, data: Any, path: str, source: str | None) -> None:
        self.path = path
        self.source = source
        if not isinstance(data, Mapping):
            raise self.error("", f"must be an object, got {type_name(data)}")
        self.data = data
        self.seen: set[str] = set()
        self.pointed: set[str] = set()
        """Unknown keys already reported as the look-alike of a missing field."""

    def error(self, key: str, reason: str) -> ConfigError:
        field = f"{self.path}.{key}" if self.path and key else (self.path or key)
        return ConfigError(field, reason, source=self.source)

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return self.data.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.data

    def require(self, key: str) -> Any:
        self.seen.add(key)
        if key not in self.data:
            raise self.missing(key)
        return self.data[key]

    def missing(self, key: str, reason: str = "is required") -> ConfigError:
        """The error for a required field that is absent, pointing at a look-alike key (a typo)
        when the mapping has one."""
        self.seen.add(key)
        unknown = [str(k) for k in self.data if k != key and k not in self.seen]
        hint = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
        if not hint:
            return self.error(key, reason)
        self.pointed.add(hint[0])  # reported here: not again as an unknown field
        return self.error(key, f"{reason}; found {hint[0]!r}: did you mean {key!r}?")

    def finish(self) -> None:
        """Raise one error listing every unknown key, each with a "did you mean" hint."""
        errors = []
        for key in self.data:
            if key not in self.seen and key not in self.pointed:
                hint = difflib.get_close_matches(str(key), sorted(self.seen), n=1)
                extra = (
                    f"; did you mean {hint[0]!r}?"
                    if hint
                    else f"; known fields: {', '.join(sorted(self.seen))}"
                )
                errors.append(self.error(str(key), f"unknown field{extra}"))
        if errors:
            raise ConfigError.several(errors)

    # typed getters -------------------------------------------------------------------------
    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        val = self.require(key) if required else self.get(key, default)
        if val is None:
            return None
        if not isinstance(val, str) or not val:
            raise self.error(key, f"must be a non-empty string, got {shown(val)}")
        return val

    def enum(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        val = self.get(key, default)
        if val is None:
            return None
        if val not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {shown(val)}")
        return val

    def integer(
        self, key: str, default: int | None = None, *, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        val = self.get(key, default)
        if val is None:
            return None
        if isinstance(val, str) and val.strip().lstrip("-").isdigit():
            val = int(val)
        if isinstance(val, bool) or not isinstance(val, int):
            raise self.error(key, f"must be an integer, got {shown(val)}")
        if val < minimum:
            raise self.error(key, f"must be >= {minimum}, got {val}")
        if maximum is not None and val > maximum:
            raise self.error(key, f"must be <= {maximum}, got {val}")
        return val

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        minimum: float = 0.0,
        maximum: float | None = None,
        exclusive_min: bool = False,
    ) -> float | None:
        val = self.get(key, default)
        if val is None:
            return None
        if isinstance(val, str):
            try:
                val = float(val)
            except ValueError:
                raise self.error(key, f"must be a number, got {shown(val)}") from None
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
            raise self.error(key, f"must be a number, got {shown(val)}")
        if val < minimum or (exclusive_min and val == minimum):
            raise self.error(key, f"must be {'>' if exclusive_min else '>='} {minimum}, got {val}")
        if maximum is not None and val > maximum:
            raise self.error(key, f"must be <= {maximum}, got {val}")
        return float(val)


def type_name(val: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(val), type(val).__name__
    )


def shown(val: Any) -> str:
    text = json.dumps(val, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
