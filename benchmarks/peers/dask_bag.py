"""dask.bag with the multiprocessing scheduler::

    dask.bag.read_text(INPUT, blocksize=B).map(loads).map(f).map(dumps).to_textfiles(OUTPUT_DIR/*.jsonl)

``scheduler="processes"`` with ``num_workers=--workers``. ``loads`` / ``dumps`` are orjson (returning
``str``), as for every other contender, rather than the stdlib ``json`` of dask's examples. The
block size is the input size / (4 x workers), at least 256 KiB, so every worker gets several
partitions. Each partition is written by the worker that computed it; files end with a newline.

    python -m benchmarks.peers.dask_bag INPUT OUTPUT_DIR [--function F] [--workers N] [--blocksize BYTES]
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from benchmarks.peers.common import base_parser, count_lines, files_in, report, resolve


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def main() -> None:
    p = base_parser("dask.bag read_text -> map -> to_textfiles, processes scheduler")
    p.add_argument("--blocksize", type=int, help="bytes per partition (default: size / (4 x workers))")
    args = p.parse_args()

    import dask
    import dask.bag as db

    blocksize = args.blocksize or max(256 << 10, os.path.getsize(args.input) // (4 * args.workers))
    os.makedirs(args.output, exist_ok=True)
    t0 = time.perf_counter()
    with dask.config.set(scheduler="processes", num_workers=args.workers):
        bag = db.read_text(args.input, blocksize=blocksize)
        bag = bag.map(orjson.loads).map(resolve(args.function)).map(dumps)
        bag.to_textfiles(os.path.join(args.output, "*.jsonl"), last_endline=True)
    seconds = time.perf_counter() - t0
    report(count_lines(files_in(args.output)), seconds, blocksize=blocksize)  # counted after the clock


if __name__ == "__main__":
    main()
