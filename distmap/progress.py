"""A one-line live progress bar for terminals, and periodic progress events for logs."""

from __future__ import annotations

import sys
import time
from typing import Any

from distmap.logs import get_logger


def _fmt_duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class _Rate:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, int]] = []

    def update(self, done: int) -> float:
        now = time.monotonic()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > 5.0:
            self.samples.pop(0)
        t_first, d_first = self.samples[0]
        if now - t_first > 0.2:
            return (done - d_first) / (now - t_first)
        return done / max(now - self.t0, 1e-9)


def estimated_total(info: dict[str, Any]) -> float | None:
    """The run's item count: exact once known (the input was read or counted to its end), else
    estimated from the items read so far and the share of the input's bytes they took."""
    total = info.get("total")
    if total is not None:
        return float(total)
    read, size, items = info.get("bytesRead"), info.get("totalBytes"), info.get("itemsRead")
    if not read or not size or not items:
        return None
    estimate = items * max(size, read) / read
    max_items = info.get("maxItems")
    return float(min(estimate, max_items)) if max_items else estimate


def fraction_done(info: dict[str, Any], done: int) -> float | None:
    """Share of the run completed (items done over the run's items), or None when unknown."""
    total = estimated_total(info)
    if total is None:
        return None
    if total <= 0:
        return 1.0
    return min(1.0, done / total)


class TerminalProgress:
    """Redraws one line on stderr: bar, done/failed, items/s, ETA."""

    def __init__(self, stream: Any = None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.rate = _Rate()
        self.last = 0.0
        self.drawn = False

    def clear(self) -> None:
        """Erase the bar, so that another message gets a line of its own (the next update
        draws the bar again)."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.drawn = False

    def log_stream(self) -> Any:
        """A stream for log lines that erases the bar before each one is written."""
        return _ClearingStream(self)

    def __call__(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if not info.get("final") and now - self.last < 0.1:
            return
        self.last = now
        done = info["succeeded"] + info["failed"] + info["timedOut"]
        rate = self.rate.update(done)
        frac = fraction_done(info, done)
        if frac is None:
            bar = "-" * self.width
            pct = "  ?%"
            eta = "--:--"
        else:
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            pct = f"{frac * 100:3.0f}%"
            left = (done / frac - done) if frac > 0 else 0
            eta = _fmt_duration(left / rate) if rate > 0 and frac < 1 else "00:00"
        failed = info["failed"] + info["timedOut"]
        line = f"\r[{bar}] {pct} {done:,} done, {failed:,} failed, {rate:,.0f} items/s, ETA {eta}  "
        self.stream.write(line)
        self.drawn = True
        if info.get("final"):
            self.stream.write("\n")
            self.drawn = False
        self.stream.flush()


class _ClearingStream:
    """Writes to the progress bar's stream, erasing the bar first."""

    def __init__(self, bar: TerminalProgress) -> None:
        self.bar = bar

    def write(self, text: str) -> int:
        self.bar.clear()
        return self.bar.stream.write(text)

    def flush(self) -> None:
        self.bar.stream.flush()

    def isatty(self) -> bool:
        return self.bar.stream.isatty()


class LogProgress:
    """Emits a ``map_run.progress`` event every ``interval`` seconds (non-terminal output)."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.last = time.monotonic()
        self.rate = _Rate()
        self.log = get_logger()

    def __call__(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        done = info["succeeded"] + info["failed"] + info["timedOut"]
        rate = self.rate.update(done)
        if info.get("final") or now - self.last < self.interval:
            return
        self.last = now
        self.log.info(
            "map_run.progress",
            map_run_id=info.get("mapRunId"),
            done=done,
            succeeded=info["succeeded"],
            failed=info["failed"],
            timed_out=info["timedOut"],
            running_chunks=info["running"],
            items_per_second=round(rate, 1),
        )
