"""The targets of issue 5, computed from one run's contender summaries.

Which time each ratio uses (the same rule on both sides of a ratio):

* rows about the **local** backend compare **process wall** times (fresh process, spawn to exit);
* rows about the **Ray** backend compare **work** times measured inside the process after
  ``ray.init`` (distmap: ``stats.seconds``; B2/B3: their own clock); the non-Ray side of such a ratio
  (B0, the sequential loop) then uses its own in-process work time too, so interpreter start-up
  is excluded on both sides.

A target whose contenders did not run (``--only``) or failed is reported as ``n/a``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.workloads import FANOUT_CONCURRENCY, LONG_SLEEP_S, WIDE_CONCURRENCY

Summaries = dict[str, dict[str, Any]]
"""``workload/name`` -> summary of a contender (see ``benchmarks.run.summarise``)."""


@dataclass
class Target:
    title: str
    goal: str
    """``<= 1.5``, ``>= 120`` ... or ``""`` for an informational ratio."""
    how: str
    value: float | None = None
    unit: str = "x"
    passed: bool | None = None
    """None: not measured (a contender missing or failed), or informational."""
    note: str = ""

    @property
    def result(self) -> str:
        if not self.goal:
            return "info"
        if self.passed is None:
            return "n/a"
        return "pass" if self.passed else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "result": self.result}


class _Missing(Exception):
    pass


class _View:
    """Lookups into the summaries that raise ``_Missing`` for a contender that did not run or failed."""

    def __init__(self, s: Summaries) -> None:
        self.s = s

    def ok(self, key: str) -> dict[str, Any]:
        entry = self.s.get(key)
        if entry is None:
            raise _Missing(f"{key} not run")
        if entry["status"] != "ok":
            raise _Missing(f"{key} failed")
        return entry

    def wall(self, key: str) -> float:
        return float(self.ok(key)["best_wall_s"])

    def cpu(self, key: str) -> float:
        return float(self.ok(key)["best_cpu_s"])

    def work(self, key: str) -> float:
        return float(self.ok(key)["best_seconds"])

    def rss(self, key: str) -> float:
        return float(self.ok(key)["peak_tree_rss_mb"])

    def fact(self, key: str, name: str) -> Any:
        value = self.ok(key).get(name)
        if value is None:
            raise _Missing(f"{key} reported no {name}")
        return value


def _target(
    view: _View, title: str, goal: str, how: str, unit: str, compute: Callable[[], float | tuple[float, bool]]
) -> Target:
    """Evaluate ``compute`` (a value, or ``(value, passed)`` when the goal is not one comparison)."""
    t = Target(title, goal, how, unit=unit)
    try:
        out = compute()
    except _Missing as exc:
        t.note = str(exc)
        return t
    except ZeroDivisionError:
        t.note = "a time of zero"
        return t
    if isinstance(out, tuple):
        t.value, t.passed = out
    else:
        t.value = out
        t.passed = _meets(out, goal) if goal else None
    if unit == "µs" and t.value < 0:
        t.note = "negative: the engine finished before the single-process floor"
    return t


def _meets(value: float, goal: str) -> bool:
    op, _, bound = goal.partition(" ")
    limit = float(bound)
    return value <= limit if op == "<=" else value >= limit


def sleep_sequential_estimate(view: _View, items: int) -> float:
    """``items`` x the per-item time of the sequential sample (its in-process loop time / sample size)."""
    sample = view.ok("sleep/sequential-sample")
    return items * float(sample["best_seconds"]) / int(sample["items"])


def compute_targets(s: Summaries, cores: int, big: bool) -> list[Target]:
    """The issue's targets, in its order, then informational ratios."""
    v = _View(s)
    n = _items(s, "noop")
    sleep_items = _items(s, "sleep", exclude="sleep/sequential-sample")
    fanout_ideal = _items(s, "fanout") * LONG_SLEEP_S / FANOUT_CONCURRENCY
    wide_ideal = _items(s, "wide") * LONG_SLEEP_S / WIDE_CONCURRENCY
    us = 1e6
    t: list[Target] = []

    def add(title: str, goal: str, how: str, unit: str, compute: Callable[[], Any]) -> None:
        t.append(_target(v, title, goal, how, unit, compute))

    add(
        "local backend, no-op, wall / B0 floor",
        "<= 1.5",
        "noop: distmap-local / B0-aws, process wall (both write the same AWS-shaped records)",
        "x",
        lambda: v.wall("noop/distmap-local") / v.wall("noop/B0-aws"),
    )
    add(
        "local backend / B1 Pool",
        "<= 1.15",
        "noop: distmap-local-compact / B1-pool, process wall (both write the outputs as JSONL)",
        "x",
        lambda: v.wall("noop/distmap-local-compact") / v.wall("noop/B1-pool"),
    )
    add(
        "engine overhead per item, local",
        "<= 1.5",
        "noop: (distmap-local - B0-aws) / items, process wall",
        "µs",
        lambda: (v.wall("noop/distmap-local") - v.wall("noop/B0-aws")) / n * us,
    )
    add(
        "worker CPU per item, local, COMPACT (the fastest run's workers)",
        "",
        "noop/distmap-local-compact: stats.workersCpuSeconds / items",
        "µs",
        lambda: float(v.fact("noop/distmap-local-compact", "workers_cpu_s")) / n * us,
    )
    add(
        "single-process loop CPU per item, COMPACT (B0, interpreter start-up included)",
        "",
        "noop/B0-compact: process CPU (user + system) / items, best run",
        "µs",
        lambda: v.cpu("noop/B0-compact") / n * us,
    )
    add(
        "worker overhead per item over the single-process loop, COMPACT",
        "<= 0.3",
        "noop: distmap-local-compact workersCpuSeconds / items - B0-compact CPU / items",
        "µs",
        lambda: (
            (float(v.fact("noop/distmap-local-compact", "workers_cpu_s")) - v.cpu("noop/B0-compact")) / n * us
        ),
    )
    add(
        "coordinator CPU per 1M items, local, COMPACT",
        "<= 0.15",
        "noop/distmap-local-compact: stats.coordinatorCpuSeconds x 1,000,000 / items",
        "s",
        lambda: float(v.fact("noop/distmap-local-compact", "coordinator_cpu_s")) * 1e6 / n,
    )
    add(
        "coordinator CPU per 1M items, local, AWS-shaped records",
        "",
        "noop/distmap-local: stats.coordinatorCpuSeconds x 1,000,000 / items",
        "s",
        lambda: float(v.fact("noop/distmap-local", "coordinator_cpu_s")) * 1e6 / n,
    )
    add(
        "engine overhead per item, Ray",
        "<= 3",
        "noop: (distmap-ray - B0-aws) / items, work time (Ray: after ray.init; B0: its own loop)",
        "µs",
        lambda: (v.work("noop/distmap-ray") - v.work("noop/B0-aws")) / n * us,
    )
    add(
        "Ray backend / B2 `map`",
        "<= 0.4",
        "noop: distmap-ray-compact / B2-ray-data-map, work time after ray.init (same JSONL outputs)",
        "x",
        lambda: v.work("noop/distmap-ray-compact") / v.work("noop/B2-ray-data-map"),
    )
    add(
        "Ray backend / B3 hand-written loop",
        "<= 1.25",
        "noop: distmap-ray-compact / B3-ray-wait, work time after ray.init (same JSONL outputs)",
        "x",
        lambda: v.work("noop/distmap-ray-compact") / v.work("noop/B3-ray-wait"),
    )
    add(
        f"CPU-bound 1 ms items, {cores} workers, local",
        ">= 0.85",
        f"cpu: T_seq / ({cores} x distmap-local), process wall; T_seq = the sequential contender",
        "",
        lambda: v.wall("cpu/sequential") / (cores * v.wall("cpu/distmap-local")),
    )
    add(
        f"CPU-bound 1 ms items, {cores} workers, Ray",
        ">= 0.85",
        f"cpu: T_seq / ({cores} x distmap-ray), work time (Ray after ray.init; sequential: its own loop)",
        "",
        lambda: v.work("cpu/sequential") / (cores * v.work("cpu/distmap-ray")),
    )
    add(
        "latency-bound 10 ms items, MaxConcurrency 200, speedup, local",
        ">= 150",
        "sleep: T_seq_est / distmap-local process wall; "
        "T_seq_est = items x (sequential-sample loop time / 200)",
        "x",
        lambda: sleep_sequential_estimate(v, sleep_items) / v.wall("sleep/distmap-local"),
    )
    add(
        "latency-bound 10 ms items, MaxConcurrency 200, speedup, Ray, once its actors are up",
        ">= 150",
        "sleep: T_seq_est / (distmap-ray work time - stats.workersStartSeconds): ray.init and the "
        "actors' start-up reported apart",
        "x",
        lambda: (
            sleep_sequential_estimate(v, sleep_items)
            / (v.work("sleep/distmap-ray") - float(v.fact("sleep/distmap-ray", "workers_start_seconds")))
        ),
    )
    add(
        "latency-bound 10 ms items, MaxConcurrency 200, speedup, Ray, actors' start-up included",
        "",
        "sleep: T_seq_est / distmap-ray work time after ray.init",
        "x",
        lambda: sleep_sequential_estimate(v, sleep_items) / v.work("sleep/distmap-ray"),
    )

    for name, label in (("distmap-local", "sync"), ("distmap-local-async", "async")):
        add(
            f"100 ms items at MaxConcurrency 10,000, {label}, efficiency, local",
            ">= 0.85",
            f"fanout: ideal (items x 0.1 s / 10,000) / {name} work time (the run, workers started)",
            "",
            lambda name=name: fanout_ideal / v.work(f"fanout/{name}"),
        )
        add(
            f"100 ms items at MaxConcurrency 10,000, {label}, / best of asyncio.gather and ThreadPoolExecutor",
            "<= 1.0",
            f"fanout: {name} / min(asyncio-gather, threads-10000), work time (each after its imports)",
            "x",
            lambda name=name: (
                v.work(f"fanout/{name}")
                / min(v.work("fanout/asyncio-gather"), v.work("fanout/threads-10000"))
            ),
        )
        add(
            f"100 ms items at MaxConcurrency 10,000, {label}: peak RSS of the process tree",
            "<= 1024",
            f"fanout: peak tree RSS of {name}",
            "MB",
            lambda name=name: v.rss(f"fanout/{name}"),
        )
    add(
        "100 ms items at MaxConcurrency 10,000, sync: efficiency of bare threads (the floor of thread lanes)",
        "",
        "fanout: ideal / thread-floor work time (processes x threads doing only the sleep, no engine)",
        "",
        lambda: fanout_ideal / v.work("fanout/thread-floor"),
    )
    add(
        "100 ms items at MaxConcurrency 10,000, sync: distmap-local / bare threads",
        "",
        "fanout: distmap-local / thread-floor, work time",
        "x",
        lambda: v.work("fanout/distmap-local") / v.work("fanout/thread-floor"),
    )
    add(
        "100 ms items at MaxConcurrency 1,000, efficiency, local",
        ">= 0.9",
        "wide: ideal (items x 0.1 s / 1,000) / distmap-local work time",
        "",
        lambda: wide_ideal / v.work("wide/distmap-local"),
    )
    add(
        "100 ms items at MaxConcurrency 1,000, efficiency, Ray, once its actors are up",
        ">= 0.9",
        "wide: ideal / (distmap-ray work time - stats.workersStartSeconds): ray.init and the actors' "
        "start-up reported apart",
        "",
        lambda: (
            wide_ideal
            / (v.work("wide/distmap-ray") - float(v.fact("wide/distmap-ray", "workers_start_seconds")))
        ),
    )
    add(
        "100 ms items at MaxConcurrency 1,000, efficiency, Ray, actors' start-up included",
        "",
        "wide: ideal / distmap-ray work time (after ray.init)",
        "",
        lambda: wide_ideal / v.work("wide/distmap-ray"),
    )

    def memory() -> tuple[float, bool]:
        if not big:
            raise _Missing("needs --size 10m")
        peak_10m = v.rss("noop/distmap-local")
        ratio = peak_10m / v.rss("memory/distmap-local-1m")
        return ratio, ratio <= 1.2 and peak_10m <= 250

    add(
        "10M rows local: peak RSS / peak RSS(1M)",
        "<= 1.2, and <= 250 MB",
        "peak tree RSS of noop/distmap-local (10M rows) / memory/distmap-local-1m",
        "x",
        memory,
    )
    add(
        "1% retried + 5% tolerated failures, wall / clean run",
        "<= 1.1",
        "noop: distmap-local-failures / distmap-local-failures-clean, process wall (the same function's work, "
        "Retry, tolerance and AWS-shaped writer; no item fails in the clean run)",
        "x",
        lambda: v.wall("noop/distmap-local-failures") / v.wall("noop/distmap-local-failures-clean"),
    )
    add(
        "1% retried + 5% tolerated failures, wall / no-op run",
        "",
        "noop: distmap-local-failures / distmap-local, process wall (includes flaky's own work per item)",
        "x",
        lambda: v.wall("noop/distmap-local-failures") / v.wall("noop/distmap-local"),
    )
    add(
        "time to first result, local backend",
        "<= 0.3",
        "first-result: first item function return - distmap.run() call (stamped by the item function)",
        "s",
        lambda: float(v.fact("first-result/distmap-local", "first_result_s")),
    )

    # informational
    add(
        "local COMPACT / B0-compact",
        "",
        "noop, process wall (same JSONL bytes)",
        "x",
        lambda: v.wall("noop/distmap-local-compact") / v.wall("noop/B0-compact"),
    )
    add(
        "local CSV / B0-csv",
        "",
        "noop, CSV input, process wall",
        "x",
        lambda: v.wall("noop/distmap-local-csv") / v.wall("noop/B0-csv"),
    )
    add(
        "local no-writer / B0-compact",
        "",
        "noop, process wall",
        "x",
        lambda: v.wall("noop/distmap-local-no-writer") / v.wall("noop/B0-compact"),
    )
    add(
        "local COMPACT / joblib",
        "",
        "noop, process wall",
        "x",
        lambda: v.wall("noop/distmap-local-compact") / v.wall("noop/joblib"),
    )
    add(
        "local COMPACT / dask-bag",
        "",
        "noop, process wall",
        "x",
        lambda: v.wall("noop/distmap-local-compact") / v.wall("noop/dask-bag"),
    )
    add(
        "Ray COMPACT / B2 `map_batches`",
        "",
        "noop, work time after ray.init",
        "x",
        lambda: v.work("noop/distmap-ray-compact") / v.work("noop/B2-ray-data-map-batches"),
    )
    add(
        "Ray failures / Ray clean",
        "",
        "noop: distmap-ray-failures / distmap-ray, work time",
        "x",
        lambda: v.work("noop/distmap-ray-failures") / v.work("noop/distmap-ray"),
    )
    add(
        "ray.init, distmap Ray backend",
        "",
        "noop/distmap-ray: stats.backendStartSeconds",
        "s",
        lambda: float(v.ok("noop/distmap-ray")["init_seconds"]),
    )
    add(
        f"CPU efficiency, B1-pool ({cores} workers)",
        "",
        "cpu: T_seq / (cores x B1-pool), process wall",
        "",
        lambda: v.wall("cpu/sequential") / (cores * v.wall("cpu/B1-pool")),
    )
    add(
        "latency-bound speedup, threads-200",
        "",
        "sleep: T_seq_est / threads-200 process wall",
        "x",
        lambda: sleep_sequential_estimate(v, sleep_items) / v.wall("sleep/threads-200"),
    )
    add(
        "sleep: sequential estimate",
        "",
        "items x per-item time of sequential-sample",
        "s",
        lambda: sleep_sequential_estimate(v, sleep_items),
    )
    add(
        "first result, coordinator-side upper bound",
        "",
        "first progress callback with succeeded > 0 - distmap.run() call (0.2 s granularity)",
        "s",
        lambda: float(v.fact("first-result/distmap-local", "first_progress_s")),
    )
    add(
        "first result, from process start",
        "",
        "first item function return - process start (/proc; interpreter start-up and imports included)",
        "s",
        lambda: float(v.fact("first-result/distmap-local", "first_result_from_process_start_s")),
    )
    add(
        "10M rows local: peak tree RSS",
        "",
        "noop/distmap-local at 10M rows",
        "MB",
        lambda: v.rss("noop/distmap-local") if big else _raise(_Missing("needs --size 10m")),
    )
    return t


def _items(s: Summaries, workload: str, exclude: str = "") -> int:
    """The item count of a workload (its contenders all process the same input)."""
    for key, entry in s.items():
        if entry["workload"] == workload and key != exclude:
            return int(entry["items"])
    return 0


def _raise(exc: Exception) -> float:
    raise exc
