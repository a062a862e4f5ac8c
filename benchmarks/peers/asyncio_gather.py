"""A hand-written ``asyncio.gather`` under a semaphore, in one process, for ``async def`` items.

What you would write yourself for many concurrent API calls: read and parse every line, start
one task per item, each awaiting ``--concurrency`` slots of a semaphore, gather them, and write
each output as one JSONL line.

    python -m benchmarks.peers.asyncio_gather INPUT OUTPUT [--function async_sleep_100ms] [--concurrency 10000]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from benchmarks.peers.common import BUFFER, base_parser, report, resolve


async def _all(items: list[Any], function: str, concurrency: int) -> list[Any]:
    fn = resolve(function)
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> Any:
        async with gate:
            return await fn(item)

    return await asyncio.gather(*(one(item) for item in items))


def run(src: str, dst: str, function: str, concurrency: int) -> int:
    loads, dumps = orjson.loads, orjson.dumps
    with open(src, "rb", buffering=BUFFER) as fin:
        items = [loads(line) for line in fin if line.strip()]
    outputs = asyncio.run(_all(items, function, concurrency))
    with open(dst, "wb", buffering=BUFFER) as out:
        out.write(b"".join(dumps(o) + b"\n" for o in outputs))
    return len(outputs)


def main() -> None:
    p = base_parser("asyncio.gather + Semaphore over items, one process")
    p.add_argument("--concurrency", type=int, default=10000)
    args = p.parse_args()
    t0 = time.perf_counter()
    n = run(args.input, args.output, args.function, args.concurrency)
    report(n, time.perf_counter() - t0, concurrency=args.concurrency)


if __name__ == "__main__":
    main()
