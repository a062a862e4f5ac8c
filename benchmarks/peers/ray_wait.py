"""B3: a hand-written bounded ``ray.wait`` loop over byte blobs: what you would write yourself on Ray.

The driver reads the file as blobs of ``--chunk-lines`` (10,000) lines, keeps at most
``--in-flight`` (4) remote tasks running, and writes each finished task's JSONL bytes in
completion order. Tasks parse, call f and encode (``process_blob``). A new local cluster is started
first (``address="local"``, ``num_cpus=--workers``, no dashboard); ``init_seconds`` is its start-up,
``seconds`` runs from after ``ray.init`` until the last write.

    python -m benchmarks.peers.ray_wait INPUT OUTPUT [--function F] [--chunk-lines 10000] [--in-flight 4]
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.peers.common import BUFFER, base_parser, iter_blobs, process_blob, ray_init, report


def run(ray: Any, src: str, dst: str, function: str, chunk_lines: int, in_flight: int) -> int:
    task = ray.remote(num_cpus=1)(process_blob)
    pending: list[Any] = []
    n = 0
    with open(dst, "wb", buffering=BUFFER) as out:

        def drain(until: int) -> None:
            nonlocal pending, n
            while len(pending) > until:
                ready, pending = ray.wait(pending, num_returns=1)
                items, data = ray.get(ready[0])
                out.write(data)
                n += items

        for blob in iter_blobs(src, chunk_lines):
            drain(in_flight - 1)
            pending.append(task.remote(function, blob))
        drain(0)
    return n


def main() -> None:
    p = base_parser("B3: bounded ray.wait loop over byte blobs")
    p.add_argument("--chunk-lines", type=int, default=10_000)
    p.add_argument("--in-flight", type=int, default=4)
    args = p.parse_args()

    import ray

    init = ray_init(args.workers)
    try:
        t0 = time.perf_counter()
        n = run(ray, args.input, args.output, args.function, args.chunk_lines, args.in_flight)
        seconds = time.perf_counter() - t0
    finally:
        ray.shutdown()
    report(n, seconds, init)


if __name__ == "__main__":
    main()
