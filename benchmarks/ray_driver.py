"""The Ray driver's ceiling: what one coordinator sustains when it reads all input and writes all results.

On the Ray backend the driver (the coordinator) reads every input byte, hands chunks to the actors
and writes every result record. Its CPU per item therefore caps a run's items/s however many
cores the cluster has. This script measures that cost on a multi-node cluster made on this machine
(``ray.cluster_utils.Cluster``: a head and ``--nodes - 1`` worker nodes, 1 CPU each), for COMPACT
JSONL results and for AWS-shaped records, and derives:

* driver CPU per item (``stats.coordinatorCpuSeconds`` / items) and bytes moved per item (input
  line + result record);
* the ceiling: items/s one driver core sustains = 1 / (driver CPU per item);
* where the driver becomes the bottleneck: a cluster of C cores running items of c seconds each
  does C / c items/s, so the driver caps it once C >= ceiling x c.

The item function is the no-op: every microsecond of the driver is distmap's own. The actors
share this machine's cores with the driver, so the seconds are not a cluster's; the CPU per item
is what carries over.

    python -m benchmarks.ray_driver [--rows 200000] [--nodes 3] [--repeat 2]

Writes ``benchmarks/results/ray-driver-<date>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.datagen import jsonl_path

RESULTS = Path(__file__).parent / "results"
ITEM_COSTS_S = (0.001, 0.01, 0.1)
WRITERS = {
    "COMPACT": {"WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"}},
    "AWS-shaped": {},
}


def one_run(src: Path, writer: dict[str, Any], out: Path) -> dict[str, Any]:
    import distmap

    job = {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": str(out), **writer},
    }
    res = distmap.run(job, backend="ray", handle_signals=False)
    if res.status != "SUCCEEDED":
        raise SystemExit(f"run {res.status}: {res.error} {res.cause}")
    run_dir = out / res.run_id
    result_bytes = sum(p.stat().st_size for p in run_dir.iterdir() if p.name != "manifest.json")
    return {
        "seconds": res.stats["seconds"],
        "driver_cpu_s": res.stats["coordinatorCpuSeconds"],
        "result_bytes": result_bytes,
    }


def model(rows: int, input_bytes: int, best: dict[str, Any]) -> dict[str, Any]:
    us = best["driver_cpu_s"] / rows * 1e6
    ceiling = 1e6 / us
    return {
        "driver_cpu_us_per_item": round(us, 3),
        "input_bytes_per_item": round(input_bytes / rows, 1),
        "result_bytes_per_item": round(best["result_bytes"] / rows, 1),
        "ceiling_items_per_s": round(ceiling),
        "run_items_per_s_here": round(rows / best["seconds"]),
        "driver_bound_from_cores": {f"{c * 1000:g} ms items": round(ceiling * c) for c in ITEM_COSTS_S},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--nodes", type=int, default=3, help="Ray nodes (the head counts), 1 CPU each")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    src = jsonl_path(args.rows)
    input_bytes = src.stat().st_size
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "_system_config": {"max_direct_call_object_size": 16 << 20},
        },
    )
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING")
    scratch = Path(tempfile.mkdtemp(prefix="distmap-ray-driver-"))
    report: dict[str, Any] = {
        "benchmark": "ray_driver",
        "date": dt.date.today().isoformat(),
        "rows": args.rows,
        "nodes": args.nodes,
        "repeat": args.repeat,
        "writers": {},
    }
    try:
        one_run(jsonl_path(1000), WRITERS["COMPACT"], scratch / "warm")  # actors' imports, warm caches
        for name, writer in WRITERS.items():
            runs = [one_run(src, writer, scratch / f"{name}-{i}") for i in range(args.repeat)]
            best = min(runs, key=lambda r: r["driver_cpu_s"])
            report["writers"][name] = {"runs": runs, **model(args.rows, input_bytes, best)}
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ray-driver-{report['date']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| records | driver CPU / item | bytes in + out / item | ceiling (items/s) | driver-bound from |")
    print("|---|---:|---:|---:|---|")
    for name, m in report["writers"].items():
        bound = ", ".join(f"{k}: {v:,} cores" for k, v in m["driver_bound_from_cores"].items())
        print(
            f"| {name} | {m['driver_cpu_us_per_item']} µs | {m['input_bytes_per_item']:g} + "
            f"{m['result_bytes_per_item']:g} B | {m['ceiling_items_per_s']:,} | {bound} |"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
