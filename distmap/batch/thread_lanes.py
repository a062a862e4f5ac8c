"""Thread lanes for sync functions: MaxConcurrency threads that live for the whole run.

* **Fed across chunks.** Every chunk a worker runs puts its executions on one queue; the lanes
  take from it whatever chunk they come from, so a slow item never holds a barrier and a chunk
  is done (``Work.done``) the moment its last execution ends. Several chunks run at once.
* **Idle lanes block** on the queue (no polling). Lanes are started as work arrives, never more
  than MaxConcurrency of them, with a small stack (``LANE_STACK_BYTES``) so 10,000 fit.
* **One deadline heap.** A lane that starts an attempt with TimeoutSeconds arms one entry on the
  worker's ``Clock`` (at most one per lane, re-aimed when it fires early). At the deadline the
  attempt is interrupted (``AlarmTimeout`` raised in its thread); if it has not left Python
  ``ABANDON_GRACE`` later (blocked in C code) the lane is abandoned: the attempt is recorded as
  timed out, its thread's late result is ignored, and a new lane takes its place.
* **Retries wait on the clock**, not in a lane: when due they go to the front of the queue.
"""

from __future__ import annotations

import _thread
import ctypes
import itertools
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distmap.batch.attempts import AlarmTimeout, Attempts
from distmap.batch.clock import Clock
from distmap.batch.executions import Execution, Succeeded

#: How long an interrupted attempt gets to leave Python code before its lane is abandoned (it is
#: blocked in C code). A thread running Python gets the exception within the GIL's switch
#: interval (5 ms), a few of them when many threads are busy.
ABANDON_GRACE = 0.05
#: The stack of a lane thread. Python frames live on the heap, so C stack is only used by C code
#: (and C recursion) an item runs; 512 KiB is plenty and lets 10,000 lanes reserve 5 GiB of
#: address space, of which they touch a few pages each. ``DISTMAP_LANE_STACK_KIB`` overrides it.
LANE_STACK_BYTES = int(os.environ.get("DISTMAP_LANE_STACK_KIB", "512")) * 1024

#: With thousands of lanes, CPython's default switch interval (5 ms) is a trap: every thread
#: waiting for the GIL wakes every 5 ms to demand it, so thousands of lanes waking from I/O at
#: once spend their time handing the GIL to each other (exploratory single runs, 100,000 x 100 ms items on
#: 5 x 2,000 lanes: 21-28 s at 20 ms, 6-12 s at 60 ms, 3.2 s at 200 ms). Above
#: ``SWITCH_FROM_LANES`` lanes, while they live, lanes raise it to ``SWITCH_SECONDS_PER_LANE`` x
#: lanes, at most ``MAX_SWITCH_SECONDS``. The cost: a lane running Python without a break (CPU
#: work) can keep the others, and the timeout clock, waiting that long, or a few times that.
SWITCH_FROM_LANES = 1000
SWITCH_SECONDS_PER_LANE = 100e-6
MAX_SWITCH_SECONDS = 0.5

_WAKE = object()  # a retry became due: take from ``urgent``
_STOP = object()
_ATTEMPTS = itertools.count(1)
_STACK_LOCK = threading.Lock()


class Work:
    """One chunk's executions in the lanes; ``done`` is set when the last one has finished."""

    __slots__ = ("done", "lock", "remaining")

    def __init__(self, n: int) -> None:
        self.remaining = n
        self.lock = threading.Lock()
        self.done = threading.Event()
        if n <= 0:
            self.done.set()

    def finish_one_in_loop(self) -> None:
        """``finish_one`` for executions that only one thread finishes (an event loop's)."""
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()

    def finish_one(self) -> None:
        with self.lock:
            self.remaining -= 1
            last = self.remaining == 0
        if last:
            self.done.set()


def claim(executions: list[Execution]) -> tuple[list[Execution], Work]:
    """The executions still to run, each tied to one new ``Work`` that is done when they are."""
    todo = [ex for ex in executions if ex.outcome is None]
    work = Work(len(todo))
    for ex in todo:
        ex.work = work
    return todo, work


