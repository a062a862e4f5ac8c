"""The workloads of ``python -m benchmarks run`` and the contenders of each.

``noop``
    ``jobs.examples:noop`` on the ``--size`` input (1M rows; 100k with ``--quick``): engine
    overhead. Every contender, including distmap's writer variants and the failures run.
``cpu``
    ``jobs.examples:cpu_1ms`` (about 1 ms of pure-Python work) on 8,000 items (1,000 quick):
    parallel efficiency against a single-process loop calling the same function.
``sleep``
    ``jobs.examples:sleep_10ms`` on 20,000 items (2,000 quick) at MaxConcurrency 200: speedup
    against sequential. The sequential time is estimated, not run: a single-process loop over the
    first 200 items gives the time per item, times the item count.
``fanout``
    100 ms sleeping items (``jobs.examples:sleep_100ms`` / ``async_sleep_100ms``) on 100,000 items
    (10,000 quick) at MaxConcurrency 10,000, the most AWS runs at once: efficiency (ideal time /
    measured time) of distmap's sync and async lanes against a hand-written ``asyncio.gather``
    under a semaphore and a ``ThreadPoolExecutor(10000)``, and the peak RSS of 10,000 lanes.
    ``thread-floor`` (``benchmarks.peers.thread_floor``) is bare threads doing only the sleep,
    split over processes as distmap splits a sync function's lanes: the best any thread-based
    engine can do on this machine.
``wide``
    The same 100 ms items on 20,000 items (4,000 quick) at MaxConcurrency 1,000, the most common
    setting in real definitions: efficiency on the local and Ray backends.
``first-result``
    Time to first result of the local backend, through ``distmap.run`` (see
    ``benchmarks.peers.first_result``), on the ``--size`` input.
``memory`` (``--size 10m`` only)
    distmap local on the 1M input, as the reference for the peak RSS of the 10M no-op run.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.contenders import (
    Contender,
    distmap_contender,
    distmap_job,
    first_result_check,
    flaky_job,
    peer_check,
    peer_command,
)
from benchmarks.datagen import csv_path, jsonl_path
from distmap.coordinator import THREAD_LANES_PER_PROCESS

SIZES = {"1m": 1_000_000, "10m": 10_000_000}
QUICK_ROWS = 100_000
CPU_ITEMS, QUICK_CPU_ITEMS = 8_000, 1_000
SLEEP_ITEMS, QUICK_SLEEP_ITEMS = 20_000, 2_000
SLEEP_SAMPLE = 200
SLEEP_CONCURRENCY = 200
FANOUT_ITEMS, QUICK_FANOUT_ITEMS = 100_000, 10_000
FANOUT_CONCURRENCY = 10_000
WIDE_ITEMS, QUICK_WIDE_ITEMS = 20_000, 4_000
WIDE_CONCURRENCY = 1_000
LONG_SLEEP_S = 0.1
"""The item time of the ``fanout`` and ``wide`` workloads."""
CPU_CHUNK_LINES = 25
"""Pool / joblib chunk size for the 1 ms items: 25 ms of work per task, so 8,000 items make 320
tasks (1,000-line chunks would leave one worker idle on the quick run's 1,000 items)."""


@dataclass
class Workload:
    name: str
    title: str
    items: int
    inputs: list[Path]
    """Files to generate and read once (page cache) before the workload runs."""
    contenders: list[Contender] = field(default_factory=list)


def noop_workload(rows: int, cores: int) -> Workload:
    src, csv = jsonl_path(rows, False), csv_path(rows, False)
    w = "noop"
    workers = ["--workers", str(cores)]
    jsonl_out, dir_out = "{scratch}/out.jsonl", "{scratch}/out"
    local, ray = "local", "ray"
    c = [
        _peer(w, "B0-aws", "one process, AWS-shaped records (JSON array)", rows, "floor", src,
              "{scratch}/out.json", "--record", "aws", pattern="out.json", aws=True),
        _peer(w, "B0-compact", "one process, outputs as JSONL", rows, "floor", src, jsonl_out),
        _peer(w, "B0-csv", "one process, CSV in, outputs as JSONL", rows, "floor", csv, jsonl_out, "--csv"),
        _peer(w, "B1-pool", "multiprocessing.Pool, 1,000-line chunks, 8 in flight", rows, "pool", src,
              jsonl_out, *workers),
        _peer(w, "B2-ray-data-map", "ray.data read_json.map.write_json", rows, "ray_data", src, dir_out,
              "--mode", "map", *workers, pattern="out/*", ray=True),
        _peer(w, "B2-ray-data-map-batches", "ray.data map_batches(pyarrow)", rows, "ray_data", src, dir_out,
              "--mode", "map_batches", *workers, pattern="out/*", ray=True),
        _peer(w, "B3-ray-wait", "hand-written ray.wait loop, 10k-line blobs, 4 in flight", rows, "ray_wait",
              src, jsonl_out, *workers, ray=True),
        _peer(w, "joblib", "joblib generator_unordered, 1,000-line chunks", rows, "joblib_peer", src,
              jsonl_out, *workers),
        _peer(w, "dask-bag", "dask.bag read_text.map.to_textfiles, processes", rows, "dask_bag", src, dir_out,
              *workers, pattern="out/*"),
        distmap_contender(w, "distmap-local", "AWS-shaped records (default ResultWriter)", rows,
                          distmap_job(src, "jobs.examples:noop"), local, cores),
        distmap_contender(w, "distmap-local-compact", "COMPACT JSONL writer (outputs only)", rows,
                          distmap_job(src, "jobs.examples:noop", writer="jsonl"), local, cores),
        distmap_contender(w, "distmap-local-no-writer", "no ResultWriter", rows,
                          distmap_job(src, "jobs.examples:noop", writer=None), local, cores),
        distmap_contender(w, "distmap-local-csv", "CSV in, COMPACT JSONL out", rows,
                          distmap_job(csv, "jobs.examples:noop", writer="jsonl", csv=True), local, cores),
        distmap_contender(w, "distmap-local-failures", "flaky: 1% retried, 5% tolerated failures", rows,
                          flaky_job(src), local, cores, flaky=True),
        distmap_contender(w, "distmap-local-failures-clean", "flaky's clean run: the same work and job, no item fails",
                          rows, flaky_job(src, "jobs.examples:flaky_clean"), local, cores),
        distmap_contender(w, "distmap-ray", "Ray backend, AWS-shaped records", rows,
                          distmap_job(src, "jobs.examples:noop"), ray, cores),
        distmap_contender(w, "distmap-ray-compact", "Ray backend, COMPACT JSONL writer", rows,
                          distmap_job(src, "jobs.examples:noop", writer="jsonl"), ray, cores),
        distmap_contender(w, "distmap-ray-no-writer", "Ray backend, no ResultWriter", rows,
                          distmap_job(src, "jobs.examples:noop", writer=None), ray, cores),
        distmap_contender(w, "distmap-ray-failures", "Ray backend, flaky: 1% retried, 5% tolerated", rows,
                          flaky_job(src), ray, cores, flaky=True),
    ]  # fmt: skip
    return Workload(w, f"no-op items, {rows:,} rows", rows, [src, csv], c)


def cpu_workload(items: int, cores: int) -> Workload:
    src = jsonl_path(items, False)
    w, fn = "cpu", ["--function", "cpu_1ms"]
    workers = ["--workers", str(cores)]
    chunks = ["--chunk-lines", str(CPU_CHUNK_LINES)]
    jsonl_out = "{scratch}/out.jsonl"
    job = distmap_job(src, "jobs.examples:cpu_1ms", writer="jsonl")
    c = [
        _peer(w, "sequential", "one process, calls f in a loop (T_sequential)", items, "floor", src,
              jsonl_out, *fn),
        _peer(w, "B1-pool", "multiprocessing.Pool, 25-item chunks", items, "pool", src, jsonl_out, *fn,
              *workers, *chunks),
        _peer(w, "joblib", "joblib generator_unordered, 25-item chunks", items, "joblib_peer", src, jsonl_out,
              *fn, *workers, *chunks),
        distmap_contender(w, "distmap-local", "local backend, COMPACT JSONL", items, job, "local", cores),
        distmap_contender(w, "distmap-ray", "Ray backend, COMPACT JSONL", items, job, "ray", cores),
    ]  # fmt: skip
    return Workload(w, f"~1 ms CPU-bound items, {items:,} items", items, [src], c)


def sleep_workload(items: int, cores: int) -> Workload:
    src, sample = jsonl_path(items, False), jsonl_path(SLEEP_SAMPLE, False)
    w, fn = "sleep", ["--function", "sleep_10ms"]
    jsonl_out = "{scratch}/out.jsonl"
    job = distmap_job(src, "jobs.examples:sleep_10ms", writer="jsonl", max_concurrency=SLEEP_CONCURRENCY)
    c = [
        _peer(w, "sequential-sample", f"one process, first {SLEEP_SAMPLE} items (per-item time)",
              SLEEP_SAMPLE, "floor", sample, jsonl_out, *fn),
        _peer(w, "threads-200", "ThreadPoolExecutor(200), one process", items, "threads", src, jsonl_out, *fn,
              "--threads", str(SLEEP_CONCURRENCY)),
        distmap_contender(w, "distmap-local", "local backend, MaxConcurrency 200", items, job, "local",
                          cores),
        distmap_contender(w, "distmap-ray", "Ray backend, MaxConcurrency 200", items, job, "ray", cores),
    ]  # fmt: skip
    return Workload(w, f"~10 ms sleeping items, {items:,} items, MaxConcurrency 200", items, [src, sample], c)


def fanout_workload(items: int, cores: int) -> Workload:
    src = jsonl_path(items, False)
    w, out = "fanout", "{scratch}/out.jsonl"
    n = str(FANOUT_CONCURRENCY)
    # the floor splits its threads over processes as distmap splits a sync function's lanes
    floor_procs = max(cores, -(-FANOUT_CONCURRENCY // THREAD_LANES_PER_PROCESS))
    floor_threads = -(-FANOUT_CONCURRENCY // floor_procs)
    sync = distmap_job(src, "jobs.examples:sleep_100ms", writer="jsonl", max_concurrency=FANOUT_CONCURRENCY)
    asyn = distmap_job(
        src, "jobs.examples:async_sleep_100ms", writer="jsonl", max_concurrency=FANOUT_CONCURRENCY
    )
    c = [
        _peer(w, "asyncio-gather", f"asyncio.gather + Semaphore({n}), one process", items, "asyncio_gather",
              src, out, "--function", "async_sleep_100ms", "--concurrency", n),
        _peer(w, "threads-10000", f"ThreadPoolExecutor({n}), one process", items, "threads", src, out,
              "--function", "sleep_100ms", "--threads", n),
        _peer(w, "thread-floor", f"bare threads only: {floor_procs} processes x {floor_threads} threads (distmap's split)",
              items, "thread_floor", src, out, "--function", "sleep_100ms", "--threads", str(floor_threads),
              "--workers", str(floor_procs), pattern="out.jsonl.*"),
        distmap_contender(w, "distmap-local", f"local backend, sync function, MaxConcurrency {n}", items, sync,
                          "local", cores),
        distmap_contender(w, "distmap-local-async", f"local backend, async function, MaxConcurrency {n}", items,
                          asyn, "local", cores),
    ]  # fmt: skip
    return Workload(w, f"100 ms sleeping items, {items:,} items, MaxConcurrency {n}", items, [src], c)


def wide_workload(items: int, cores: int) -> Workload:
    src = jsonl_path(items, False)
    w, n = "wide", f"{WIDE_CONCURRENCY:,}"
    job = distmap_job(src, "jobs.examples:sleep_100ms", writer="jsonl", max_concurrency=WIDE_CONCURRENCY)
    c = [
        distmap_contender(
            w, "distmap-local", f"local backend, MaxConcurrency {n}", items, job, "local", cores
        ),
        distmap_contender(w, "distmap-ray", f"Ray backend, MaxConcurrency {n}", items, job, "ray", cores),
    ]
    return Workload(w, f"100 ms sleeping items, {items:,} items, MaxConcurrency {n}", items, [src], c)


def first_result_workload(rows: int) -> Workload:
    src = jsonl_path(rows, False)
    c = Contender(
        "first-result",
        "distmap-local",
        "distmap.run() in a fresh process, stamping item function",
        peer_command("first_result", src, "{scratch}"),
        first_result_check(rows),
        rows,
        distmap=True,
    )
    return Workload("first-result", f"time to first result, {rows:,} rows", rows, [src], [c])


def memory_workload(cores: int) -> Workload:
    rows = SIZES["1m"]
    src = jsonl_path(rows, False)
    c = distmap_contender(
        "memory", "distmap-local-1m", "the 1M-row reference run (AWS-shaped records)", rows,
        distmap_job(src, "jobs.examples:noop"), "local", cores,
    )  # fmt: skip
    return Workload("memory", "peak RSS reference: distmap local no-op on 1M rows", rows, [src], [c])


def _peer(
    workload: str,
    name: str,
    label: str,
    items: int,
    module: str,
    src: Path,
    output: str,
    *options: str,
    pattern: str = "out.jsonl",
    aws: bool = False,
    ray: bool = False,
) -> Contender:
    check = peer_check(items, pattern, aws_records=aws)
    return Contender(
        workload, name, label, peer_command(module, src, output, *options), check, items, ray=ray
    )


def lineup(rows: int, quick: bool, big: bool, cores: int) -> list[Workload]:
    """Every workload, in the order they run (inputs are named here, generated before a workload runs)."""
    cpu = QUICK_CPU_ITEMS if quick else CPU_ITEMS
    sleep = QUICK_SLEEP_ITEMS if quick else SLEEP_ITEMS
    builders = [
        lambda: noop_workload(rows, cores),
        lambda: cpu_workload(cpu, cores),
        lambda: sleep_workload(sleep, cores),
        lambda: fanout_workload(QUICK_FANOUT_ITEMS if quick else FANOUT_ITEMS, cores),
        lambda: wide_workload(QUICK_WIDE_ITEMS if quick else WIDE_ITEMS, cores),
        lambda: first_result_workload(rows),
    ]
    if big:
        builders.append(lambda: memory_workload(cores))
    return [b() for b in builders]


def select(workloads: list[Workload], patterns: list[str] | None) -> list[Workload]:
    """Keep the contenders whose name or ``workload/name`` matches a pattern (fnmatch); drop
    workloads left empty."""
    if not patterns:
        return workloads
    kept = []
    for w in workloads:
        w.contenders = [
            c
            for c in w.contenders
            if any(fnmatch.fnmatchcase(c.name, p) or fnmatch.fnmatchcase(c.key, p) for p in patterns)
        ]
        if w.contenders:
            kept.append(w)
    return kept
