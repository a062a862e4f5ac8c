"""What every peer contender shares: the item functions, byte-chunk reading, the per-chunk work and
the one JSON line a peer prints when it is done.

Every peer does the same per-item work as the engine: parse the JSONL line (orjson), call the item
function, encode its result (orjson) and write it as one JSONL line: the bytes distmap writes with
``WriterConfig: {OutputType: JSONL, Transformation: COMPACT}``. The item functions are the
engine's own (``jobs.examples``); the no-op is an identical local copy so that a peer does not pay
for importing distmap.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson

BUFFER = 1 << 20


def noop(item: Any) -> Any:
    """Return the item unchanged (the same as ``jobs.examples:noop``)."""
    return item


FUNCTIONS: dict[str, str] = {
    "noop": "benchmarks.peers.common:noop",
    "cpu_1ms": "jobs.examples:cpu_1ms",
    "sleep_10ms": "jobs.examples:sleep_10ms",
    "sleep_100ms": "jobs.examples:sleep_100ms",
    "async_sleep_100ms": "jobs.examples:async_sleep_100ms",
}
"""Workload function name -> ``module:attribute`` (peers use the same names as the job files)."""

_resolved: dict[str, Callable[[Any], Any]] = {}


def resolve(name: str) -> Callable[[Any], Any]:
    """The item function called ``name`` (a key of FUNCTIONS), imported once per process."""
    fn = _resolved.get(name)
    if fn is None:
        module, _, attr = FUNCTIONS[name].partition(":")
        fn = _resolved[name] = getattr(importlib.import_module(module), attr)
    return fn


def process_blob(function: str, blob: bytes) -> tuple[int, bytes]:
    """Parse, call and encode every line of ``blob``; returns ``(items, JSONL bytes)``.

    Module-level, taking the function by name, so that process pools can pickle it cheaply.
    """
    fn, loads, dumps = resolve(function), orjson.loads, orjson.dumps
    out = [dumps(fn(loads(line))) for line in blob.splitlines() if line]
    if not out:
        return 0, b""
    out.append(b"")
    return len(out) - 1, b"\n".join(out)


def iter_blobs(path: str, lines_per_blob: int) -> Iterator[bytes]:
    """The file as byte blobs of ``lines_per_blob`` whole lines each."""
    with open(path, "rb", buffering=BUFFER) as fh:
        while True:
            lines = list(itertools.islice(fh, lines_per_blob))
            if not lines:
                return
            yield b"".join(lines)


def count_lines(paths: list[str]) -> int:
    """Lines in the given files (a last line without a newline counts too)."""
    n = 0
    for path in paths:
        last = b"\n"
        with open(path, "rb") as fh:
            while block := fh.read(BUFFER):
                n += block.count(b"\n")
                last = block[-1:]
        n += last != b"\n"
    return n


def files_in(directory: str) -> list[str]:
    """The regular files of an output directory (a peer that writes several files)."""
    return sorted(e.path for e in os.scandir(directory) if e.is_file() and not e.name.startswith("."))


def base_parser(description: str) -> argparse.ArgumentParser:
    """INPUT OUTPUT [--function NAME] [--workers N]: the arguments every peer takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("input", help="JSONL input file")
    p.add_argument("output", help="output file (or directory, for peers that write several files)")
    p.add_argument("--function", choices=sorted(FUNCTIONS), default="noop", help="item function")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    return p


def report(items: int, seconds: float, init_seconds: float = 0.0, **extra: Any) -> None:
    """Print the one JSON line the harness reads: items done, work seconds, ray.init seconds."""
    doc = {"items": items, "seconds": round(seconds, 4), "init_seconds": round(init_seconds, 4), **extra}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def ray_init(workers: int) -> float:
    """Start a new local Ray cluster (never join an existing one); returns the seconds it took."""
    import logging
    import time

    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING)
    return time.perf_counter() - t0
