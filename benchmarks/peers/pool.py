"""B1: ``multiprocessing.Pool(cores)`` over 1,000-line byte chunks with a bounded window.

The parent reads the file as blobs of ``--chunk-lines`` lines and keeps at most ``--window``
chunks in flight (``apply_async``; a finished chunk's callback hands it back through a queue).
Workers parse, call f and encode; the parent writes the JSONL bytes in completion order.
``Pool.imap_unordered`` is not used because its feeder thread reads the whole input ahead
(unbounded memory).

    python -m benchmarks.peers.pool INPUT OUTPUT [--function F] [--workers N]
        [--chunk-lines 1000] [--window 8]
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from typing import Any

from benchmarks.peers.common import BUFFER, base_parser, iter_blobs, process_blob, report


def run(src: str, dst: str, function: str, workers: int, chunk_lines: int, window: int) -> int:
    done: queue.SimpleQueue[Any] = queue.SimpleQueue()
    n = in_flight = 0
    with mp.get_context("fork").Pool(workers) as pool, open(dst, "wb", buffering=BUFFER) as out:
        for blob in iter_blobs(src, chunk_lines):
            if in_flight >= window:
                n += _write_one(done, out)
                in_flight -= 1
            pool.apply_async(process_blob, (function, blob), callback=done.put, error_callback=done.put)
            in_flight += 1
        for _ in range(in_flight):
            n += _write_one(done, out)
    return n


def _write_one(done: queue.SimpleQueue[Any], out: Any) -> int:
    result = done.get()
    if isinstance(result, BaseException):
        raise result
    items, data = result
    out.write(data)
    return items


def main() -> None:
    p = base_parser("B1: multiprocessing.Pool over byte chunks, bounded window")
    p.add_argument("--chunk-lines", type=int, default=1000)
    p.add_argument("--window", type=int, default=8, help="chunks in flight")
    args = p.parse_args()
    t0 = time.perf_counter()
    n = run(args.input, args.output, args.function, args.workers, args.chunk_lines, args.window)
    report(n, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
