"""``ItemProcessor.ProcessorConfig.ExecutionType`` of a DISTRIBUTED Map: how long its children
may run, and what happens when one runs longer.

AWS: an EXPRESS child "can run for up to five minutes", a STANDARD one for up to one year. A
child past its limit ends with status TIMED_OUT: distmap records it in the FAILED result files
with ``"Status": "TIMED_OUT"``, ``"Error": "States.Timeout"`` and a cause naming the limit, and
counts it in ``timedOut`` (a timed-out child counts against the tolerated-failure thresholds).

Both limits can be changed, for tests, with ``DISTMAP_EXPRESS_CHILD_SECONDS`` and
``DISTMAP_STANDARD_CHILD_SECONDS`` (seconds, fractions allowed), read where the outermost map
starts and passed on to its workers (a Ray worker does not see the driver's environment).

A limit up to a day long is a deadline that cuts a running Task short (the child's Tasks then run
on a watchdog thread, as under a machine's TimeoutSeconds); a longer one (STANDARD's year) is
checked when the child ends, so STANDARD children cost nothing extra.
"""

from __future__ import annotations

import math
import os

from distmap.errors import Runtime, Timeout


class ExecutionTimedOut(Exception):
    """The execution's TimeoutSeconds (or its deadline) passed: its status is TIMED_OUT."""

DEFAULT_LIMITS = {"EXPRESS": 300.0, "STANDARD": 365 * 24 * 3600.0}
ENV_VARS = {"EXPRESS": "DISTMAP_EXPRESS_CHILD_SECONDS", "STANDARD": "DISTMAP_STANDARD_CHILD_SECONDS"}
DEADLINE_HORIZON = 24 * 3600.0
"""Limits up to this long are enforced as a deadline inside the child; longer ones at its end."""

_inherited: dict[str, float] | None = None


def child_limits() -> dict[str, float]:
    """The limit of each ExecutionType in this process: inherited from the map run this worker
    serves, else the environment's overrides, else AWS's."""
    if _inherited is not None:
        return dict(_inherited)
    out = dict(DEFAULT_LIMITS)
    for kind, var in ENV_VARS.items():
        raw = os.environ.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise Runtime(cause=f"{var} must be a positive number of seconds, got {raw!r}")
        out[kind] = value
    return out


def inherit_limits(limits: dict[str, float]) -> None:
    """Use the limits of the map run this worker serves (for maps nested in its children)."""
    global _inherited
    _inherited = dict(limits)


def timed_out(execution_type: str, limit: float) -> Timeout:
    """The error of a child that ran past its ExecutionType's limit (its status: TIMED_OUT)."""
    return Timeout(
        cause=f"the {execution_type} child execution did not finish within {limit:g} seconds "
        f"(the ExecutionType {execution_type} limit)",
    )
