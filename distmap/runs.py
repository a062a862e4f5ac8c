"""Durable runs: the journal a new run starts, and ``resume`` of a run from its directory.

``start_journal`` builds the ``DurableRun`` a fresh ``distmap.run`` keeps (in the result
directory, or under ``journal.state_dir()`` without a ResultWriter; none for S3 results).
``resume`` continues a run whose coordinator died, or that was aborted or failed: the config
snapshot in ``run.json`` says what to run, the journal what is done. It refuses changed input,
and a run that already SUCCEEDED is left as it is.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import orjson

from distmap.checkpoint import DurableRun
from distmap.config.model import MapJob
from distmap.config.snapshot import job_from_dict, job_to_dict
from distmap.contract import MAX_CHUNK_ITEMS
from distmap.coordinator import Coordinator, ProgressHook, map_run_identity
from distmap.errors import ConfigError, ItemReaderFailed, ResultWriterFailed
from distmap.executors import BACKENDS, make_executor
from distmap.journal import RunJournal, is_run_dir, new_header, read_header, replay, run_dir_for
from distmap.readers.identity import identity_change, input_identity
from distmap.records import iso_now
from distmap.run_state import ItemCounts, MapRunResult
from distmap.stops import StopRequests


def execution_arn(job: MapJob, run_id: str) -> str:
    """The ARN of the execution a map run belongs to (its ``$$.Execution.Id``)."""
    _, ident = map_run_identity(job, run_id)
    parent = ident.state_machine_arn.rsplit("/", 1)[0].replace(":stateMachine:", ":execution:")
    return f"{parent}:{run_id}"


def start_journal(job: MapJob, run_id: str) -> DurableRun | None:
    """The journal of a new run, or None when its results cannot be journaled (S3)."""
    dest = job.result_writer.destination if job.result_writer is not None else None
    run_dir = run_dir_for(dest, run_id)
    if run_dir is None:
        return None
    if dest is None and is_run_dir(run_dir):
        # no results to mix up: an earlier run of this id is replaced, unless it still runs
        if coordinator_alive(read_header(run_dir)):
            raise ResultWriterFailed(
                cause=f"{run_dir} holds map run {run_id!r}, still running; choose another --run-id"
            )
        shutil.rmtree(run_dir)
    arn, _ = map_run_identity(job, run_id)
    # the input's identity is taken once the reader has opened it (its errors come first)
    header = new_header(run_id, arn, execution_arn(job, run_id), job_to_dict(job), None)
    header["pidStart"] = process_start(os.getpid())
    return DurableRun(run_dir, header)


def open_run(run_dir: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """A run directory and its header; ConfigError when it is not one."""
    path = Path(run_dir).resolve()
    if not is_run_dir(path):
        raise ConfigError("RUN_DIR", f"{path} is not a map run directory (it has no run.json)")
    try:
        return path, read_header(path)
    except (OSError, ValueError) as exc:
        raise ConfigError("RUN_DIR", f"cannot read {path / 'run.json'}: {exc}") from None


def coordinator_alive(header: dict[str, Any]) -> bool:
    """Whether the coordinator that wrote ``header`` still runs (on this host; another host's
    counts as alive)."""
    pid = header.get("pid")
    if header.get("status") != "RUNNING" or not pid:
        return False
    if header.get("host") != socket.gethostname():
        return True
    if pid == os.getpid():
        return False  # this process: the coordinator died in it (a scripted death in tests)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _same_run(pid, header)


def _same_run(pid: int, header: dict[str, Any]) -> bool:
    """A live pid may have been reused: it is the run's coordinator only if the process started
    when the header says (Linux ``/proc``; elsewhere any live pid counts)."""
    started = header.get("pidStart")
    now = process_start(pid)
    return started is None or now is None or started == now


def process_start(pid: int) -> int | None:
    """A process's start time in clock ticks since boot (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def finished_result(header: dict[str, Any], backend: str) -> MapRunResult:
    """The result a finished run recorded (what ``resume`` returns for it, doing nothing)."""
    counts = ItemCounts()
    for key, value in (header.get("itemCounts") or {}).items():
        attr = {"timedOut": "timed_out", "resultsWritten": "results_written"}.get(key, key)
        setattr(counts, attr, value)
    return MapRunResult(
        status=header["status"],
        map_run_arn=header["mapRunArn"],
        run_id=header["runId"],
        item_counts=counts,
        start_date=header.get("startDate") or "",
        stop_date=header.get("stopDate") or "",
        error=header.get("error"),
        cause=header.get("cause"),
        manifest=header.get("manifest"),
        backend=backend,
        stats={"nothingToDo": f"the run already {header['status']}"},
    )


