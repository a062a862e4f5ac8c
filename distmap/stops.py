"""Stop requests: what Ctrl-C (SIGINT) and SIGTERM do to a running map run.

A signal handler runs between two bytecodes of whatever the main thread was doing, possibly
while it holds a lock (a logger's, an ``Event``'s). So the handler here only counts: it takes no
lock, logs nothing and raises nothing. The coordinator's main loop reads the count at safe points
and does the logging and the cleanup:

* 1st request: stop gracefully. No new work starts, running chunks are cut short, every unfinished
  item goes to PENDING files, the manifest is written; status ABORTED.
* 2nd request: stop at once. Workers are killed, unfinished result files are removed, no manifest
  is written (unless it already was); status ABORTED.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(Exception):
    """Raised by the coordinator itself (never by a signal handler) at a safe point after a
    second stop request: leave without writing the manifest."""


class StopRequests:
    """Counts stop requests from signals or from ``request``; safe to call from a signal handler."""

    def __init__(self) -> None:
        self.count = 0
        self.last_signal: int | None = None
        self.announced = 0
        self._previous: dict[int, Any] | None = None

    @property
    def level(self) -> int:
        """0: keep going; 1: stop gracefully; 2 or more: stop at once."""
        return self.count

    def request(self, *, now: bool = False) -> None:
        """Ask for a graceful stop (or an immediate one with ``now``); callable from any thread."""
        self.count = max(self.count + 1, 2 if now else 1)

    def _on_signal(self, signum: int, frame: Any) -> None:
        # only plain attribute writes: no lock, no I/O, no exception
        self.last_signal = signum
        self.count += 1

    def install(self) -> bool:
        """Handle SIGINT / SIGTERM from now on (main thread only; a no-op elsewhere). Calling it
        again re-claims the signals, e.g. after a library replaced a handler. Returns True when
        this call installed the handlers (so the caller should ``restore`` them)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        if self._previous is None:
            self._previous = previous
            return True
        return False

    def restore(self) -> None:
        """Put back the handlers that were there before ``install``."""
        if self._previous is None:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = None

    def signal_name(self) -> str | None:
        if self.last_signal is None:
            return None
        return signal.Signals(self.last_signal).name
