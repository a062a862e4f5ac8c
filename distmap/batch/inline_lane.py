"""One lane in the calling thread: the fastest way to run a sync function at MaxConcurrency 1.

TimeoutSeconds is enforced with ``SIGALRM`` (so this lane runs only in the main thread when a
timeout is set). A failed attempt waiting for its retry does not block the lane: it waits on a
timer heap while the next items run.
"""

from __future__ import annotations

import heapq
import itertools
import signal
import time
from collections.abc import Callable
from typing import Any

from distmap.batch.attempts import AlarmTimeout, Attempts
from distmap.batch.executions import Execution, Succeeded


class RetryHeap:
    """Executions waiting for their next attempt, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Execution]] = []
        self._tie = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, ex: Execution, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._tie), ex))

    def due(self) -> float:
        """When the earliest one is due (``time.monotonic()`` clock)."""
        return self._heap[0][0]

    def wait_time(self) -> float:
        return self._heap[0][0] - time.monotonic()

    def pop(self) -> Execution:
        return heapq.heappop(self._heap)[2]


class InlineLane:
    """Runs executions one at a time in the calling thread."""

    def __init__(self, fn: Callable[..., Any], attempts: Attempts, sleep: Callable[[float], Any]) -> None:
        self.fn = fn
        self.attempts = attempts
        self.sleep = sleep

    def attempt(self, ex: Execution) -> float | None:
        """Run one attempt. Returns None when the execution is finished (its outcome is set), or
        the delay before it should be attempted again."""
        fn = self.fn
        timeout = self.attempts.timeout
        try:
            if timeout is None:
                ex.outcome = Succeeded(fn(ex.input))
                return None
            prev = signal.signal(signal.SIGALRM, _raise_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                out = fn(ex.input)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, prev)
            ex.outcome = Succeeded(out)
            return None
        except KeyboardInterrupt:
            raise
        except AlarmTimeout:
            return self.attempts.after_timeout(ex)
        except BaseException as exc:  # the user's error, whatever it is, fails the item
            return self.attempts.after_exception(ex, exc)

    def run(self, executions: list[Execution]) -> None:
        waiting = RetryHeap()
        now = time.time
        for ex in executions:
            if ex.outcome is not None:
                continue
            ex.start = now()
            delay = self.attempt(ex)
            if delay is None:
                ex.stop = now()
            else:
                waiting.push(ex, delay)
            if waiting:
                self.run_due(waiting, block=False)
        self.run_due(waiting, block=True)

    def run_due(self, waiting: RetryHeap, *, block: bool) -> None:
        """Run the retries that are due; with ``block`` wait until all of them are finished."""
        while waiting:
            wait = waiting.wait_time()
            if wait > 0:
                if not block:
                    return
                self.sleep(wait)
            ex = waiting.pop()
            delay = self.attempt(ex)
            if delay is None:
                ex.stop = time.time()
            else:
                waiting.push(ex, delay)


def _raise_alarm(signum: int, frame: Any) -> None:
    raise AlarmTimeout()
