"""Durable runs on the inline executor (no fork, no Ray): the run journal, scripted coordinator
deaths and ``distmap.resume``. Each test takes well under a second or two.

What is checked, after any number of deaths and resumes:

* the final result files hold every item exactly once, and the same records as an uninterrupted
  run (apart from dates and how records are split over files);
* a resumed run neither runs nor reads again the chunks its journal committed;
* work redone after a death is at most the chunks in flight (the executor's window) plus the
  chunks that finished in the turn the coordinator died in;
* changed input is refused, a finished run is left alone, a torn last journal line is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from distmap.config.parse import parse_job
from distmap.coordinator import Coordinator
from distmap.errors import ItemReaderFailed
from distmap.executors.inline import CoordinatorDied, InlineExecutor
from distmap.runs import resume, start_journal

RUN = "run-1"
CALLS: list[int] = []


def counted(item: dict[str, Any]) -> dict[str, Any]:
    """Records every call (this process only), fails items whose id ends in 7."""
    i = int(item["id"])  # a string in CSV
    CALLS.append(i)
    if i % 10 == 7:
        raise ValueError(f"item {i} fails")
    return {"id": i, "twice": i * 2}


def write_jsonl(path: Path, n: int) -> None:
    path.write_text("".join(json.dumps({"id": i, "pad": "x" * (i % 13)}) + "\n" for i in range(n)))


def write_csv(path: Path, n: int) -> None:
    path.write_text("id,pad\n" + "".join(f"{i},{'y' * (i % 5)}\n" for i in range(n)))


def job_spec(src: Path, out: Path, input_type: str = "JSONL", **extra: Any) -> dict[str, Any]:
    return {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": input_type}},
        "ItemProcessor": {"Function": "test_durable_runs:counted"},
        "ToleratedFailurePercentage": 100,
        "ResultWriter": {"Destination": str(out), "MaxFileBytes": 40_000},
        **extra,
    }


def fresh(spec: dict[str, Any], *, run_id: str = RUN, chunk: int = 40, **inline: Any) -> Any:
    """Start a journaled run on the inline executor (``die=`` scripts a coordinator death)."""
    job = parse_job(spec)
    return Coordinator(
        job,
        InlineExecutor(**inline),
        run_id=run_id,
        handle_signals=False,
        max_chunk_items=chunk,
        durable=start_journal(job, run_id),
    ).run()


def records(manifest: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every record of the files the manifest lists, by status (the sizes must match)."""
    m = json.loads(Path(manifest).read_text())
    out: dict[str, list[dict[str, Any]]] = {}
    for status, files in m["ResultFiles"].items():
        out[status] = []
        for f in files:
            path = Path(m["DestinationBucket"]) / f["Key"]
            assert path.stat().st_size == f["Size"], "the manifest lists only bytes that are there"
            text = path.read_text()
            if path.suffix == ".jsonl":
                out[status].extend(json.loads(line) for line in text.splitlines() if line)
            else:
                out[status].extend(json.loads(text))
    return out


def comparable(recs: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple[str, ...]]]:
    drop = ("StartDate", "StopDate")
    return {
        s: sorted(json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True) for r in rs)
        for s, rs in recs.items()
    }


def run_with_deaths(spec: dict[str, Any], deaths: list[int], *, window: int = 3, per_poll: int = 2) -> Any:
    """Start, die after ``deaths[0]`` chunks, resume and die after ``deaths[1]``, ...; then resume
    to the end. Returns the final result."""
    attempts = [lambda d: fresh(spec, window=window, per_poll=per_poll, die=lambda n: n >= d)]
    run_dir = Path(spec["ResultWriter"]["Destination"]) / RUN
    for d in deaths:
        try:
            if attempts:
                attempts.pop()(d)
            else:
                resume(run_dir, backend="inline", handle_signals=False, max_chunk_items=40,
                       window=window, per_poll=per_poll, die=lambda n, d=d: n >= d)  # fmt: skip
        except CoordinatorDied:
            continue
        raise AssertionError(f"the run ended before its scripted death after {d} chunks")
    return resume(run_dir, backend="inline", handle_signals=False, max_chunk_items=40, window=window)


