"""Contenders of ``python -m benchmarks run``: how each is started and how its output is verified.

A contender is one command line run in a fresh process from the repository root. Peers
(``benchmarks.peers.*``) print one JSON line ``{"items", "seconds", "init_seconds", ...}``; distmap
runs through its CLI and prints its JSON summary (``stats.seconds``: the run excluding backend
start-up; ``stats.backendStartSeconds``: ``ray.init``). Every check raises ``BenchmarkError``
unless the output holds exactly the expected number of records, and returns what to record:
``items``, ``seconds`` (work time, as reported by the contender) and ``init_seconds``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.core import FLAKY_RETRY, check_engine_flaky, check_record_shape, engine_summary, run_dir_of
from benchmarks.measure import BenchmarkError, Run, require

Check = Callable[[Run, Path], dict[str, Any]]
"""Verifies a finished run given its scratch directory; returns the facts to record."""

AWS_RECORD_START = b'{"ExecutionArn":"'
"""Every AWS-shaped record starts with these bytes; inside a record they cannot occur (its Input and
Output are JSON strings, whose quotes are escaped), so counting them counts records."""


@dataclass(frozen=True)
class Contender:
    workload: str
    name: str
    label: str
    """What it is, in a few words (shown in the report)."""
    command: Command
    """Scratch directory -> argv (may write a job file there)."""
    check: Check
    items: int
    ray: bool = False
    """Runs on Ray: its headline time is the work time after ``ray.init``, not the process wall."""
    distmap: bool = False
    """A distmap contender: its failure makes the whole benchmark fail."""

    @property
    def key(self) -> str:
        return f"{self.workload}/{self.name}"

    def describe(self) -> dict[str, Any]:
        """The command line (scratch directory shown as ``$SCRATCH``) and the job, if any."""
        out: dict[str, Any] = {"argv": self.command.preview()}
        if self.command.job is not None:
            out["job"] = _fill(self.command.job, "$SCRATCH")
        return out


# --------------------------------------------------------------------------- output checks


def count_lines(paths: list[Path]) -> int:
    n = 0
    for path in paths:
        last = b"\n"
        with open(path, "rb") as fh:
            while block := fh.read(8 << 20):
                n += block.count(b"\n")
                last = block[-1:]
        n += last != b"\n"
    return n


def count_bytes(paths: list[Path], needle: bytes) -> int:
    """Occurrences of ``needle`` in the files (blocks overlap so none is missed or counted twice)."""
    n = 0
    keep = len(needle) - 1
    for path in paths:
        tail = b""
        with open(path, "rb") as fh:
            while block := fh.read(8 << 20):
                data = tail + block
                n += data.count(needle)
                tail = data[-keep:] if keep else b""
                n -= tail.count(needle)
    return n


def first_line_object(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        line = fh.readline()
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{path.name}: the first line is not JSON ({exc})") from exc
    require(isinstance(value, dict), f"{path.name}: the first line is not a JSON object")
    return value


def peer_report(run: Run) -> dict[str, Any]:
    """The JSON line a peer printed last on stdout."""
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    require(bool(lines), "the peer printed nothing on stdout")
    try:
        doc = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"the peer's last stdout line is not JSON ({exc})") from exc
    require(isinstance(doc, dict) and "seconds" in doc, f"unexpected peer report {lines[-1][:200]!r}")
    return doc


def outputs(scratch: Path, pattern: str) -> list[Path]:
    files = sorted(p for p in scratch.glob(pattern) if p.is_file())
    require(bool(files), f"no output files match {pattern}")
    return files


def peer_check(expected: int, pattern: str, aws_records: bool = False) -> Check:
    """The peer reported ``expected`` items and its output files (``pattern`` under the scratch
    directory) hold exactly ``expected`` records: JSONL lines, or AWS-shaped records in a JSON array."""

    def check(run: Run, scratch: Path) -> dict[str, Any]:
        doc = peer_report(run)
        require(
            doc.get("items") == expected, f"the peer reported {doc.get('items')} items, expected {expected}"
        )
        files = outputs(scratch, pattern)
        if aws_records:
            check_record_shape(files[0])
            written = count_bytes(files, AWS_RECORD_START)
        else:
            first_line_object(files[0])
            written = count_lines(files)
        require(written == expected, f"{written} records in the output, expected {expected}")
        extra = {k: v for k, v in doc.items() if k not in ("items", "seconds", "init_seconds")}
        return {
            "items": expected,
            "seconds": doc["seconds"],
            "init_seconds": doc.get("init_seconds", 0.0),
            "output_records": written,
            **extra,
        }

    return check


def distmap_check(expected: int, writer: str | None) -> Check:
    """Status SUCCEEDED, ``expected`` items succeeded and none failed, and the result files hold
    exactly ``expected`` SUCCEEDED records (``writer``: ``json`` AWS records, ``jsonl`` COMPACT
    outputs, or None: no ResultWriter, so no manifest)."""

    def check(run: Run, scratch: Path) -> dict[str, Any]:
        summary = engine_summary(run)
        counts = summary["itemCounts"]
        require(
            counts["succeeded"] == expected and counts["failed"] == 0 and counts["timedOut"] == 0,
            f"unexpected item counts {counts}",
        )
        if writer is None:
            require("manifest" not in summary, "a manifest was written without a ResultWriter")
        else:
            run_dir = run_dir_of(summary)
            if writer == "json":
                files = outputs(run_dir, "SUCCEEDED_*.json")
                check_record_shape(files[0])
                written = count_bytes(files, AWS_RECORD_START)
            else:
                files = outputs(run_dir, "SUCCEEDED_*.jsonl")
                first_line_object(files[0])
                written = count_lines(files)
            require(written == expected, f"{written} SUCCEEDED records written, expected {expected}")
        return engine_facts(summary, expected)

    return check


def distmap_flaky_check(expected: int) -> Check:
    """``benchmarks.core``'s check of the failures run (counts, retries, and every id)."""
    core_check = check_engine_flaky(expected)

    def check(run: Run, scratch: Path) -> dict[str, Any]:
        facts = core_check(run, scratch)
        return {**engine_facts(engine_summary(run), expected), **facts}

    return check


