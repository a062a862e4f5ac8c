"""A ``ThreadPoolExecutor(200)`` in one process, for latency-bound items.

The main thread reads and parses lines and keeps at most ``2 x --threads`` items in flight; the
threads call f; the main thread encodes and writes each output as it completes. This is what you
would write yourself for items that wait on I/O.

    python -m benchmarks.peers.threads INPUT OUTPUT [--function sleep_10ms] [--threads 200]
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import orjson

from benchmarks.peers.common import BUFFER, base_parser, report, resolve


def run(src: str, dst: str, function: str, threads: int) -> int:
    fn, loads, dumps = resolve(function), orjson.loads, orjson.dumps
    limit = 2 * threads
    n = 0
    pending: set[Future[Any]] = set()
    with (
        ThreadPoolExecutor(threads) as pool,
        open(src, "rb", buffering=BUFFER) as fin,
        open(dst, "wb", buffering=BUFFER) as out,
    ):

        def drain(until: int) -> None:
            nonlocal pending, n
            while len(pending) > until:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                out.write(b"".join(dumps(f.result()) + b"\n" for f in done))
                n += len(done)

        for line in fin:
            drain(limit - 1)
            pending.add(pool.submit(fn, loads(line)))
        drain(0)
    return n


def main() -> None:
    p = base_parser("ThreadPoolExecutor over items, one process")
    p.add_argument("--threads", type=int, default=200)
    args = p.parse_args()
    t0 = time.perf_counter()
    n = run(args.input, args.output, args.function, args.threads)
    report(n, time.perf_counter() - t0, threads=args.threads)


if __name__ == "__main__":
    main()