def check_input(job: MapJob, header: dict[str, Any]) -> None:
    """Refuse to continue on an input that is not the one the run started on."""
    before = header.get("input") or {}
    change = identity_change(before, input_identity(job.item_reader))
    if change is not None:
        raise ItemReaderFailed(
            cause=f"the input {job.item_reader.source} changed since map run {header['runId']!r} started: "
            f"{change}; refusing to resume (start a new run instead)"
        )


def resume(
    run_dir: str | os.PathLike[str],
    *,
    backend: str = "local",
    function: Any = None,
    progress: ProgressHook | None = None,
    handle_signals: bool = True,
    mask_causes: bool = True,
    stops: StopRequests | None = None,
    max_chunk_items: int = MAX_CHUNK_ITEMS,
    **executor_options: Any,
) -> MapRunResult:
    """Continue the map run in ``run_dir`` (``<Destination>/<run-id>/``).

    Done chunks are neither run nor read again (the reader seeks past them); the result files
    end up holding every item exactly once. A run that SUCCEEDED is returned as it is.
    ``function`` gives the item function again when the run was started with a callable that
    cannot be imported by name.

    Raises:
        ConfigError: ``run_dir`` is not a run directory, or its coordinator is still running.
        ItemReaderFailed: the input changed since the run started.
    """
    path, header = open_run(run_dir)
    if header.get("status") == "SUCCEEDED":
        return finished_result(header, backend)
    if coordinator_alive(header):
        raise ConfigError(
            "RUN_DIR",
            f"map run {header['runId']!r} is still running (pid {header['pid']} on {header['host']})",
        )
    job = _job_of(header, function)
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    check_input(job, header)
    done = replay(path, repair=True)
    _take_over(header)
    return Coordinator(
        job,
        make_executor(backend, **executor_options),
        run_id=header["runId"],
        progress=progress,
        handle_signals=handle_signals,
        mask_causes=mask_causes,
        stops=stops,
        durable=DurableRun(path, header, done),
        max_chunk_items=max_chunk_items,
    ).run()


def _job_of(header: dict[str, Any], function: Any) -> MapJob:
    """The run's job, rebuilt from its snapshot (``function`` stands in for a callable's name)."""
    try:
        return job_from_dict(header["job"], function)
    except ValueError as exc:
        raise ConfigError("function", str(exc)) from None


def _take_over(header: dict[str, Any], **more: Any) -> None:
    """Mark the run RUNNING again, under this process."""
    header.update(
        status="RUNNING",
        stopDate=None,
        error=None,
        cause=None,
        pid=os.getpid(),
        pidStart=process_start(os.getpid()),
        host=socket.gethostname(),
        **more,
    )


def _records(path: Path) -> list[dict[str, Any]]:
    """The records of one result file (a JSON array, or JSON lines)."""
    raw = path.read_bytes()
    if raw.lstrip().startswith(b"["):
        return orjson.loads(raw)
    return [orjson.loads(x) for x in raw.splitlines() if x.strip()]


def _rerun_ranges(
    root: Path, failed: list[dict[str, Any]], pending: list[dict[str, Any]], batched: bool
) -> tuple[list[list[int]], int]:
    """The item ranges the records of the ``failed`` and ``pending`` files cover (sorted, merged),
    and how many records the ``failed`` files hold (results written that a redrive replaces):
    each file is read once."""
    marks: list[tuple[int, int]] = []
    n_failed = 0
    for k, f in enumerate(failed + pending):
        recs = _records(root / f["Key"])
        if k < len(failed):
            n_failed += len(recs)
        for rec in recs:
            index = int(rec["Name"].rsplit("-", 1)[1].split(":", 1)[0])
            count = len(orjson.loads(rec["Input"]).get("Items", [None])) if batched else 1
            marks.append((index, count))
    marks.sort()
    merged: list[list[int]] = []
    for first, count in marks:
        if merged and merged[-1][0] + merged[-1][1] >= first:
            merged[-1][1] = max(merged[-1][1], first + count - merged[-1][0])
        else:
            merged.append([first, count])
    return merged, n_failed


