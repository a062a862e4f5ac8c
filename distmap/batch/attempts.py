"""What a failed attempt leads to: another attempt after a delay (Retry), a caught success
(Catch), or a final FAILED / TIMED_OUT outcome. One place for every lane kind."""

from __future__ import annotations

from distmap.batch.executions import Execution, Failed, Succeeded, TimedOut
from distmap.config.model import MapJob
from distmap.dataflow.jsonpath import compile_result_path
from distmap.errors import StatesError, Timeout, classify, error_matches
from distmap.retry import RetryPolicy


class AlarmTimeout(BaseException):
    """Raised inside a running attempt at its deadline (by SIGALRM or the lane watchdog).
    A BaseException, so that a user's ``except Exception`` cannot swallow it."""


def timeout_cause(seconds: float, *, batch: bool = False, abandoned: bool = False) -> str:
    """The ``Cause`` of a child execution stopped at TimeoutSeconds. (AWS records ``States.Timeout``
    with no cause for a Task timeout; the cause field is shown to users, so distmap says what
    happened.)"""
    what = "batch" if batch else "item"
    cause = f"the {what} did not finish within TimeoutSeconds ({seconds:g} s)"
    if abandoned:
        cause += "; it did not stop when interrupted (code blocked outside Python cannot), so its thread was left running"
    return cause


def failure_of(exc: BaseException) -> tuple[str, str, bool]:
    """``(Error, Cause, timed_out)`` of an exception the function raised (``errors.classify``); an
    ``errors.Timeout`` means the execution was stopped at a time limit: TIMED_OUT."""
    error, cause = classify(exc)
    return error, cause, isinstance(exc, Timeout)


class Attempts:
    """The Retry, Catch and TimeoutSeconds of one map run's ItemProcessor."""

    def __init__(self, job: MapJob) -> None:
        proc = job.processor
        self.timeout = proc.timeout_seconds
        batch = job.item_batcher is not None
        self.timeout_cause = timeout_cause(self.timeout, batch=batch) if self.timeout is not None else ""
        self.abandoned_cause = (
            timeout_cause(self.timeout, batch=batch, abandoned=True) if self.timeout is not None else ""
        )
        self.policy = RetryPolicy(proc.retry)
        self.catchers = proc.catch
        self.catch_setters = [compile_result_path(c.result_path) for c in self.catchers]
        self._final: dict[str, bool] = {}

    def is_final(self, error: str) -> bool:
        """Whether a failed attempt with ``error`` ends its execution as it is: no retrier and no
        catcher matches the error. Cached per error name (the fast path asks once per failed item)."""
        final = self._final.get(error)
        if final is None:
            final = not any(error_matches(error, r.error_equals) for r in self.policy.retriers) and not any(
                error_matches(error, c.error_equals) for c in self.catchers
            )
            if len(self._final) < 1024:
                self._final[error] = final
        return final

    def after_timeout(self, ex: Execution, *, abandoned: bool = False) -> float | None:
        """``after_failure`` for an attempt stopped at TimeoutSeconds."""
        cause = self.abandoned_cause if abandoned else self.timeout_cause
        return self.after_failure(ex, "States.Timeout", cause, timed_out=True)

    def after_exception(self, ex: Execution, exc: BaseException) -> float | None:
        """A failed attempt from the exception the function raised (see ``failure_of``)."""
        return self.after_failure(ex, *failure_of(exc))

    def after_failure(self, ex: Execution, error: str, cause: str, timed_out: bool = False) -> float | None:
        """Record a failed attempt; returns the delay before the next one, or None when the
        execution is finished (its outcome set). ``timed_out``: stopped at a time limit."""
        if self.policy:
            if ex.state is None:
                ex.state = self.policy.new_state()
            delay = self.policy.next_delay(ex.state, error)
            if delay is not None:
                ex.retries += 1
                return delay
        self._finish_error(ex, error, cause, timed_out)
        return None

    def _finish_error(self, ex: Execution, error: str, cause: str, timed_out: bool) -> None:
        for c, put in zip(self.catchers, self.catch_setters, strict=True):
            if error_matches(error, c.error_equals):
                try:
                    ex.outcome = Succeeded(put(ex.input, {"Error": error, "Cause": cause}))
                except StatesError as exc:  # States.ResultPathMatchFailure: cannot apply to this input
                    ex.outcome = Failed(exc.error, exc.cause)
                return
        ex.outcome = TimedOut(error, cause) if timed_out else Failed(error, cause)
