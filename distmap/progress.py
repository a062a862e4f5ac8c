"""A one-line live progress bar for terminals, and periodic progress events for logs."""

from __future__ import annotations

import sys
import time
from typing import Any

import structlog


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


def _fraction(info: dict[str, Any], done: int) -> float | None:
    """Share of the run completed: items done over items read, scaled by the share of input read."""
    total = info.get("total")
    if not total:
        return None
    frac = done / total
    read, size = info.get("bytesRead"), info.get("totalBytes")
    if read is not None and size and not info.get("final"):
        frac *= min(1.0, read / size)
    return min(1.0, frac)


class TerminalProgress:
    """Redraws one line on stderr: bar, done/failed, items/s, ETA."""

    def __init__(self, stream: Any = None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.rate = _Rate()
        self.last = 0.0

    def __call__(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if not info.get("final") and now - self.last < 0.1:
            return
        self.last = now
        done = info["succeeded"] + info["failed"] + info["timedOut"]
        rate = self.rate.update(done)
        frac = _fraction(info, done)
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
        if info.get("final"):
            self.stream.write("\n")
        self.stream.flush()


class LogProgress:
    """Emits a ``map_run.progress`` event every ``interval`` seconds (non-terminal output)."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.last = time.monotonic()
        self.rate = _Rate()
        self.log = structlog.get_logger("distmap")

    def __call__(self, info: dict[str, Any]) -> None:
        now = time.monotonic()
        done = info["succeeded"] + info["failed"] + info["timedOut"]
        rate = self.rate.update(done)
        if info.get("final") or now - self.last < self.interval:
            return
        self.last = now
        self.log.info(
            "map_run.progress",
            done=done,
            succeeded=info["succeeded"],
            failed=info["failed"],
            timed_out=info["timedOut"],
            running_chunks=info["running"],
            items_per_second=round(rate, 1),
        )
