"""B0-aws, the honest single-process baseline: the floor loop, writing the records the engine writes.

For every JSONL line: parse it, call a no-op function (timed with ``time.time()`` around the
call), and encode one AWS Distributed Map result record::

    {"ExecutionArn": "...:<name>", "Input": "<item json>", "InputDetails": {"Included": true},
     "Name": "<name>", "Output": "<result json>", "OutputDetails": {"Included": true},
     "RedriveCount": 0, "RedriveStatus": "NOT_REDRIVABLE",
     "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
     "StartDate": "2026-11-25T10:00:00.000Z", "StateMachineArn": "...", "Status": "SUCCEEDED",
     "StopDate": "2026-11-25T10:00:00.000Z"}

The records go into one JSON array file. This is what a competent engineer would write by hand:
orjson, every constant byte string built once, dates cached per millisecond, records batched
and written through a 1 MiB buffer. No retries, no failure handling, no parallelism.

Run as a script in a fresh process: ``python -m benchmarks.floor_aws INPUT OUTPUT`` (prints
the number of records written).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

REGION = "us-east-1"
ACCOUNT = "123456789012"
STATE_MACHINE = "job/Map"
EXECUTION_ARN_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE}:"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"
BATCH = 4096
BUFFER = 1 << 20


def noop(item: Any) -> Any:
    return item


def date_formatter() -> Callable[[float], bytes]:
    """``t -> b'"YYYY-MM-DDTHH:MM:SS.mmmZ"'``, recomputed only when the millisecond changes."""
    gmtime, strftime = time.gmtime, time.strftime
    cache: list[Any] = [-1, b"", -1, b""]  # last ms, its text, last second, its prefix

    def date(t: float) -> bytes:
        ms = int(t * 1000)
        if ms == cache[0]:
            return cache[1]
        sec, frac = divmod(ms, 1000)
        if sec != cache[2]:
            cache[2] = sec
            cache[3] = strftime("%Y-%m-%dT%H:%M:%S", gmtime(sec)).encode()
        cache[0] = ms
        cache[1] = b'"%s.%03dZ"' % (cache[3], frac)
        return cache[1]

    return date


def run(src: str, dst: str, fn: Callable[[Any], Any] = noop) -> int:
    """Write one AWS-shaped record per line of ``src`` into the JSON array ``dst``; ``fn`` is the
    item function."""
    loads, dumps, now, join = orjson.loads, orjson.dumps, time.time, b"".join
    date = date_formatter()
    name_prefix = uuid.uuid4().hex[:8].encode() + b"-"
    arn = b'{"ExecutionArn":"' + EXECUTION_ARN_PREFIX.encode()
    input_key = b'","Input":'
    name_key = b',"InputDetails":{"Included":true},"Name":"'
    output_key = b'","Output":'
    start_key = (
        b',"OutputDetails":{"Included":true},"RedriveCount":0,"RedriveStatus":"NOT_REDRIVABLE",'
        b'"RedriveStatusReason":"Execution is SUCCEEDED and cannot be redriven","StartDate":'
    )
    stop_key = b',"StateMachineArn":' + dumps(STATE_MACHINE_ARN) + b',"Status":"SUCCEEDED","StopDate":'
    end = b"}"

    n = 0
    out: list[bytes] = []
    sep = b""  # between batches: "," once the first batch is out
    with open(src, "rb", buffering=BUFFER) as fin, open(dst, "wb", buffering=BUFFER) as fout:
        fout.write(b"[")
        for line in fin:
            item = loads(line)
            start = now()
            result = fn(item)
            stop = now()
            name = b"%s%010d" % (name_prefix, n)
            out.append(
                join(
                    (
                        arn,
                        name,
                        input_key,
                        dumps(line.rstrip().decode()),
                        name_key,
                        name,
                        output_key,
                        dumps(dumps(result).decode()),
                        start_key,
                        date(start),
                        stop_key,
                        date(stop),
                        end,
                    )
                )
            )
            n += 1
            if len(out) >= BATCH:
                fout.write(sep + b",".join(out))
                out.clear()
                sep = b","
        if out:
            fout.write(sep + b",".join(out))
        fout.write(b"]")
    return n


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
