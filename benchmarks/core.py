"""Core benchmark: the distmap engine against two single-process floors, in one run.

Contenders (all read the same cached JSONL input, ``{"id": i, ...}`` for i in 0..rows-1):

``B0-min``
    ``python -m benchmarks.floor``: read line -> orjson.loads -> no-op -> small record -> write.
``B0-aws``
    ``python -m benchmarks.floor_aws``: the same loop writing the full AWS-shaped result record
    the engine writes, as one JSON array: what you would write yourself.
``distmap-local``
    ``python -m distmap run job.yaml --no-progress`` (the ``distmap`` CLI) with
    ``jobs.examples:noop`` and a local ResultWriter.
``distmap-local-failures``
    The same with ``jobs.examples:flaky``, a Retry on ``TransientError`` and
    ``ToleratedFailurePercentage: 10``. Every run is verified: status SUCCEEDED, ``failed`` and
    ``retries`` counts, and the ids in the FAILED_*.json / SUCCEEDED_*.json files.

How it is measured:

* Every run is a fresh subprocess (interpreter start-up and imports included), started with the
  same working directory (the repository root) and the same environment. ``--malloc-env trim``
  sets ``MALLOC_TRIM_THRESHOLD_`` to 256 MiB for every contender; note that this also switches
  off distmap's own allocator tuning (which honours explicit ``MALLOC_*_`` variables).
  ``--malloc-env default`` leaves the environment unchanged for all.
* Wall time is ``time.perf_counter()`` around Popen .. wait; the best of ``--repeat`` runs is
  reported. Repeats are interleaved (round-robin over contenders) so drift hits everyone alike.
* Peak tree RSS: a thread sums VmRSS over the subprocess and all its descendants (found by
  scanning /proc for PPid) every 0.05 s; the maximum over the run, and over all repeats, is
  reported. The sum counts pages shared by forked workers once per process, and a spike shorter
  than the sampling interval can be missed. As a cross-check the JSON also records each
  process's own high-water mark (VmHWM, seen by the same sampler): the largest one (a lower
  bound of the tree peak) and their sum (an upper bound, as if all peaks coincided).
  (wait4's ru_maxrss is not used: with vfork+exec it includes the benchmark driver's own size.)
* The input is read once before measuring, so every contender starts with a warm page cache.
  Outputs go to a fresh directory under /tmp per run, deleted (and ``sync``'ed) after it.
* Every run is checked (record counts, record shape); any error or failed check exits non-zero.
  The id-by-id check of the failures run parses ~600 MB of JSON, so it runs in a forked helper
  process: the driver stays small and the same for every contender.

Usage::

    cd /work/main && python -m benchmarks.core [--rows 1000000] [--repeat 3] [--quick]
        [--malloc-env {default,trim}]

Prints a Markdown table and writes ``benchmarks/results/core-<YYYY-MM-DD>.json``
(``core-<YYYY-MM-DD>-quick.json`` with ``--quick``, so a smoke test never overwrites a full run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from benchmarks.datagen import jsonl_path
from benchmarks.measure import (
    REPO,
    SAMPLE_INTERVAL,
    SCRATCH_ROOT,
    TRIM_THRESHOLD,
    BenchmarkError,
    Run,
    TreeRssSampler,
    contender_env,
    environment,
    process_tree,
    require,
    run_process,
    warm_page_cache,
)

__all__ = [
    "REPO",
    "BenchmarkError",
    "Run",
    "TreeRssSampler",
    "process_tree",
    "run_process",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_ROWS, QUICK_ROWS = 1_000_000, 100_000

RECORD_KEYS = (
    "ExecutionArn",
    "Input",
    "InputDetails",
    "Name",
    "Output",
    "OutputDetails",
    "RedriveCount",
    "RedriveStatus",
    "RedriveStatusReason",
    "StartDate",
    "StateMachineArn",
    "Status",
    "StopDate",
)
FLAKY_RETRY = [
    {"ErrorEquals": ["TransientError"], "IntervalSeconds": 0.001, "MaxAttempts": 2, "BackoffRate": 1.0}
]


# --------------------------------------------------------------------------- checks


def first_record(path: Path) -> dict[str, Any]:
    """The first record of a JSON-array result file, without reading the whole file."""
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024).decode("utf-8", errors="ignore")
    require(head.startswith("[{"), f"{path.name} is not a JSON array of objects")
    try:
        record, _ = json.JSONDecoder().raw_decode(head, 1)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{path.name}: the first record is not valid JSON ({exc})") from exc
    return record


def check_record_shape(path: Path) -> None:
    keys = tuple(first_record(path))
    require(keys == RECORD_KEYS, f"{path.name}: record keys {keys} differ from the engine's {RECORD_KEYS}")


def check_count_printed(run: Run, rows: int) -> None:
    require(
        run.stdout.strip() == str(rows), f"expected {rows} records, the floor printed {run.stdout.strip()!r}"
    )


def engine_summary(run: Run) -> dict[str, Any]:
    try:
        summary = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"no JSON summary on stdout ({exc})") from exc
    require(
        summary.get("status") == "SUCCEEDED",
        f"map run status {summary.get('status')}: {summary.get('error')}",
    )
    return summary


def run_dir_of(summary: dict[str, Any]) -> Path:
    require("manifest" in summary, "the summary names no manifest")
    return Path(summary["manifest"]).parent


def engine_info(summary: dict[str, Any]) -> dict[str, Any]:
    return {"engine_seconds": summary["stats"]["seconds"], "item_counts": summary["itemCounts"]}


def result_ids(run_dir: Path, status: str) -> tuple[list[int], set[str]]:
    """Ids (from each record's ``Input``) and the distinct ``Error`` names in ``<status>_*.json``."""
    ids: list[int] = []
    errors: set[str] = set()
    for path in sorted(run_dir.glob(f"{status}_*.json")):
        records = orjson.loads(path.read_bytes())
        for rec in records:
            require(rec.get("Status") == status, f"{path.name}: a record with Status {rec.get('Status')!r}")
            ids.append(orjson.loads(rec["Input"])["id"])
            if "Error" in rec:
                errors.add(rec["Error"])
        del records
    return ids, errors


# --------------------------------------------------------------------------- contenders

Check = Callable[[Run, Path], dict[str, Any]]
"""Verifies a finished run given its scratch directory (raises BenchmarkError); returns facts to record."""


@dataclass(frozen=True)
class Contender:
    name: str
    command: Callable[[Path], list[str]]
    """Scratch directory -> argv (may write a job file there)."""
    check: Check
    describe: dict[str, Any]


def job_mapping(
    src: Path,
    dest: str,
    function: str,
    retry: list[dict[str, Any]] | None = None,
    tolerated_failure_percentage: float | None = None,
) -> dict[str, Any]:
    processor: dict[str, Any] = {"Function": function}
    if retry:
        processor["Retry"] = retry
    job: dict[str, Any] = {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": processor,
    }
    if tolerated_failure_percentage is not None:
        job["ToleratedFailurePercentage"] = tolerated_failure_percentage
    job["ResultWriter"] = {"Destination": dest}
    return job


def floor_contender(name: str, module: str, src: Path, rows: int, aws_shape: bool) -> Contender:
    def command(scratch: Path) -> list[str]:
        return [sys.executable, "-m", module, str(src), str(scratch / "out.json")]

    def check(run: Run, scratch: Path) -> dict[str, Any]:
        check_count_printed(run, rows)
        if aws_shape:
            check_record_shape(scratch / "out.json")
        return {"output_bytes": (scratch / "out.json").stat().st_size}

    return Contender(name, command, check, {"argv": command(Path("$SCRATCH"))})


def engine_argv(job_path: str) -> list[str]:
    """``distmap run JOB --no-progress`` (the CLI entry point, run as a module of this interpreter)."""
    return [sys.executable, "-m", "distmap", "run", job_path, "--no-progress"]


def engine_contender(name: str, job: Callable[[str], dict[str, Any]], check: Check) -> Contender:
    """``job`` maps a ResultWriter destination to the job mapping."""

    def command(scratch: Path) -> list[str]:
        path = scratch / "job.yaml"
        path.write_text(yaml.safe_dump(job(str(scratch / "out")), sort_keys=False))
        return engine_argv(str(path))

    return Contender(
        name, command, check, {"argv": engine_argv("$SCRATCH/job.yaml"), "job": job("$SCRATCH/out")}
    )


def check_engine_noop(rows: int) -> Check:
    def check(run: Run, scratch: Path) -> dict[str, Any]:
        summary = engine_summary(run)
        counts = summary["itemCounts"]
        require(counts["succeeded"] == rows and counts["failed"] == 0, f"unexpected item counts {counts}")
        files = sorted(run_dir_of(summary).glob("SUCCEEDED_*.json"))
        require(bool(files), "no SUCCEEDED_*.json written")
        check_record_shape(files[0])
        return engine_info(summary)

    return check


def check_engine_flaky(rows: int) -> Check:
    """ids with id % 20 == 1 fail for good; ids divisible by 100 fail once and succeed on retry."""
    expected_failed = sum(1 for i in range(rows) if i % 20 == 1)
    expected_retries = sum(1 for i in range(rows) if i % 100 == 0)

    def check(run: Run, scratch: Path) -> dict[str, Any]:
        summary = engine_summary(run)
        counts = summary["itemCounts"]
        require(
            counts["failed"] == expected_failed, f"itemCounts.failed {counts['failed']} != {expected_failed}"
        )
        require(counts["succeeded"] == rows - expected_failed, f"unexpected item counts {counts}")
        require(
            summary["stats"]["retries"] == expected_retries,
            f"stats.retries {summary['stats']['retries']} != {expected_retries}",
        )
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork")) as helper:
            problem = helper.submit(flaky_ids_problem, run_dir_of(summary), rows).result()
        require(problem is None, str(problem))
        return {**engine_info(summary), "retries": summary["stats"]["retries"], "verified_ids": True}

    return check


def flaky_ids_problem(run_dir: Path, rows: int) -> str | None:
    """What is wrong with the ids in the result files of a ``flaky`` run, or None.

    Runs in a helper process: it parses every result file.
    """
    try:
        failed, errors = result_ids(run_dir, "FAILED")
        require(
            sorted(failed) == [i for i in range(rows) if i % 20 == 1],
            "the FAILED records are not exactly the ids with id % 20 == 1 (once each)",
        )
        require(errors == {"PermanentError"}, f"unexpected FAILED error names {sorted(errors)}")
        succeeded, _ = result_ids(run_dir, "SUCCEEDED")
        require(
            sorted(succeeded) == [i for i in range(rows) if i % 20 != 1],
            "the SUCCEEDED records are not exactly all the other ids (once each)",
        )
    except BenchmarkError as exc:
        return str(exc)
    return None


def contenders(src: Path, rows: int) -> list[Contender]:
    return [
        floor_contender("B0-min", "benchmarks.floor", src, rows, aws_shape=False),
        floor_contender("B0-aws", "benchmarks.floor_aws", src, rows, aws_shape=True),
        engine_contender(
            "distmap-local",
            lambda dest: job_mapping(src, dest, "jobs.examples:noop"),
            check_engine_noop(rows),
        ),
        engine_contender(
            "distmap-local-failures",
            lambda dest: job_mapping(
                src, dest, "jobs.examples:flaky", FLAKY_RETRY, tolerated_failure_percentage=10
            ),
            check_engine_flaky(rows),
        ),
    ]


# --------------------------------------------------------------------------- driver


def measure(c: Contender, env: dict[str, str]) -> Run:
    scratch = Path(tempfile.mkdtemp(prefix=f"distmap-core-{c.name}-", dir=SCRATCH_ROOT))
    try:
        run = run_process(c.command(scratch), env, scratch)
        if run.exit_code != 0:
            raise BenchmarkError(f"exit code {run.exit_code}\n--- stderr (tail) ---\n{run.stderr[-3000:]}")
        run.info = c.check(run, scratch)
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.sync()  # no write-back of this run's output may spill into the next one


def summarise(runs: dict[str, list[Run]], rows: int) -> dict[str, dict[str, Any]]:
    best = {name: min(r.wall_s for r in rs) for name, rs in runs.items()}
    return {
        name: {
            "best_wall_s": round(best[name], 4),
            "peak_tree_rss_mb": round(max(r.peak_tree_rss_mb for r in rs), 1),
            "max_process_hwm_mb": round(max(r.max_process_hwm_mb for r in rs), 1),
            "ratio_to_B0-aws": round(best[name] / best["B0-aws"], 3),
            "ratio_to_B0-min": round(best[name] / best["B0-min"], 3),
            "items_per_s": round(rows / best[name], 1),
        }
        for name, rs in runs.items()
    }


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| contender | best wall s | peak tree RSS MB | ratio to B0-aws | ratio to B0-min | items/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['best_wall_s']:.2f} | {s['peak_tree_rss_mb']:.0f} | {s['ratio_to_B0-aws']:.2f}x "
            f"| {s['ratio_to_B0-min']:.2f}x | {s['items_per_s']:,.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.core", description=__doc__.splitlines()[0])
    p.add_argument(
        "--rows", type=int, help=f"input rows (default {DEFAULT_ROWS:,}; {QUICK_ROWS:,} with --quick)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        help="fresh-process runs per contender, the best is reported (default 3; 1 with --quick)",
    )
    p.add_argument("--quick", action="store_true", help=f"CI smoke test: {QUICK_ROWS:,} rows, 1 repeat")
    p.add_argument(
        "--malloc-env",
        choices=("default", "trim"),
        default="default",
        help=f"default: environment unchanged; trim: MALLOC_TRIM_THRESHOLD_={TRIM_THRESHOLD} for all",
    )
    p.add_argument(
        "--out", type=Path, help="results JSON path (default benchmarks/results/core-<date>[-quick].json)"
    )
    args = p.parse_args(argv)
    args.rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.rows < 1 or args.repeat < 1:
        p.error("--rows and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src = jsonl_path(args.rows)  # generated once, then cached
    warm_page_cache(src)
    env = contender_env(args.malloc_env)
    lineup = contenders(src, args.rows)
    runs: dict[str, list[Run]] = {c.name: [] for c in lineup}
    started = dt.datetime.now(dt.UTC)
    print(f"core: {args.rows:,} rows, {args.repeat} repeat(s), malloc env {args.malloc_env}", file=sys.stderr)
    for rep in range(1, args.repeat + 1):
        for c in lineup:
            try:
                run = measure(c, env)
            except BenchmarkError as exc:
                print(f"core: FAILED: {c.name} (repeat {rep}): {exc}", file=sys.stderr)
                return 1
            runs[c.name].append(run)
            print(
                f"  [{rep}/{args.repeat}] {c.name:<24} {run.wall_s:7.2f} s  {run.peak_tree_rss_mb:7.0f} MB tree"
                f"  (largest process {run.max_process_hwm_mb:.0f} MB)",
                file=sys.stderr,
            )

    summary = summarise(runs, args.rows)
    print(
        f"\n{args.rows:,} rows, best of {args.repeat}, malloc env `{args.malloc_env}`, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
    )
    print(markdown_table(summary))
    out = args.out or RESULTS_DIR / f"core-{started.astimezone().date()}{'-quick' if args.quick else ''}.json"
    write_results(out, args, src, env, started, lineup, runs, summary)
    print(f"\nresults: {out}", file=sys.stderr)
    return 0


def write_results(
    out: Path,
    args: argparse.Namespace,
    src: Path,
    env: dict[str, str],
    started: dt.datetime,
    lineup: list[Contender],
    runs: dict[str, list[Run]],
    summary: dict[str, dict[str, Any]],
) -> None:
    doc = {
        "benchmark": "core",
        "started": started.isoformat(timespec="seconds"),
        "config": {
            "rows": args.rows,
            "repeat": args.repeat,
            "quick": args.quick,
            "malloc_env": args.malloc_env,
            "input": str(src),
            "sample_interval_s": SAMPLE_INTERVAL,
            "scratch_root": SCRATCH_ROOT,
        },
        "environment": environment(env, args.malloc_env),
        "contenders": {
            c.name: {**c.describe, **summary[c.name], "runs": [r.to_json() for r in runs[c.name]]}
            for c in lineup
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