@pytest.mark.parametrize("input_type", ["JSONL", "CSV"])
def test_resumes_after_deaths_hold_every_item_once_and_equal_an_uninterrupted_run(tmp_path, input_type):
    """Five coordinator deaths at scripted points, each followed by a resume: the final files hold
    each item exactly once, with the records an uninterrupted run writes; counts match the files."""
    n = 3000
    src = tmp_path / ("in.csv" if input_type == "CSV" else "in.jsonl")
    (write_csv if input_type == "CSV" else write_jsonl)(src, n)
    whole = fresh(job_spec(src, tmp_path / "whole", input_type), window=3)
    res = run_with_deaths(job_spec(src, tmp_path / "out", input_type), [3, 5, 1, 7, 4])
    assert res.status == whole.status == "SUCCEEDED"
    got, want = records(res.manifest), records(whole.manifest)
    ids = [int(json.loads(r["Input"])["id"]) for rs in got.values() for r in rs]
    assert sorted(ids) == list(range(n)), "every item exactly once"
    assert comparable(got) == comparable(want)
    c = res.item_counts
    assert (c.succeeded, c.failed, c.pending, c.total) == (n - n // 10, n // 10, 0, n)
    assert c.results_written == n


def test_redone_work_after_a_death_is_at_most_the_window(tmp_path):
    """Items run more than once across a death are at most the chunks in flight plus the ones
    that finished in the coordinator's last turn: window + per_poll chunks of 40 items."""
    n, window, per_poll = 4000, 3, 2
    write_jsonl(tmp_path / "in.jsonl", n)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out")
    CALLS.clear()
    res = run_with_deaths(spec, [6, 9, 2], window=window, per_poll=per_poll)
    assert res.status == "SUCCEEDED"
    redone = len(CALLS) - n
    assert sorted(set(CALLS)) == list(range(n))
    assert 0 < redone <= 3 * (window + per_poll) * 40


def test_resume_does_not_read_the_done_part_of_the_input_again(tmp_path):
    """The done prefix of the input is overwritten with garbage (same size and modification
    time, so the input's identity holds): the resume still succeeds, since it seeks past it."""
    n = 3000
    src = tmp_path / "in.jsonl"
    write_jsonl(src, n)
    spec = job_spec(src, tmp_path / "out")
    with pytest.raises(CoordinatorDied):
        fresh(spec, window=2, die=lambda k: k >= 30)
    journal = [json.loads(x) for x in (tmp_path / "out" / RUN / "journal.jsonl").read_text().splitlines()]
    first_pending = max(r[0] + r[1] for line in journal if line["t"] == "c" for r in line["r"])
    done_bytes = sum(len(json.dumps({"id": i, "pad": "x" * (i % 13)})) + 1 for i in range(first_pending - 200))
    st = src.stat()
    with open(src, "r+b") as fh:
        fh.write(b"!" * done_bytes)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    CALLS.clear()
    res = resume(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res.status == "SUCCEEDED", res.cause
    assert min(CALLS) >= first_pending - 3 * 40, "only work past the journal's watermark ran"
    ids = sorted(int(json.loads(r["Input"])["id"]) for rs in records(res.manifest).values() for r in rs)
    assert ids == list(range(n))


def test_resume_refuses_changed_input(tmp_path):
    """An input that grew after the run started is refused with ItemReaderFailed naming the change."""
    src = tmp_path / "in.jsonl"
    write_jsonl(src, 2000)
    with pytest.raises(CoordinatorDied):
        fresh(job_spec(src, tmp_path / "out"), die=lambda k: k >= 5)
    with open(src, "a") as fh:
        fh.write('{"id": 99999}\n')
    with pytest.raises(ItemReaderFailed, match="changed since map run 'run-1' started: its size changed"):
        resume(tmp_path / "out" / RUN, backend="inline", handle_signals=False)


def test_resuming_a_finished_run_is_a_no_op(tmp_path):
    """A SUCCEEDED run is returned as it is: nothing runs, no file changes."""
    write_jsonl(tmp_path / "in.jsonl", 500)
    first = fresh(job_spec(tmp_path / "in.jsonl", tmp_path / "out"))
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / RUN).iterdir()}
    CALLS.clear()
    again = resume(tmp_path / "out" / RUN, backend="inline")
    assert again.status == "SUCCEEDED" and again.stats == {"nothingToDo": "the run already SUCCEEDED"}
    assert again.item_counts.to_dict() == first.item_counts.to_dict()
    assert CALLS == []
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / RUN).iterdir()} == before


