"""ASL Retry semantics on top of tenacity's backoff strategies.

ASL rules implemented here (AWS "Handling errors in Step Functions workflows"):

* Retriers are tried in order; the first whose ``ErrorEquals`` matches the error is used.
* Each retrier keeps its own attempt count. ``MaxAttempts`` counts *retries* (0 = never retry);
  once a retrier is exhausted the error goes to ``Catch`` - later retriers are not consulted.
* The n-th retry of a retrier waits ``IntervalSeconds * BackoffRate ** (n - 1)`` seconds, capped
  by ``MaxDelaySeconds``; ``JitterStrategy: FULL`` draws uniformly from ``[0, that delay]``.

The per-retrier wait is a tenacity strategy (``wait_exponential`` / ``wait_random_exponential``),
so the backoff math is tenacity's, and ``sleep`` is injectable so tests never really wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import tenacity

from distmap.config.model import RetrierConfig
from distmap.errors import error_matches


def _wait_strategy(r: RetrierConfig) -> tenacity.wait.wait_base:
    cap = r.max_delay_seconds if r.max_delay_seconds is not None else float("inf")
    if r.jitter_strategy == "FULL":
        return tenacity.wait_random_exponential(
            multiplier=r.interval_seconds, max=cap, exp_base=r.backoff_rate
        )
    return tenacity.wait_exponential(multiplier=r.interval_seconds, max=cap, exp_base=r.backoff_rate)


@dataclass(slots=True)
class AttemptState:
    """Retry bookkeeping for one execution: attempts made and retries used per retrier."""

    attempts: int = 0
    retries: list[int] = field(default_factory=list)


class RetryPolicy:
    """Decides, after a failed attempt, whether and when to try again."""

    def __init__(self, retriers: tuple[RetrierConfig, ...]) -> None:
        self.retriers = retriers
        self._waits = [_wait_strategy(r) for r in retriers]
        # Without jitter a retrier's n-th wait is always the same: asked of tenacity once.
        self._fixed: dict[tuple[int, int], float] = {}

    def __bool__(self) -> bool:
        return bool(self.retriers)

    def new_state(self) -> AttemptState:
        return AttemptState(attempts=0, retries=[0] * len(self.retriers))

    def next_delay(self, state: AttemptState, error: str) -> float | None:
        """Seconds to wait before the next attempt, or None when the error is final."""
        for i, r in enumerate(self.retriers):
            if error_matches(error, r.error_equals):
                used = state.retries[i]
                if used >= r.max_attempts:
                    return None
                state.retries[i] = used + 1
                key = (i, used)
                delay = self._fixed.get(key)
                if delay is None:
                    call_state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
                    call_state.attempt_number = used + 1
                    delay = float(self._waits[i](call_state))
                    if r.jitter_strategy != "FULL":
                        self._fixed[key] = delay
                return delay
        return None
