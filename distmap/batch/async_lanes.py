"""Asyncio lanes for ``async def`` functions: MaxConcurrency tasks that live for the whole run.

One event loop per worker runs in its own thread; ``run`` (thread-safe, blocking) hands it a
chunk's executions and waits for them. The lanes are tasks taking executions from one queue,
whatever chunk they come from, so a slow item never holds a barrier. An attempt past its
TimeoutSeconds is cancelled and left to unwind on its own (the item does not wait for its
cleanup). A retry waits on the loop's timer heap, not in a lane.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from distmap.batch.attempts import AlarmTimeout, Attempts
from distmap.batch.executions import Execution, Succeeded
from distmap.batch.thread_lanes import claim


class AsyncLanes:
    """Up to ``size`` lane tasks awaiting ``fn`` on one event loop thread."""

    def __init__(
        self,
        fn: Callable[..., Any],
        size: int,
        attempts: Attempts,
        async_sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.fn = fn
        self.size = max(1, size)
        self.attempts = attempts
        self.timeout = attempts.timeout
        self.async_sleep = async_sleep
        self.loop = asyncio.new_event_loop()
        self.ready: deque[Execution] = deque()
        """Executions to run, oldest first (only the loop thread touches it)."""
        self.urgent: deque[Execution] = deque()
        """Retries now due: taken before ``ready``."""
        self.idle: deque[asyncio.Future[None]] = deque()
        """Lanes waiting for work, woken one per execution added."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.unwinding: set[asyncio.Future[Any]] = set()
        """Tasks of timed-out attempts that have not finished unwinding."""
        self.thread = threading.Thread(target=self.loop.run_forever, name="distmap-async-lanes", daemon=True)
        self.thread.start()
        self.closed = False

    def run(self, executions: list[Execution]) -> None:
        """Run every execution without an outcome; return when all of them have one."""
        todo, work = claim(executions)
        if not todo:
            return
        self.loop.call_soon_threadsafe(self._enqueue, todo)
        work.done.wait()

    def _enqueue(self, todo: list[Execution]) -> None:
        for _ in range(min(self.size - len(self.tasks), len(todo))):
            task = self.loop.create_task(self._lane())
            self.tasks.add(task)
        self.ready.extend(todo)
        self._wake(len(todo))

    def _wake(self, n: int) -> None:
        idle = self.idle
        while n > 0 and idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                n -= 1

    def close(self) -> None:
        """Stop the lanes and the loop (attempts still running are abandoned)."""
        if self.closed:
            return
        self.closed = True
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self._stop_lanes)
        except RuntimeError:  # the loop is gone already
            return
        self.thread.join(timeout=2)

    def _stop_lanes(self) -> None:
        for task in list(self.tasks) + list(self.unwinding):
            task._log_destroy_pending = False  # type: ignore[attr-defined]
            task.cancel()
        self.loop.call_soon(self.loop.stop)

    # ------------------------------------------------------------------ a lane
    async def _lane(self) -> None:
        ready = self.ready
        urgent = self.urgent
        idle = self.idle
        loop = self.loop
        attempts = self.attempts
        fn = self.fn
        timed = self.timeout is not None
        now = time.time
        while True:
            if urgent:
                ex = urgent.popleft()
            elif ready:
                ex = ready.popleft()
            else:
                waiter = loop.create_future()
                idle.append(waiter)
                await waiter
                continue
            if ex.start == 0.0:
                ex.start = now()
            try:
                out = await (self._with_deadline(ex) if timed else fn(ex.input))
            except AlarmTimeout:
                delay = attempts.after_timeout(ex)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # the lane itself is being stopped
                    raise
                delay = attempts.after_exception(ex, exc)  # the function's own CancelledError
            except BaseException as exc:  # the user's error, whatever it is, fails the item
                delay = attempts.after_exception(ex, exc)
            else:
                ex.outcome = Succeeded(out)
                delay = None
            if delay is None:
                ex.stop = now()
                ex.work.finish_one_in_loop()
            elif self.async_sleep is not None:  # an injected sleep (tests): wait in the lane
                res = self.async_sleep(delay)
                if inspect.isawaitable(res):
                    await res
                self._due(ex)
            else:
                self.loop.call_later(max(0.0, delay), self._due, ex)

    def _due(self, ex: Execution) -> None:
        self.urgent.append(ex)
        self._wake(1)

    async def _with_deadline(self, ex: Execution) -> Any:
        """One attempt, stopped at TimeoutSeconds: the attempt's task is cancelled and left to
        unwind on its own (``asyncio.wait_for`` would wait for its cleanup, however long that
        takes), and ``AlarmTimeout`` is raised at the deadline. As lean as ``wait_for``: a
        waiter released by the task's end or by the deadline timer, whichever comes first."""
        loop = self.loop
        task = asyncio.ensure_future(self.fn(ex.input), loop=loop)
        waiter = loop.create_future()

        def release(_: Any = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        assert self.timeout is not None
        timer = loop.call_later(self.timeout, release)
        task.add_done_callback(release)
        try:
            await waiter
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.remove_done_callback(release)
        task.cancel()
        # abandoned on purpose: if the loop goes away first, asyncio need not warn that the task
        # was destroyed while pending
        task._log_destroy_pending = False  # type: ignore[attr-defined]
        self.unwinding.add(task)
        task.add_done_callback(self._unwound)
        raise AlarmTimeout()

    def _unwound(self, task: Any) -> None:
        """A timed-out attempt's task finished unwinding: its result or error is ignored."""
        self.unwinding.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as never retrieved
