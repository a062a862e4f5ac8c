"""What the run journal costs, and how fast a long run resumes (issue 16's targets).

``overhead``
    the 1M no-op run (``jobs.examples:noop``, local JSONL, local ResultWriter) with its journal
    (the default) against ``--no-journal``, ``--repeat`` times each in fresh processes,
    interleaved; the best wall time, engine seconds and CPU seconds (the whole process tree) of
    each, and their ratios (target: <= 1.05). CPU seconds are the steadiest on a busy machine.
``resume``
    a 10M-item no-op run is SIGKILLed once its journal says 90% of the items are done, then
    ``distmap.resume`` is called in this process and timed from the call to the first new chunk
    given to a worker (target: <= 1 s). The resume then runs to the end and must account for
    every item once.

    python -m benchmarks.journal [--rows 1000000] [--resume-rows 10000000] [--repeat 3]
                                 [--only overhead,resume]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.datagen import jsonl_path
from benchmarks.measure import BenchmarkError, run_process

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def _job(src: Path, out: Path) -> dict:
    return {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": str(out)},
    }


def overhead(rows: int, repeat: int, scratch: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    job = scratch / "overhead.yaml"
    job.write_text(yaml.safe_dump(_job(jsonl_path(rows), scratch / "out-overhead")))
    base = [sys.executable, "-m", "distmap", "run", str(job), "--no-progress"]
    argvs = {"journal": base, "no-journal": [*base, "--no-journal"]}
    best: dict[str, float] = {}
    engine: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(repeat):
        for name, cmd in argvs.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            run = run_process(cmd, env, scratch, timeout=3600)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            cpu[name] = min(cpu.get(name, float("inf")), used)
            shutil.rmtree(scratch / "out-overhead", ignore_errors=True)  # each run writes ~300 MB
            if run.exit_code != 0:
                raise BenchmarkError(f"{name}: exit {run.exit_code}: {run.stderr[-2000:]}")
            summary = json.loads(run.stdout)
            if summary["itemCounts"]["succeeded"] != rows:
                raise BenchmarkError(f"{name}: not every item succeeded")
            best[name] = min(best.get(name, float("inf")), run.wall_s)
            engine[name] = min(engine.get(name, float("inf")), summary["stats"]["seconds"])
            print(
                f"overhead {name}: {run.wall_s:.2f}s (engine {summary['stats']['seconds']:.2f}s, cpu {used:.2f}s)",
                file=sys.stderr,
            )
    return {
        "rows": rows,
        "repeat": repeat,
        "best_wall_s": best,
        "best_engine_s": engine,
        "best_cpu_s": cpu,
        "ratio": best["journal"] / best["no-journal"],
        "engine_ratio": engine["journal"] / engine["no-journal"],
        "cpu_ratio": cpu["journal"] / cpu["no-journal"],
    }


def _done(run_dir: Path) -> int:
    from distmap.journal import last_line

    line = last_line(run_dir) if (run_dir / "journal.jsonl").exists() else None
    c = (line or {}).get("c") or {}
    return c.get("succeeded", 0) + c.get("failed", 0)


def resume_time(rows: int, scratch: Path) -> dict:
    from distmap.runs import resume

    job = scratch / "resume.yaml"
    job.write_text(yaml.safe_dump(_job(jsonl_path(rows), scratch / "out-resume")))
    run_dir = scratch / "out-resume" / "big"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "distmap", "run", str(job), "--no-progress", "--run-id", "big"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = rows * 9 // 10
    while proc.poll() is None and _done(run_dir) < target:
        time.sleep(0.05)
    if proc.poll() is not None:
        raise BenchmarkError("the run ended before it could be killed at 90%")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _done(run_dir)
    journal_lines = (run_dir / "journal.jsonl").read_bytes().count(b"\n")
    os.chdir(ROOT)
    t_call = time.perf_counter()
    res = resume(run_dir, handle_signals=False)
    t_end = time.perf_counter()
    first = t_end - res.stats["seconds"] + res.stats["workersStartSeconds"]
    c = res.item_counts
    if res.status != "SUCCEEDED" or c.succeeded != rows or c.results_written != rows:
        raise BenchmarkError(f"the resumed run did not account for every item once: {res.to_dict()}")
    return {
        "rows": rows,
        "done_at_kill": done,
        "journal_lines": journal_lines,
        "seconds_to_first_new_chunk": round(first - t_call, 3),
        "resume_seconds": round(t_end - t_call, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.journal", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--resume-rows", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default="overhead,resume")
    args = p.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="distmap-journal-bench-"))
    result: dict = {"date": dt.date.today().isoformat()}
    try:
        if "overhead" in args.only:
            result["overhead"] = overhead(args.rows, args.repeat, scratch)
        if "resume" in args.only:
            result["resume"] = resume_time(args.resume_rows, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"journal-{result['date']}-{'-'.join(k for k in ('overhead', 'resume') if k in result)}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