def engine_facts(summary: dict[str, Any], items: int) -> dict[str, Any]:
    stats = summary.get("stats", {})
    return {
        "items": items,
        "seconds": stats["seconds"],
        "init_seconds": stats.get("backendStartSeconds", 0.0),
        "item_counts": summary["itemCounts"],
        "retries": stats.get("retries"),
        "chunks": stats.get("chunks"),
        "workers_start_seconds": stats.get("workersStartSeconds", 0.0),
        "coordinator_cpu_s": stats.get("coordinatorCpuSeconds"),
        "workers_cpu_s": stats.get("workersCpuSeconds"),
    }


def first_result_check(expected: int) -> Check:
    def check(run: Run, scratch: Path) -> dict[str, Any]:
        doc = peer_report(run)
        require(doc.get("status") == "SUCCEEDED", f"map run status {doc.get('status')}")
        require(
            doc.get("succeeded") == expected and doc.get("failed") == 0,
            f"succeeded {doc.get('succeeded')}, failed {doc.get('failed')}; expected {expected} and 0",
        )
        require(isinstance(doc.get("first_result_s"), float), "no first_result_s reported")
        return {"items": expected, "init_seconds": 0.0, **{k: v for k, v in doc.items() if k != "items"}}

    return check


# --------------------------------------------------------------------------- commands


class Command:
    """argv builder: ``Command(parts)`` where parts may contain ``"{scratch}"``; optionally writes a
    job file first."""

    def __init__(self, parts: list[str], job: dict[str, Any] | None = None) -> None:
        self.parts, self.job = parts, job

    def __call__(self, scratch: Path) -> list[str]:
        if self.job is not None:
            text = yaml.safe_dump(_fill(self.job, str(scratch)), sort_keys=False)
            (scratch / "job.yaml").write_text(text)
        return [p.replace("{scratch}", str(scratch)) for p in self.parts]

    def preview(self) -> list[str]:
        return [p.replace("{scratch}", "$SCRATCH") for p in self.parts]


def _fill(value: Any, scratch: str) -> Any:
    if isinstance(value, str):
        return value.replace("{scratch}", scratch)
    if isinstance(value, dict):
        return {k: _fill(v, scratch) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, scratch) for v in value]
    return value


def peer_command(module: str, src: Path, output: str, *options: str) -> Command:
    return Command([sys.executable, "-m", f"benchmarks.peers.{module}", str(src), output, *options])


def distmap_job(
    src: Path,
    function: str,
    *,
    writer: str | None = "json",
    csv: bool = False,
    max_concurrency: int | None = None,
    retry: list[dict[str, Any]] | None = None,
    tolerated_failure_percentage: float | None = None,
) -> dict[str, Any]:
    """A job mapping; ``writer``: ``json`` (default AWS records), ``jsonl`` (COMPACT JSONL) or None."""
    reader: dict[str, Any] = (
        {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"} if csv else {"InputType": "JSONL"}
    )
    processor: dict[str, Any] = {"Function": function}
    if retry:
        processor["Retry"] = retry
    job: dict[str, Any] = {
        "ItemReader": {"Source": str(src), "ReaderConfig": reader},
        "ItemProcessor": processor,
    }
    if max_concurrency is not None:
        job["MaxConcurrency"] = max_concurrency
    if tolerated_failure_percentage is not None:
        job["ToleratedFailurePercentage"] = tolerated_failure_percentage
    if writer == "json":
        job["ResultWriter"] = {"Destination": "{scratch}/out"}
    elif writer == "jsonl":
        job["ResultWriter"] = {
            "Destination": "{scratch}/out",
            "WriterConfig": {"OutputType": "JSONL", "Transformation": "COMPACT"},
        }
    return job


def distmap_command(job: dict[str, Any], backend: str, cores: int) -> Command:
    """``python -m distmap run JOB --no-progress`` (the CLI), with ``--backend ray --num-cpus N`` for Ray."""
    argv = [sys.executable, "-m", "distmap", "run", "{scratch}/job.yaml", "--no-progress"]
    if backend == "ray":
        argv += ["--backend", "ray", "--num-cpus", str(cores)]
    return Command(argv, job)


# --------------------------------------------------------------------------- factories


def distmap_contender(
    workload: str,
    name: str,
    label: str,
    items: int,
    job: dict[str, Any],
    backend: str,
    cores: int,
    flaky: bool = False,
) -> Contender:
    writer = None
    if "ResultWriter" in job:
        writer = "jsonl" if "WriterConfig" in job["ResultWriter"] else "json"
    check = distmap_flaky_check(items) if flaky else distmap_check(items, writer)
    return Contender(
        workload,
        name,
        label,
        distmap_command(job, backend, cores),
        check,
        items,
        ray=backend == "ray",
        distmap=True,
    )


def flaky_job(src: Path, function: str = "jobs.examples:flaky") -> dict[str, Any]:
    """The failures run's job (``function``: ``jobs.examples:flaky_clean`` for its clean run: the
    same work, Retry and tolerance, and no item fails)."""
    return distmap_job(src, function, retry=FLAKY_RETRY, tolerated_failure_percentage=10, writer="json")
