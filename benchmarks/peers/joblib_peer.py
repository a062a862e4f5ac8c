"""joblib: ``Parallel(n_jobs=cores, return_as="generator_unordered")`` over byte chunks.

The parent reads blobs of ``--chunk-lines`` lines lazily (joblib dispatches ahead by its default
``pre_dispatch="2*n_jobs"``, so the window is bounded); the loky workers parse, call f and encode;
the parent writes each result as it arrives. ``seconds`` includes starting the worker pool.

    python -m benchmarks.peers.joblib_peer INPUT OUTPUT [--function F] [--workers N] [--chunk-lines 1000]
"""

from __future__ import annotations

import time

from joblib import Parallel, delayed

from benchmarks.peers.common import BUFFER, base_parser, iter_blobs, process_blob, report


def run(src: str, dst: str, function: str, workers: int, chunk_lines: int) -> int:
    n = 0
    parallel = Parallel(n_jobs=workers, return_as="generator_unordered")
    with open(dst, "wb", buffering=BUFFER) as out:
        for items, data in parallel(delayed(process_blob)(function, b) for b in iter_blobs(src, chunk_lines)):
            out.write(data)
            n += items
    return n


def main() -> None:
    p = base_parser("joblib Parallel(generator_unordered) over byte chunks")
    p.add_argument("--chunk-lines", type=int, default=1000)
    args = p.parse_args()
    t0 = time.perf_counter()
    n = run(args.input, args.output, args.function, args.workers, args.chunk_lines)
    report(n, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
