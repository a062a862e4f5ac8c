"""A Distributed Map whose ItemSelector is JSONata against the same map with a JSONPath one.

Both contenders are ``distmap run JOB.yaml`` over the same local JSONL file (rows
``{"id", "name", "value", "tag"}``), the no-op item function and a local ResultWriter; only the
ItemSelector differs, and both build the same child input per item:

``jsonpath``
    ``{"id.$": "$$.Map.Item.Value.id", "name.$": "$$.Map.Item.Value.name", "run.$": "$.run"}``
``jsonata``
    ``QueryLanguage: JSONata`` and ``{"id": "{% $states.context.Map.Item.Value.id %}",
    "name": "{% $states.context.Map.Item.Value.name %}", "run": "{% $states.input.run %}"}``
``jsonata-library``
    the same selector as one expression the fast path does not take (a ``$lookup`` call), so
    that every item goes through the JSONata library: what a selector beyond the simple forms costs.

Each contender runs ``--repeat`` times in a fresh process, interleaved; the best wall time is kept
and each JSONata contender's ratio to ``jsonpath`` is reported (issue 18's target: within 1.5x).

    python -m benchmarks.jsonata_selector [--rows 1000000] [--repeat 3] [--backend local|ray]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks.datagen import jsonl_path
from benchmarks.measure import BenchmarkError, run_process

RESULTS = Path(__file__).resolve().parent / "results"

SELECTORS = {
    "jsonpath": {"id.$": "$$.Map.Item.Value.id", "name.$": "$$.Map.Item.Value.name", "run.$": "$.run"},
    "jsonata": {
        "id": "{% $states.context.Map.Item.Value.id %}",
        "name": "{% $states.context.Map.Item.Value.name %}",
        "run": "{% $states.input.run %}",
    },
    "jsonata-library": "{% {'id': $lookup($states.context.Map.Item.Value, 'id'), "
    "'name': $lookup($states.context.Map.Item.Value, 'name'), 'run': $states.input.run} %}",
}


def _job(src: Path, out: Path, name: str) -> dict:
    job = {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": str(out)},
        "Input": {"run": "bench"},
        "ItemSelector": SELECTORS[name],
    }
    if name != "jsonpath":
        job["QueryLanguage"] = "JSONata"
    return job


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.jsonata_selector", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--only", default=",".join(SELECTORS), help="comma-separated contenders")
    args = p.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    src = jsonl_path(args.rows)
    scratch = Path(tempfile.mkdtemp(prefix="distmap-jsonata-bench-"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argvs = {}
    for name in names:
        path = scratch / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_job(src, scratch / f"out-{name}", name)))
        argvs[name] = [sys.executable, "-m", "distmap", "run", str(path), "--no-progress", "--backend", args.backend]
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, cmd in argvs.items():
            run = run_process(cmd, env, scratch, timeout=3600)
            if run.exit_code != 0:
                raise BenchmarkError(f"{name}: exit {run.exit_code}: {run.stderr[-2000:]}")
            summary = json.loads(run.stdout)
            if summary["itemCounts"]["succeeded"] != args.rows:
                raise BenchmarkError(f"{name}: expected {args.rows} succeeded items, got {summary}")
            best[name] = min(best.get(name, float("inf")), run.wall_s)
            print(f"{name}: {run.wall_s:.2f}s", file=sys.stderr)
    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "backend": args.backend,
        "best_wall_s": best,
        "ratio_to_jsonpath": {n: best[n] / best["jsonpath"] for n in best if "jsonpath" in best},
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"jsonata-selector-{dt.date.today().isoformat()}-{args.rows}-{args.backend}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
