"""Time to first result of a distmap run, in a fresh process, through the Python API.

The job is the no-op job on INPUT with the default ResultWriter, except that the item function is
``benchmarks.peers.stamp:first_return_stamp``: a no-op that writes ``time.time()`` into a file the
first time it returns in each worker process. This process takes ``t_run = time.time()`` right
before ``distmap.run(...)``; it also passes a ``progress=`` callback, which the coordinator calls
about five times a second, and notes when it first reports a succeeded item. It prints:

``first_result_s``
    earliest stamp - ``t_run``: when the first item's output existed, in a worker (worker start-up,
    reader open and dispatch of the first chunk included; no Ray: local backend).
``first_progress_s``
    first progress callback with ``succeeded > 0`` - ``t_run``: the coordinator had counted a
    result by then. An upper bound, late by up to one progress interval (0.2 s).
``first_result_from_process_start_s``
    earliest stamp - this process's start time (from /proc: interpreter start-up and
    ``import distmap`` included; 10 ms resolution).

    python -m benchmarks.peers.first_result INPUT OUTPUT_DIR
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def process_start_time() -> float:
    """Wall-clock start of this process: boot time (now - uptime) + starttime ticks from /proc/self/stat."""
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    boot = time.time() - uptime
    with open("/proc/self/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5), counted after comm


def main() -> None:
    import argparse

    from benchmarks.peers.common import report
    from benchmarks.peers.stamp import STAMP_DIR_ENV

    p = argparse.ArgumentParser(description="time to first result, distmap local backend")
    p.add_argument("input")
    p.add_argument("output")
    args = p.parse_args()
    stamps = os.path.join(args.output, "stamps")
    os.makedirs(stamps)
    os.environ[STAMP_DIR_ENV] = stamps  # the forked workers inherit it

    import distmap
    from distmap.logs import configure_logging

    configure_logging(json=True, level="info")  # as the CLI does: log lines on stderr, stdout stays clean

    job = {
        "ItemReader": {"Source": os.path.abspath(args.input), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "benchmarks.peers.stamp:first_return_stamp"},
        "ResultWriter": {"Destination": os.path.join(os.path.abspath(args.output), "out")},
    }
    first_progress: list[float] = []

    def progress(counts: dict[str, object]) -> None:
        if not first_progress and isinstance(counts.get("succeeded"), int) and counts["succeeded"] > 0:
            first_progress.append(time.time())

    t_run = time.time()
    result = distmap.run(job, progress=progress)
    seconds = time.time() - t_run
    first = min(float(Path(stamps, name).read_text()) for name in os.listdir(stamps))
    counts = result.item_counts
    report(
        counts.succeeded + counts.failed,
        seconds,
        status=result.status,
        succeeded=counts.succeeded,
        failed=counts.failed,
        first_result_s=round(first - t_run, 4),
        first_progress_s=round(first_progress[0] - t_run, 4) if first_progress else None,
        first_result_from_process_start_s=round(first - process_start_time(), 4),
    )


if __name__ == "__main__":
    main()
