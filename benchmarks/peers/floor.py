"""B0, the single-process floor, and the sequential baseline of the CPU / sleep workloads.

One process, no parallelism: read a line -> parse -> call f -> encode -> buffered write.

``--record compact`` (default) writes each output as one JSONL line (what the peers and distmap's
COMPACT JSONL writer write). ``--record aws`` writes the full AWS-shaped result record into one JSON
array, like distmap's default ResultWriter (the loop of ``benchmarks.floor_aws``). ``--csv`` reads a
CSV file with a header row instead: every item is a dict of strings, as the engine's CSV reader
makes them.

    python -m benchmarks.peers.floor INPUT OUTPUT [--function noop|cpu_1ms|sleep_10ms]
        [--record compact|aws] [--csv]
"""

from __future__ import annotations

import csv
import time

import orjson

from benchmarks import floor_aws
from benchmarks.peers.common import BUFFER, base_parser, report, resolve

BATCH = 4096


def compact_jsonl(src: str, dst: str, function: str) -> int:
    fn, loads, dumps = resolve(function), orjson.loads, orjson.dumps
    n = 0
    out: list[bytes] = []
    with open(src, "rb", buffering=BUFFER) as fin, open(dst, "wb", buffering=BUFFER) as fout:
        for line in fin:
            out.append(dumps(fn(loads(line))))
            if len(out) >= BATCH:
                n += len(out)
                out.append(b"")
                fout.write(b"\n".join(out))
                out.clear()
        if out:
            n += len(out)
            out.append(b"")
            fout.write(b"\n".join(out))
    return n


def compact_csv(src: str, dst: str, function: str) -> int:
    fn, dumps = resolve(function), orjson.dumps
    n = 0
    out: list[bytes] = []
    with open(src, newline="", buffering=BUFFER) as fin, open(dst, "wb", buffering=BUFFER) as fout:
        rows = csv.reader(fin)
        header = next(rows)
        for row in rows:
            out.append(dumps(fn(dict(zip(header, row, strict=True)))))
            if len(out) >= BATCH:
                n += len(out)
                out.append(b"")
                fout.write(b"\n".join(out))
                out.clear()
        if out:
            n += len(out)
            out.append(b"")
            fout.write(b"\n".join(out))
    return n


def main() -> None:
    p = base_parser("B0: read -> parse -> f -> encode -> write, in one process")
    p.add_argument("--record", choices=("compact", "aws"), default="compact")
    p.add_argument("--csv", action="store_true", help="the input is CSV with a header row")
    args = p.parse_args()
    if args.csv and args.record == "aws":
        p.error("--csv supports --record compact only")
    t0 = time.perf_counter()
    if args.record == "aws":
        n = floor_aws.run(args.input, args.output, resolve(args.function))
    elif args.csv:
        n = compact_csv(args.input, args.output, args.function)
    else:
        n = compact_jsonl(args.input, args.output, args.function)
    report(n, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
