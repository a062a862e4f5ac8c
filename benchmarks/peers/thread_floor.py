"""The floor of any thread-based engine for sync latency-bound items: bare threads in several processes.

``--workers`` forked processes each take every ``workers``-th line of the input, parse them all
first, and run ``--threads`` plain threads that do nothing but pop an item, call f and keep its
encoded output; each process writes its outputs to ``OUTPUT.<n>`` at the end. The switch interval
is raised the way distmap's thread lanes raise it (100 us per thread, at most 0.5 s), so the threads are not woken every 5 ms to hand the GIL around. No reading, chunking,
records or accounting overlap the items: what is left is the cost of waking a thread and handing
it the GIL, which is what bounds a sync function at thousands of lanes on a few cores.

    python -m benchmarks.peers.thread_floor INPUT OUTPUT [--function sleep_100ms] [--threads 5000]
        [--workers 2]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque

import orjson

from benchmarks.peers.common import BUFFER, base_parser, report, resolve

SWITCH_PER_LANE = 100e-6
MAX_SWITCH = 0.5
STACK = 512 * 1024


def one_process(src: str, dst: str, function: str, threads: int, part: int, parts: int) -> int:
    fn, loads, dumps = resolve(function), orjson.loads, orjson.dumps
    with open(src, "rb", buffering=BUFFER) as fin:
        items = deque(loads(line) for i, line in enumerate(fin) if i % parts == part and line.strip())
    sys.setswitchinterval(min(MAX_SWITCH, SWITCH_PER_LANE * threads))
    threading.stack_size(STACK)
    outputs: list[bytes] = []

    def lane() -> None:
        pop, keep = items.popleft, outputs.append
        while True:
            try:
                item = pop()
            except IndexError:
                return
            keep(dumps(fn(item)))

    pool = [threading.Thread(target=lane) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    with open(f"{dst}.{part}", "wb") as out:
        out.write(b"".join(o + b"\n" for o in outputs))
    return len(outputs)


def main() -> None:
    p = base_parser("bare threads in several processes: the floor of thread lanes")
    p.add_argument("--threads", type=int, default=5000, help="threads per process")
    args = p.parse_args()
    t0 = time.perf_counter()
    pids = []
    for part in range(args.workers):
        pid = os.fork()
        if pid == 0:
            n = one_process(args.input, args.output, args.function, args.threads, part, args.workers)
            os._exit(0 if n >= 0 else 1)
        pids.append(pid)
    failed = [pid for pid in pids if os.waitpid(pid, 0)[1] != 0]
    if failed:
        raise SystemExit(f"{len(failed)} worker process(es) failed")
    seconds = time.perf_counter() - t0
    n = 0
    for part in range(args.workers):
        with open(f"{args.output}.{part}", "rb") as fh:
            n += sum(1 for line in fh if line.strip())
    report(n, seconds, threads_per_process=args.threads, processes=args.workers)


if __name__ == "__main__":
    main()
