"""``python -m benchmarks run``: distmap against every peer, in one run, with a report a person can read.

Usage (from the repository root; the peers need Ray Data, joblib and dask, the chart matplotlib)::

    pip install -e '.[ray]' pandas==3.1.1 joblib==1.6.0 dask==2026.8.0 matplotlib==3.11.2
    python -m benchmarks run                     # 1M rows, best of 3 (all workloads)
    python -m benchmarks run --quick             # 100k rows, 1 repeat, small workloads: ~1.5 min, 2 cores
    python -m benchmarks run --size 10m          # no-op workload on 10M rows + the memory-growth check
    python -m benchmarks run --only 'B0*,distmap-local*' --repeat 5
    python -m benchmarks run --malloc-env trim   # MALLOC_TRIM_THRESHOLD_ for every contender
    python -m benchmarks run --malloc-env distmap  # every contender gets distmap's own allocator tuning
    python -m benchmarks report benchmarks/results/<date>.json   # re-render a report, runs nothing

What it does:

1. Generates the inputs once (``benchmarks/data/``, git-ignored): JSONL and CSV rows like
   ``{"id":0,"name":"item-0","value":0.0,"tag":"a"}``, and reads them once so every contender
   starts with a warm page cache.
2. Runs the workloads of ``benchmarks.workloads`` in turn (no-op, 1 ms CPU items, 10 ms sleeping
   items, time to first result, and with ``--size 10m`` the memory reference). Each contender runs
   ``--repeat`` times, each time in a fresh process from the repository root, under the same
   environment (``--malloc-env``; ``RAY_ADDRESS`` removed so every Ray contender starts its own
   local cluster of ``cores`` CPUs; Ray usage stats off). Repeats are interleaved round-robin over
   a workload's contenders, so drift hits everyone alike; the best time is kept.
3. Measures each run with ``benchmarks.measure``: process wall time, peak RSS of the whole process
   tree, and the contender's own report (work seconds, ``ray.init`` seconds). Verifies every run
   (``benchmarks.contenders``); a contender that fails is reported as FAILED and not run again.
4. Computes the targets of the issue (``benchmarks.targets``) and writes
   ``<out-dir>/<date>[-quick][-10m][-trim].json`` (everything, including each run), ``.md`` (the
   report, also printed) and ``.png`` (items/s and peak RSS per contender).

Exit status: 0 unless a distmap contender failed (or the harness itself broke); a peer that fails
is reported, not fatal. Timings on shared VMs vary a lot: compare ratios from one run, never
absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.contenders import Contender
from benchmarks.datagen import ensure
from benchmarks.measure import (
    REPO,
    SAMPLE_INTERVAL,
    SCRATCH_ROOT,
    BenchmarkError,
    Run,
    become_subreaper,
    children_of_self,
    contender_env,
    environment,
    package_versions,
    reap_adopted,
    run_process,
    warm_page_cache,
)
from benchmarks.report import chart, markdown
from benchmarks.targets import compute_targets
from benchmarks.workloads import (
    CPU_ITEMS,
    QUICK_CPU_ITEMS,
    QUICK_ROWS,
    QUICK_SLEEP_ITEMS,
    SIZES,
    SLEEP_CONCURRENCY,
    SLEEP_ITEMS,
    SLEEP_SAMPLE,
    Workload,
    lineup,
    select,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = ("distmap", "orjson", "ray", "pandas", "pyarrow", "numpy", "joblib", "dask", "matplotlib")


@dataclass
class Outcome:
    """All runs of one contender, and its error if it failed."""

    contender: Contender
    runs: list[Run] = field(default_factory=list)
    error: str | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks run",
        description="distmap against every peer in one run; writes JSON, Markdown and a chart.",
    )
    p.add_argument(
        "--size", choices=sorted(SIZES), default="1m", help="rows of the no-op workload (default 1m)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_ROWS:,} rows, {QUICK_CPU_ITEMS:,} CPU items, {QUICK_SLEEP_ITEMS:,} sleep items, "
        "1 repeat",
    )
    p.add_argument(
        "--repeat", type=int, help="fresh-process runs per contender, best kept (default 3; quick 1)"
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="NAMES",
        help="comma-separated contender names or workload/name, fnmatch patterns (e.g. 'B0*,distmap-local*')",
    )
    p.add_argument(
        "--malloc-env",
        choices=("default", "trim", "distmap"),
        default="default",
        help="default: environment unchanged; trim: MALLOC_TRIM_THRESHOLD_ set for every contender; "
        "distmap: every contender gets the allocator tuning distmap applies to itself",
    )
    p.add_argument(
        "--out-dir", type=Path, default=RESULTS_DIR, help="where reports go (default benchmarks/results)"
    )
    p.add_argument(
        "--rows", type=int, help="override the no-op row count (development; no targets at 1M then)"
    )
    p.add_argument(
        "--timeout", type=float, help="seconds per run before it is killed (default 3600; quick 300)"
    )
    args = p.parse_args(argv)
    if args.quick and args.size != "1m":
        p.error("--quick runs 100k rows; it cannot be combined with --size")
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.rows = args.rows or (QUICK_ROWS if args.quick else SIZES[args.size])
    args.timeout = args.timeout or (300.0 if args.quick else 3600.0)
    args.only = [p for arg in args.only or [] for p in arg.split(",") if p.strip()]
    if args.rows < 1 or args.repeat < 1:
        p.error("--rows and --repeat must be positive")
    return args


def bench_env(mode: str) -> dict[str, str]:
    env = contender_env(mode)
    env.pop("RAY_ADDRESS", None)  # never join someone else's cluster
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def measure(c: Contender, env: dict[str, str], timeout: float) -> Run:
    """One run of ``c`` in a fresh scratch directory (deleted afterwards); raises BenchmarkError."""
    scratch = Path(tempfile.mkdtemp(prefix=f"distmap-bench-{c.workload}-{c.name}-", dir=SCRATCH_ROOT))
    known = children_of_self()
    try:
        run = run_process(c.command(scratch), env, scratch, timeout)
        adopted = reap_adopted(known)
        left = f" (ended what it left behind: {', '.join(adopted)})" if adopted else ""
        if run.timed_out:
            raise BenchmarkError(f"timed out after {timeout:.0f} s{left}\n{run.stderr[-3000:]}")
        if run.exit_code != 0:
            raise BenchmarkError(
                f"exit code {run.exit_code}{left}\n--- stderr (tail) ---\n{run.stderr[-3000:]}"
            )
        run.info = c.check(run, scratch)
        if adopted:
            run.info["leftover_processes_ended"] = adopted
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.sync()  # no write-back of this run's output may spill into the next one


def run_workload(w: Workload, args: argparse.Namespace, env: dict[str, str]) -> list[Outcome]:
    for path in w.inputs:
        warm_page_cache(ensure(path))
    outcomes = [Outcome(c) for c in w.contenders]
    log(f"\n{w.name}: {w.title} ({len(outcomes)} contenders, {args.repeat} repeat(s))")
    for rep in range(1, args.repeat + 1):
        for o in outcomes:
            if o.error is not None:
                continue
            try:
                run = measure(o.contender, env, args.timeout)
            except BenchmarkError as exc:
                o.error = f"repeat {rep}: {exc}"
                log(f"  [{rep}/{args.repeat}] {o.contender.name:<28} FAILED: {str(exc).splitlines()[0]}")
                continue
            o.runs.append(run)
            init = run.info.get("init_seconds") or 0.0
            ray_init = f" {init:6.2f} s ray.init" if o.contender.ray else ""
            log(
                f"  [{rep}/{args.repeat}] {o.contender.name:<28} {run.wall_s:7.2f} s wall "
                f"{run.info['seconds']:8.3f} s work{ray_init} {run.peak_tree_rss_mb:7.0f} MB"
            )
            if run.info.get("leftover_processes_ended"):
                log(
                    f"        then ended what it left behind: {', '.join(run.info['leftover_processes_ended'])}"
                )
    return outcomes


def summarise(o: Outcome) -> dict[str, Any]:
    """What the report shows of one contender: the best (smallest) wall and work time over its
    runs, the largest peak RSS, and the facts its check reported for the fastest run."""
    c = o.contender
    out: dict[str, Any] = {
        "key": c.key,
        "workload": c.workload,
        "name": c.name,
        "label": c.label,
        "items": c.items,
        "ray": c.ray,
        "distmap": c.distmap,
        "status": "ok" if o.error is None and o.runs else "failed",
    }
    if o.runs:
        by_work = min(o.runs, key=lambda r: float(r.info["seconds"]))
        out["best_wall_s"] = round(min(r.wall_s for r in o.runs), 4)
        out["best_seconds"] = round(float(by_work.info["seconds"]), 4)
        out["init_seconds"] = round(float(by_work.info.get("init_seconds") or 0.0), 4)
        headline = out["best_seconds"] if c.ray else out["best_wall_s"]
        out["headline"] = "work" if c.ray else "wall"
        out["items_per_s"] = round(c.items / headline, 1) if headline > 0 else None
        out["best_cpu_s"] = round(min(r.cpu_s for r in o.runs), 4)
        out["peak_tree_rss_mb"] = round(max(r.peak_tree_rss_mb for r in o.runs), 1)
        out["max_process_hwm_mb"] = round(max(r.max_process_hwm_mb for r in o.runs), 1)
        skip = {"items", "seconds", "init_seconds"}
        out.update({k: v for k, v in by_work.info.items() if k not in skip and k not in out})
    if o.error is not None:
        out["error"] = o.error
    out.update(c.describe())
    out["runs"] = [r.to_json() for r in o.runs]
    return out


def output_stem(args: argparse.Namespace, started: dt.datetime) -> str:
    stem = str(started.astimezone().date())
    if args.quick:
        stem += "-quick"
    if args.size == "10m":
        stem += "-10m"
    if args.malloc_env != "default":
        stem += f"-{args.malloc_env}"
    return stem


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def compile_sources() -> None:
    """Write the bytecode of distmap, the jobs and the peers once, before any contender runs, so
    no contender compiles source at start-up (with ``PYTHONDONTWRITEBYTECODE`` set, as on CI
    machines, every run would; a user's install has its bytecode cached)."""
    import compileall

    for name in ("distmap", "jobs", "benchmarks"):
        compileall.compile_dir(str(REPO / name), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = os.cpu_count() or 1
    big = args.size == "10m" and args.rows == SIZES["10m"]
    env = bench_env(args.malloc_env)
    become_subreaper()  # adopt (and end) what a crashed contender leaves behind
    compile_sources()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    workloads = select(lineup(args.rows, args.quick, big, cores), args.only)
    if not workloads:
        log(f"benchmarks: no contender matches --only {','.join(args.only)}")
        return 2
    log(
        f"benchmarks: {args.rows:,} rows, {args.repeat} repeat(s), {cores} workers, "
        f"malloc env {args.malloc_env}, timeout {args.timeout:.0f} s per run"
    )
    outcomes: list[Outcome] = []
    for w in workloads:
        outcomes += run_workload(w, args, env)

    summaries = [summarise(o) for o in outcomes]
    failed_distmap = [s["key"] for s in summaries if s["distmap"] and s["status"] != "ok"]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stem(args, started)
    doc: dict[str, Any] = {
        "benchmark": "distmap-vs-peers",
        "date": str(started.astimezone().date()),
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - t0, 1),
        "config": {
            "size": args.size,
            "rows": args.rows,
            "quick": args.quick,
            "repeat": args.repeat,
            "only": args.only,
            "malloc_env": args.malloc_env,
            "cores": cores,
            "big": big,
            "timeout_s": args.timeout,
            "cpu_items": QUICK_CPU_ITEMS if args.quick else CPU_ITEMS,
            "sleep_items": QUICK_SLEEP_ITEMS if args.quick else SLEEP_ITEMS,
            "sleep_sample": SLEEP_SAMPLE,
            "sleep_max_concurrency": SLEEP_CONCURRENCY,
            "sample_interval_s": SAMPLE_INTERVAL,
            "scratch_root": SCRATCH_ROOT,
            "argv": sys.argv,
        },
        "environment": {
            **environment(env, args.malloc_env),
            "packages": package_versions(PACKAGES),
            "platform_machine": platform.machine(),
            "loadavg_1min_start": round(load_start, 2),
            "loadavg_1min_end": round(os.getloadavg()[0], 2),
        },
        "workloads": [
            {"name": w.name, "title": w.title, "items": w.items, "inputs": [_shown(p) for p in w.inputs]}
            for w in workloads
        ],
        "contenders": summaries,
        "failed_distmap_contenders": failed_distmap,
    }
    print(write_report(doc, args.out_dir / f"{stem}.json"))
    log(f"benchmarks: {doc['duration_s']} s; wrote {', '.join(str(v) for v in doc['files'].values() if v)}")
    if failed_distmap:
        log(f"benchmarks: FAILED distmap contenders: {', '.join(failed_distmap)}")
        return 1
    return 0


def write_report(doc: dict[str, Any], json_path: Path) -> str:
    """Compute the targets into ``doc``, then write ``json_path`` and the ``.md`` and ``.png`` beside
    it; returns the Markdown."""
    cfg = doc["config"]
    big = cfg.get("big", cfg["size"] == "10m" and cfg["rows"] == SIZES["10m"])
    targets = compute_targets({s["key"]: s for s in doc["contenders"]}, cfg["cores"], big)
    doc["targets"] = [t.to_json() for t in targets]
    paths = {ext: json_path.with_suffix(f".{ext}") for ext in ("json", "md", "png")}
    doc["files"] = {ext: _shown(p) for ext, p in paths.items()}
    try:
        chart(doc, paths["png"])
    except Exception as exc:  # a missing matplotlib must not lose the measurements
        log(f"benchmarks: no chart: {type(exc).__name__}: {exc}")
        doc["files"]["png"] = None
    text = markdown(doc, targets)
    paths["md"].write_text(text)
    paths["json"].write_text(json.dumps(doc, indent=2) + "\n")
    return text


def rerender(argv: list[str] | None = None) -> int:
    """``python -m benchmarks report RESULTS.json``: recompute targets, Markdown and chart from a
    results file (no contender is run)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks report", description=rerender.__doc__)
    p.add_argument("results", type=Path, help="a results JSON written by `python -m benchmarks run`")
    args = p.parse_args(argv)
    doc = json.loads(args.results.read_text())
    print(write_report(doc, args.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