def _complement(ranges: list[list[int]], total: int) -> list[list[int]]:
    out, at = [], 0
    for first, count in ranges:
        if first > at:
            out.append([at, first - at])
        at = max(at, first + count)
    if total > at:
        out.append([at, total - at])
    return out


def _file_number(key: str) -> int:
    return int(key.rsplit("_", 1)[1].split(".", 1)[0])


def redrive(
    run_dir: str | os.PathLike[str],
    *,
    backend: str = "local",
    function: Any = None,
    progress: ProgressHook | None = None,
    handle_signals: bool = True,
    mask_causes: bool = True,
    stops: StopRequests | None = None,
    max_chunk_items: int = MAX_CHUNK_ITEMS,
    **executor_options: Any,
) -> MapRunResult:
    """Run again only the FAILED, timed-out and PENDING items of a finished map run (AWS's
    redrive of a Map Run). The run's ``redriveCount`` goes up by one, its records of the items
    run again carry it as ``RedriveCount``, and the manifest is rewritten: the SUCCEEDED files
    of before plus the new ones, and new FAILED / PENDING files in place of the old (removed).

    Raises:
        ConfigError: the run SUCCEEDED or is RUNNING, or has no manifest to redrive from.
        ItemReaderFailed: the input changed since the run started.
    """
    path, header = open_run(run_dir)
    status, run_id = header.get("status"), header["runId"]
    if status == "SUCCEEDED":
        raise ConfigError(
            "RUN_DIR", f"map run {run_id!r} SUCCEEDED: only a FAILED or ABORTED run can be redriven"
        )
    if status == "RUNNING":
        hint = (
            "still running"
            if coordinator_alive(header)
            else "its coordinator died: `distmap resume` it first"
        )
        raise ConfigError("RUN_DIR", f"map run {run_id!r} is RUNNING ({hint})")
    manifest = header.get("manifest")
    if not manifest or not Path(manifest).exists():
        raise ConfigError(
            "RUN_DIR",
            f"map run {run_id!r} has no manifest (its results were not all written): `distmap resume` it",
        )
    job = _job_of(header, function)
    check_input(job, header)
    m = orjson.loads(Path(manifest).read_bytes())
    root = Path(m["DestinationBucket"])
    files = m["ResultFiles"]
    rerun, failed_records = _rerun_ranges(root, files["FAILED"], files["PENDING"], job.item_batcher is not None)
    counts = header["itemCounts"]
    total = int(counts["total"])
    succeeded_files = files["SUCCEEDED"]
    stored = max(0, int(counts.get("resultsWritten", 0)) - failed_records)
    closed = [
        ["SUCCEEDED", f["Key"], f["Size"], stored if k == 0 else 0] for k, f in enumerate(succeeded_files)
    ]
    marker = {
        "t": "redrive",
        "n": int(header.get("redriveCount") or 0) + 1,
        "done": _complement(rerun, total),
        "c": {"succeeded": counts["succeeded"], "resultsWritten": stored},
        "w": {
            "next": {
                "SUCCEEDED": max((_file_number(f["Key"]) + 1 for f in succeeded_files), default=0),
                "FAILED": 0,
            },
            "open": {},
        },
        "f": closed,
        "total": total,
    }
    rerun_items = sum(c for _, c in rerun)
    _take_over(
        header,
        manifest=None,
        redriveCount=marker["n"],
        redriveDate=iso_now(),
        pendingRedrive=rerun_items,
        redriveBase=counts["succeeded"],
    )
    journal = RunJournal(path, header)
    journal.open(resume=True)
    journal.append(marker)
    journal.close()
    return Coordinator(
        job,
        make_executor(backend, **executor_options),
        run_id=run_id,
        progress=progress,
        handle_signals=handle_signals,
        mask_causes=mask_causes,
        stops=stops,
        durable=DurableRun(path, header, replay(path, repair=True)),
        max_chunk_items=max_chunk_items,
    ).run()