@dataclass(slots=True, eq=False)
class _Lane:
    ident: int = 0
    current: tuple | None = None
    """(execution, monotonic start of the attempt, attempt number) while a timed attempt runs."""
    interrupted: int = 0
    """The attempt interrupted last, and when (monotonic)."""
    interrupted_at: float = 0.0
    abandoned: bool = False
    armed: bool = False
    """It has an entry on the clock."""


class ThreadLanes:
    """Up to ``size`` lane threads running ``fn``; ``run`` is thread-safe and blocks."""

    def __init__(self, fn: Callable[..., Any], size: int, attempts: Attempts) -> None:
        self.fn = fn
        self.size = max(1, size)
        self.attempts = attempts
        self.timeout = attempts.timeout
        self.ready: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.urgent: deque[Execution] = deque()
        self.lock = threading.Lock()
        self.live = 0
        """Lanes started and not abandoned."""
        self.threads_started = 0
        self._clock: Clock | None = None
        self.closed = False
        self._switch = sys.getswitchinterval()
        wanted = min(MAX_SWITCH_SECONDS, SWITCH_SECONDS_PER_LANE * self.size)
        if self.size > SWITCH_FROM_LANES and wanted > self._switch:
            sys.setswitchinterval(wanted)

    # ------------------------------------------------------------------ feeding
    def run(self, executions: list[Execution]) -> None:
        """Run every execution without an outcome; return when all of them have one."""
        todo, work = claim(executions)
        if not todo:
            return
        self._grow(len(todo))
        put = self.ready.put
        for ex in todo:
            put(ex)
        work.done.wait()

    def _grow(self, wanted: int) -> None:
        with self.lock:
            n = min(self.size - self.live, wanted)
            if n <= 0:
                return
            self.live += n
        for _ in range(n):
            self._start_thread()

    def _start_thread(self) -> None:
        lane = _Lane()
        with _STACK_LOCK:
            old = threading.stack_size(LANE_STACK_BYTES)
            try:
                _thread.start_new_thread(self._lane_main, (lane,))
            finally:
                threading.stack_size(old)
        self.threads_started += 1

    def clock(self) -> Clock:
        with self.lock:
            if self._clock is None:
                self._clock = Clock()
            return self._clock

    def close(self) -> None:
        """Stop the lanes once they are idle (a lane inside an attempt finishes it first)."""
        if self.closed:
            return
        self.closed = True
        for _ in range(self.live):
            self.ready.put(_STOP)
        if self._clock is not None:
            self._clock.close()
        if sys.getswitchinterval() > self._switch:
            sys.setswitchinterval(self._switch)

    # ------------------------------------------------------------------ a lane
    def _lane_main(self, lane: _Lane) -> None:
        lane.ident = threading.get_ident()
        while True:
            try:
                self._lane_loop(lane)
                return
            except AlarmTimeout:
                # The interrupt landed between the attempt's end and the lane leaving it (say
                # while the function's own exception was being handled). One is sent per
                # attempt: finish the attempt as timed out.
                cur = lane.current
                if cur is None:
                    continue
                abandoned, _ = self._leave(lane, cur[2])
                if abandoned:
                    return
                self._end(cur[0], self.attempts.after_timeout(cur[0]))

    def _lane_loop(self, lane: _Lane) -> None:
        fn = self.fn
        get = self.ready.get
        urgent = self.urgent
        attempts = self.attempts
        timeout = self.timeout
        now = time.time
        while True:
            ex = get() if not urgent else _pop_or(urgent, get)
            if ex is _WAKE:
                continue
            if ex is _STOP:
                return
            if ex.start == 0.0:
                ex.start = now()
            if timeout is None:
                try:
                    out = fn(ex.input)
                except BaseException as exc:  # the user's error, whatever it is, fails the item
                    self._end(ex, attempts.after_exception(ex, exc))
                    continue
                ex.outcome = Succeeded(out)
                ex.stop = now()
                ex.work.finish_one()
                continue
            attempt = next(_ATTEMPTS)
            started = time.monotonic()
            with self.lock:
                lane.current = (ex, started, attempt)
                arm = not lane.armed
                lane.armed = True
            if arm:
                self.clock().call_at(started + timeout, self._watch, lane)
            result: Any
            try:
                result = Succeeded(fn(ex.input))
            except BaseException as exc:
                result = exc
            abandoned, interrupted = self._leave(lane, attempt)
            if abandoned:  # the watchdog recorded the timeout and started another lane
                return
            if interrupted or isinstance(result, AlarmTimeout):
                # interrupted at the deadline (even if the function swallowed the interrupt)
                self._end(ex, attempts.after_timeout(ex))
            elif isinstance(result, BaseException):
                self._end(ex, attempts.after_exception(ex, result))
            else:
                ex.outcome = result
                ex.stop = now()
                ex.work.finish_one()

    def _end(self, ex: Execution, delay: float | None) -> None:
        """An attempt failed: finish the execution, or schedule its next attempt."""
        if delay is None:
            ex.stop = time.time()
            ex.work.finish_one()
        elif delay <= 0:
            self._due(ex)
        else:
            self.clock().call_at(time.monotonic() + delay, self._due, ex)

    def _due(self, ex: Execution) -> None:
        self.urgent.append(ex)
        self.ready.put(_WAKE)

    def _leave(self, lane: _Lane, attempt: int) -> tuple[bool, bool]:
        """End a lane's timed attempt: returns (abandoned, interrupted).

        The watchdog interrupts only while the lane is inside the attempt (``lane.current`` set,
        checked under ``self.lock``), and the interrupt lands at the thread's next bytecode:
        inside the function, or on the way here. So the lane leaves under the lock and, if it
        was interrupted, cancels an interrupt still pending; from then on none can land."""
        interrupted = False
        while True:
            try:
                with self.lock:
                    lane.current = None
                    if lane.interrupted == attempt:
                        interrupted = True
                        # NULL clears this thread's pending async exception, if any
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(threading.get_ident()), None
                        )
                    return lane.abandoned, interrupted
            except AlarmTimeout:  # the interrupt landed on the way out: leave again
                interrupted = True

    # ------------------------------------------------------------------ the watchdog (clock thread)
    def _watch(self, lane: _Lane) -> None:
        """A lane's deadline entry fired: interrupt an overdue attempt, abandon a lane that did
        not stop ``ABANDON_GRACE`` after its interrupt, or re-aim at the current attempt."""
        assert self.timeout is not None
        now = time.monotonic()
        clock = self.clock()
        with self.lock:
            cur = lane.current
            if cur is None or lane.abandoned or self.closed:
                lane.armed = False
                return
            ex, started, attempt = cur
            deadline = started + self.timeout
            if now < deadline:  # a later attempt than the one this entry was armed for
                clock.call_at(deadline, self._watch, lane)
                return
            if lane.interrupted != attempt:
                lane.interrupted = attempt
                lane.interrupted_at = now
                _async_raise(lane.ident, AlarmTimeout)
                clock.call_at(now + ABANDON_GRACE, self._watch, lane)
                return
            if now < lane.interrupted_at + ABANDON_GRACE:
                clock.call_at(lane.interrupted_at + ABANDON_GRACE, self._watch, lane)
                return
            # blocked in C code that does not return to Python: give up on this lane
            lane.abandoned = True
            lane.current = None
            lane.armed = False
        self._end(ex, self.attempts.after_timeout(ex, abandoned=True))
        self._start_thread()  # its replacement (``live`` is unchanged)


def _pop_or(urgent: deque[Execution], get: Callable[[], Any]) -> Any:
    try:
        return urgent.popleft()
    except IndexError:  # another lane took it
        return get()


def _async_raise(ident: int, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` inside thread ``ident`` the next time it runs Python bytecode."""
    if ident:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type))