def test_a_torn_last_journal_line_is_ignored(tmp_path):
    """A journal whose last line was cut short (the coordinator died writing it) resumes from the
    line before, and the run still ends with every item once."""
    n = 2000
    write_jsonl(tmp_path / "in.jsonl", n)
    with pytest.raises(CoordinatorDied):
        fresh(job_spec(tmp_path / "in.jsonl", tmp_path / "out"), die=lambda k: k >= 12)
    path = tmp_path / "out" / RUN / "journal.jsonl"
    path.write_bytes(path.read_bytes()[:-25])
    res = resume(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    ids = sorted(int(json.loads(r["Input"])["id"]) for rs in records(res.manifest).values() for r in rs)
    assert ids == list(range(n))


def test_an_aborted_run_resumes_and_its_pending_files_go(tmp_path):
    """A stop request ends the run ABORTED with PENDING files and a manifest; a resume runs the
    pending items, removes the PENDING files and writes a manifest with every item once."""
    n = 3000
    write_jsonl(tmp_path / "in.jsonl", n)
    job = parse_job(job_spec(tmp_path / "in.jsonl", tmp_path / "out"))
    ex = InlineExecutor(window=2)
    coord = Coordinator(job, ex, run_id=RUN, handle_signals=False, max_chunk_items=40,
                        durable=start_journal(job, RUN))  # fmt: skip
    ex.die = lambda k: (k >= 10 and coord.request_abort()) or False
    res = coord.run()
    assert res.status == "ABORTED" and res.item_counts.pending + res.item_counts.aborted > 0
    assert records(res.manifest)["PENDING"]
    header = json.loads((tmp_path / "out" / RUN / "run.json").read_text())
    assert header["status"] == "ABORTED"
    again = resume(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert again.status == "SUCCEEDED"
    got = records(again.manifest)
    assert got["PENDING"] == []
    assert sorted(int(json.loads(r["Input"])["id"]) for rs in got.values() for r in rs) == list(range(n))
    assert not [p for p in (tmp_path / "out" / RUN).iterdir() if p.name.startswith(("PENDING", "."))]


def test_a_directory_of_files_resumes_past_whole_files(tmp_path):
    """Several input files: the resume skips the done files unopened and seeks inside the current one."""
    d = tmp_path / "in"
    d.mkdir()
    for k in range(4):
        (d / f"{k}.jsonl").write_text("".join(json.dumps({"id": k * 700 + i}) + "\n" for i in range(700)))
    spec = job_spec(d, tmp_path / "out")
    res = run_with_deaths(spec, [20, 15])
    ids = sorted(int(json.loads(r["Input"])["id"]) for rs in records(res.manifest).values() for r in rs)
    assert ids == list(range(2800))


def test_a_run_without_result_writer_journals_under_the_state_dir(tmp_path, monkeypatch):
    """No ResultWriter: the journal goes to $DISTMAP_STATE_DIR/<run-id>/, and resume finishes the
    counts there."""
    monkeypatch.setenv("DISTMAP_STATE_DIR", str(tmp_path / "state"))
    write_jsonl(tmp_path / "in.jsonl", 2000)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "unused")
    del spec["ResultWriter"]
    with pytest.raises(CoordinatorDied):
        fresh(spec, die=lambda k: k >= 8)
    assert (tmp_path / "state" / RUN / "journal.jsonl").exists()
    res = resume(tmp_path / "state" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    c = res.item_counts
    assert (res.status, c.succeeded, c.failed, c.total) == ("SUCCEEDED", 1800, 200, 2000)


# ----------------------------------------------------------------------------- redrive
FLAKY = {"fail": True}


def flaky(item: dict[str, Any]) -> dict[str, Any]:
    """Items whose id ends in 3 fail while FLAKY["fail"] is set (a downstream outage)."""
    i = int(item["id"])
    CALLS.append(i)
    if FLAKY["fail"] and i % 10 == 3:
        raise ConnectionError(f"item {i}: service unavailable")
    return {"id": i}


def test_redrive_reruns_only_failed_and_pending_items_with_aws_redrive_fields(tmp_path):
    """A run FAILED by its threshold (failed items, the rest PENDING) is redriven once the outage
    is over: only the FAILED and PENDING items run again; their records carry RedriveCount 1;
    the manifest is rewritten (no FAILED / PENDING files left, every item once across files);
    describe reports redriveCount 1 and a redriveDate."""
    from distmap.describe import describe_map_run as describe
    from distmap.runs import redrive

    n = 3000
    write_jsonl(tmp_path / "in.jsonl", n)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out", ToleratedFailureCount=150)
    spec["ItemProcessor"]["Function"] = "test_durable_runs:flaky"
    del spec["ToleratedFailurePercentage"]
    FLAKY["fail"] = True
    first = fresh(spec, window=2)
    assert first.status == "FAILED" and first.error == "States.ExceedToleratedFailureThreshold"
    before = records(first.manifest)
    assert before["PENDING"] and before["FAILED"]
    rerun = {int(json.loads(r["Input"])["id"]) for s in ("FAILED", "PENDING") for r in before[s]}
    FLAKY["fail"] = False
    CALLS.clear()
    res = redrive(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res.status == "SUCCEEDED", res.cause
    assert sorted(CALLS) == sorted(rerun), "only the FAILED and PENDING items ran again"
    after = records(res.manifest)
    assert after["FAILED"] == [] and after["PENDING"] == []
    ids = [int(json.loads(r["Input"])["id"]) for rs in after.values() for r in rs]
    assert sorted(ids) == list(range(n)), "no item twice across files"
    redriven = [r for r in after["SUCCEEDED"] if int(json.loads(r["Input"])["id"]) in rerun]
    kept = [r for r in after["SUCCEEDED"] if int(json.loads(r["Input"])["id"]) not in rerun]
    assert {r["RedriveCount"] for r in redriven} == {1} and {r["RedriveCount"] for r in kept} == {0}
    assert {r["RedriveStatus"] for r in after["SUCCEEDED"]} == {"NOT_REDRIVABLE"}
    c = res.item_counts
    assert (c.succeeded, c.failed, c.pending, c.total, c.results_written) == (n, 0, 0, n, n)
    d = describe(tmp_path / "out" / RUN)
    assert d["status"] == "SUCCEEDED" and d["redriveCount"] == 1 and d["redriveDate"]
    assert d["itemCounts"]["succeeded"] == n


def test_a_redrive_whose_items_fail_again_keeps_them_redrivable(tmp_path):
    """Items still failing on redrive are in new FAILED files with RedriveCount 1 and
    RedriveStatus REDRIVABLE; a second redrive counts 2."""
    from distmap.runs import redrive

    write_jsonl(tmp_path / "in.jsonl", 1000)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out", ToleratedFailureCount=0)
    spec["ItemProcessor"]["Function"] = "test_durable_runs:flaky"
    del spec["ToleratedFailurePercentage"]
    FLAKY["fail"] = True
    assert fresh(spec).status == "FAILED"
    res = redrive(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res.status == "FAILED"
    got = records(res.manifest)
    assert got["FAILED"] and {(r["RedriveCount"], r["RedriveStatus"]) for r in got["FAILED"]} == {(1, "REDRIVABLE")}
    ids = [int(json.loads(r["Input"])["id"]) for rs in got.values() for r in rs]
    assert sorted(ids) == list(range(1000))
    FLAKY["fail"] = False
    res2 = redrive(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res2.status == "SUCCEEDED"
    assert json.loads((tmp_path / "out" / RUN / "run.json").read_text())["redriveCount"] == 2


def test_redrive_refuses_a_succeeded_run(tmp_path):
    """Only FAILED or ABORTED runs can be redriven, as on AWS."""
    from distmap.errors import ConfigError
    from distmap.runs import redrive

    write_jsonl(tmp_path / "in.jsonl", 100)
    fresh(job_spec(tmp_path / "in.jsonl", tmp_path / "out"))
    with pytest.raises(ConfigError, match="SUCCEEDED: only a FAILED or ABORTED run can be redriven"):
        redrive(tmp_path / "out" / RUN, backend="inline")


def test_a_redrive_that_dies_is_resumed_to_the_same_end(tmp_path):
    """The coordinator dies during a redrive; ``resume`` finishes the redrive: every item once."""
    from distmap.runs import redrive

    n = 3000
    write_jsonl(tmp_path / "in.jsonl", n)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out", ToleratedFailureCount=0)
    spec["ItemProcessor"]["Function"] = "test_durable_runs:flaky"
    del spec["ToleratedFailurePercentage"]
    FLAKY["fail"] = True
    assert fresh(spec, window=4).status == "FAILED"
    FLAKY["fail"] = False
    with pytest.raises(CoordinatorDied):
        redrive(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40,
                die=lambda k: k >= 6)  # fmt: skip
    res = resume(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res.status == "SUCCEEDED"
    got = records(res.manifest)
    ids = [int(json.loads(r["Input"])["id"]) for rs in got.values() for r in rs]
    assert sorted(ids) == list(range(n))
    assert res.item_counts.results_written == n


def test_a_journal_ahead_of_its_result_files_resumes_from_the_last_line_they_hold(tmp_path):
    """After a power loss the journal may reach the disk before the result bytes it covers: the
    open result file is cut short here to simulate it. The resume stops its replay at the first
    line claiming more than the files hold, cuts the journal there, and still ends with every
    item once."""
    n = 3000
    write_jsonl(tmp_path / "in.jsonl", n)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out")
    spec["ResultWriter"]["MaxFileBytes"] = 10_000_000  # one open SUCCEEDED file
    with pytest.raises(CoordinatorDied):
        fresh(spec, window=2, die=lambda k: k >= 40)
    run_dir = tmp_path / "out" / RUN
    part = run_dir / ".SUCCEEDED_0.json.part"
    lines_before = (run_dir / "journal.jsonl").read_text().count("\n")
    with open(part, "r+b") as fh:
        fh.truncate(part.stat().st_size // 2)
    res = resume(run_dir, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res.status == "SUCCEEDED", res.cause
    ids = sorted(int(json.loads(r["Input"])["id"]) for rs in records(res.manifest).values() for r in rs)
    assert ids == list(range(n))
    assert lines_before > 2


def test_resume_refuses_a_run_whose_coordinator_still_runs(tmp_path):
    """A RUNNING header naming a live process (pid and start time) is refused; a header whose
    pid now belongs to another process (start time differs) is not."""
    import subprocess
    import sys

    from distmap.errors import ConfigError
    from distmap.runs import process_start

    write_jsonl(tmp_path / "in.jsonl", 500)
    with pytest.raises(CoordinatorDied):
        fresh(job_spec(tmp_path / "in.jsonl", tmp_path / "out"), die=lambda k: k >= 2)
    run_dir = tmp_path / "out" / RUN
    header_path = run_dir / "run.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        header = json.loads(header_path.read_text())
        header.update(pid=other.pid, pidStart=process_start(other.pid))
        header_path.write_text(json.dumps(header))
        with pytest.raises(ConfigError, match="is still running"):
            resume(run_dir, backend="inline", handle_signals=False)
        header["pidStart"] = (header["pidStart"] or 0) - 1  # the pid was reused by another process
        header_path.write_text(json.dumps(header))
        assert resume(run_dir, backend="inline", handle_signals=False).status == "SUCCEEDED"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("limit", [5_000, 30_000, 70_000])
@pytest.mark.parametrize("output", ["JSON", "JSONL"])
def test_a_write_that_fails_ends_failed_and_the_resume_completes_every_item_once(tmp_path, limit, output):
    """RLIMIT_FSIZE (this process, soft limit only) makes a result file fail past ``limit`` bytes
    ("File too large"): the run ends FAILED with States.ResultWriterFailed and no manifest; with
    the limit lifted, a resume cuts the part files back to what the journal committed and ends
    with every item once, counts equal to the files."""
    import resource
    import signal

    n = 3000
    write_jsonl(tmp_path / "in.jsonl", n)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out")
    spec["ResultWriter"].update(MaxFileBytes=100_000, WriterConfig={"OutputType": output})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        first = fresh(spec, window=3, per_poll=2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert (first.status, first.error, first.manifest) == ("FAILED", "States.ResultWriterFailed", None)
    assert "File too large" in (first.cause or "")
    res = resume(tmp_path / "out" / RUN, backend="inline", handle_signals=False, max_chunk_items=40)
    assert res.status == "SUCCEEDED", res.cause
    got = records(res.manifest)
    ids = sorted(int(json.loads(r["Input"])["id"]) for rs in got.values() for r in rs)
    assert ids == list(range(n))
    c = res.item_counts
    assert (c.succeeded, c.failed, c.total, c.results_written) == (n - n // 10, n // 10, n, n)


def test_a_run_of_a_callable_that_cannot_be_imported_resumes_with_the_function_given_again(tmp_path):
    """``distmap.run`` with a closure: the snapshot cannot name it, so ``resume`` without
    ``function=`` is refused saying so, and with it the run completes."""
    from distmap.errors import ConfigError

    write_jsonl(tmp_path / "in.jsonl", 1000)
    spec = job_spec(tmp_path / "in.jsonl", tmp_path / "out")
    factor = 3
    spec["ItemProcessor"]["Function"] = lambda item: {"id": item["id"] * factor}
    with pytest.raises(CoordinatorDied):
        fresh(spec, die=lambda k: k >= 3)
    run_dir = tmp_path / "out" / RUN
    assert json.loads((run_dir / "run.json").read_text())["job"]["processor"]["function"] is None
    with pytest.raises(ConfigError, match="cannot be imported: pass function="):
        resume(run_dir, backend="inline", handle_signals=False)
    res = resume(run_dir, backend="inline", handle_signals=False, function=lambda item: {"id": item["id"] * factor})
    assert res.status == "SUCCEEDED" and res.item_counts.succeeded == 1000
