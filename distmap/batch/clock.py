"""One timer thread per worker and its deadline heap.

Lanes never sleep on a timer and never poll: a retry waiting for its interval and an attempt's
TimeoutSeconds deadline are entries in this heap, and the clock thread sleeps until the
earliest one (or until an earlier one is added). Callbacks run on the clock thread, one at a
time, and must be quick.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any


class Clock:
    """``call_at(when, fn, *args)`` on a monotonic clock, from one thread."""

    def __init__(self, name: str = "distmap-clock") -> None:
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._tie = itertools.count()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._tie), fn, args))
            if self._heap[0][0] == when:  # the new earliest entry: wake the thread to re-aim
                self._cond.notify()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(time.monotonic() + delay, fn, *args)

    def __len__(self) -> int:
        return len(self._heap)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()

    def _run(self) -> None:
        heap = self._heap
        cond = self._cond
        while True:
            with cond:
                while True:
                    if self._closed:
                        return
                    if heap:
                        wait = heap[0][0] - time.monotonic()
                        if wait <= 0:
                            _, _, fn, args = heapq.heappop(heap)
                            break
                        cond.wait(wait)
                    else:
                        cond.wait()
            try:
                fn(*args)
            except BaseException:  # a callback's bug must not stop every timer of the worker
                import traceback

                traceback.print_exc()
