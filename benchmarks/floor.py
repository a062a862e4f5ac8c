"""B0, the single-process floor: read line -> parse -> call f -> encode a result record -> buffered write.

Run as a script in a fresh process: ``python -m benchmarks.floor INPUT OUTPUT``.
"""

from __future__ import annotations

import sys

import orjson


def noop(item):
    return item


def run(src: str, dst: str) -> int:
    loads, dumps = orjson.loads, orjson.dumps
    n = 0
    with open(src, "rb", buffering=1 << 20) as fin, open(dst, "wb", buffering=1 << 20) as fout:
        out = []
        for line in fin:
            item = loads(line)
            result = noop(item)
            out.append(
                dumps(
                    {
                        "Input": line.rstrip(b"\n").decode(),
                        "Output": dumps(result).decode(),
                        "Status": "SUCCEEDED",
                    }
                )
            )
            n += 1
            if len(out) >= 4096:
                fout.write(b"\n".join(out) + b"\n")
                out.clear()
        if out:
            fout.write(b"\n".join(out) + b"\n")
    return n


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
