"""What the failure path costs inside a worker: CPU per item of the batch executor, in one process.

Runs ``BatchProcessor.process`` (the code every worker runs, allocator tuned as in a worker) over
the same chunks of JSONL rows with AWS-shaped records, for ``jobs.examples:noop`` and for
``jobs.examples:flaky`` with the benchmark harness's Retry (1% of items fail once and are retried,
5% always fail) and for ``jobs.examples:flaky_clean`` (flaky's work, nothing fails), best of
``--repeat``, and reports CPU microseconds per item, their ratios, and the extra CPU per failing
item (flaky against flaky_clean). CPU time, not wall time: the ratio is steady on a shared machine.

    python -m benchmarks.worker_cpu [--rows 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time

import jobs.examples as examples
from benchmarks.core import FLAKY_RETRY
from distmap.config import parse_job
from distmap.contract import Chunk, RunSpec
from distmap.coordinator import map_run_identity
from distmap.memory import tune_allocator
from distmap.processor import BatchProcessor
from distmap.readers.base import DecodeSpec, RawBlock

CHUNK_ROWS = 8000


def processor(function: str, retry: list[dict] | None) -> BatchProcessor:
    data: dict = {
        "ItemReader": {"Source": "/bench.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": function},
        "ResultWriter": {"Destination": "/unused"},
    }
    if retry:
        data["ItemProcessor"]["Retry"] = retry
    job = parse_job(data)
    _, ident = map_run_identity(job, "bench-run")
    spec = RunSpec(job=job, decode=DecodeSpec("JSONL", "/bench.jsonl"), identity=ident, lanes=1, record_sep=b",\n")
    return BatchProcessor(spec)


def cpu_per_item(bp: BatchProcessor, chunks: list[Chunk], rows: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        examples._seen_once.clear()  # flaky's "fails once" items fail again on every repeat
        examples._seen_clean.clear()
        c0 = time.process_time()
        for chunk in chunks:
            bp.process(chunk)
        best = min(best, time.process_time() - c0)
    return best / rows * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    tune_allocator()
    rows = args.rows - args.rows % CHUNK_ROWS
    chunks = []
    for first in range(0, rows, CHUNK_ROWS):
        lines = "".join(
            json.dumps({"id": i, "name": f"item-{i}", "value": i * 0.5}) + "\n" for i in range(first, first + CHUNK_ROWS)
        )
        chunks.append(Chunk(first // CHUNK_ROWS, first, RawBlock(lines.encode(), CHUNK_ROWS, first + 1)))
    clean = cpu_per_item(processor("jobs.examples:noop", None), chunks, rows, args.repeat)
    flaky = cpu_per_item(processor("jobs.examples:flaky", FLAKY_RETRY), chunks, rows, args.repeat)
    same_work = cpu_per_item(processor("jobs.examples:flaky_clean", FLAKY_RETRY), chunks, rows, args.repeat)
    failing = sum(1 for i in range(rows) if i % 20 == 1 or i % 100 == 0)
    print(
        json.dumps(
            {
                "rows": rows,
                "clean_cpu_us_per_item": round(clean, 2),
                "flaky_cpu_us_per_item": round(flaky, 2),
                "flaky_clean_cpu_us_per_item": round(same_work, 2),
                "flaky_over_clean": round(flaky / clean, 3),
                "flaky_over_flaky_clean": round(flaky / same_work, 3),
                "extra_cpu_us_per_failing_item": round((flaky - same_work) * rows / failing, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
