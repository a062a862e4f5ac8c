"""``distmap describe``, ``list`` and ``update`` on a real running ``distmap run`` (local backend):

* describe is live: while the run goes its counts move, and the journal line they come from is
  at most ~2 s old;
* update changes the limits of the running run within ~2 s: a lower MaxConcurrency caps the
  items in flight, a lower tolerated failure percentage fails the run by its threshold;
* list shows the runs under a destination, newest first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from faults import ROOT, TESTS, start

from distmap.describe import describe_map_run as describe
from distmap.describe import list_map_runs as list_runs
from distmap.journal import last_line


def _job(tmp: Path, n: int, extra: str) -> Path:
    rows = [{"id": i, "ms": 4, "fail": i % 10 == 0} for i in range(n)]
    (tmp / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = tmp / "job.yaml"
    job.write_text(
        "ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}\n"
        "ItemProcessor: {Function: 'durablefns:slow'}\nResultWriter: {Destination: out}\n" + extra
    )
    return job


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": f"{ROOT}:{TESTS}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "distmap", *args], capture_output=True, text=True, env=env)


def _wait_journal(run_dir: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = last_line(run_dir) if (run_dir / "journal.jsonl").exists() else None
        if line and (line.get("c") or {}).get("succeeded", 0) > 0:
            return
        time.sleep(0.05)
    raise AssertionError("the run journaled nothing")


def test_describe_is_live_and_update_fails_the_run_by_its_new_threshold(tmp_path):
    """Counts move between two describes 1 s apart, from a journal line under 2 s old; after
    ``update --tolerated-failure-percentage 0`` the run ends FAILED by its threshold within ~2 s."""
    job = _job(tmp_path, 4000, "MaxConcurrency: 4\nToleratedFailurePercentage: 100\n")
    run = start([str(job), "--run-id", "live"], cwd=tmp_path)
    run_dir = tmp_path / "out" / "live"
    _wait_journal(run_dir)
    first = json.loads(_cli("describe", str(run_dir)).stdout)
    time.sleep(1.0)
    second = describe(run_dir)
    age = time.time() - last_line(run_dir)["at"]
    assert first["status"] == second["status"] == "RUNNING"
    assert second["itemCounts"]["succeeded"] > first["itemCounts"]["succeeded"]
    assert age < 2.0, f"the counts are {age:.1f} s old"
    assert set(second["itemCounts"]) == set(second["executionCounts"]) == {
        "pending", "running", "succeeded", "failed", "timedOut", "aborted", "total", "resultsWritten",
        "failuresNotRedrivable", "pendingRedrive",
    }  # fmt: skip
    r = _cli("update", str(run_dir), "--tolerated-failure-percentage", "0")
    asked = time.time()  # update.json is in place
    assert r.returncode == 0, r.stderr
    code, out, err = run.finish(30)
    took = time.time() - asked
    summary = json.loads(out)
    assert code == 1 and summary["error"] == "States.ExceedToleratedFailureThreshold", err[-2000:]
    assert took < 2.0, f"the run took {took:.1f} s to end after the update"
    d = describe(run_dir)
    assert d["status"] == "FAILED" and d["toleratedFailurePercentage"] == 0.0
    assert "stopDate" in d


def test_update_max_concurrency_caps_the_items_in_flight(tmp_path):
    """``update --max-concurrency 1``: within ~2 s at most one item is in flight, and the run
    still ends with every item once."""
    job = _job(tmp_path, 2500, "MaxConcurrency: 8\nToleratedFailurePercentage: 100\n")
    run = start([str(job), "--run-id", "cap"], cwd=tmp_path)
    run_dir = tmp_path / "out" / "cap"
    _wait_journal(run_dir)
    r = _cli("update", str(run_dir), "--max-concurrency", "1")
    assert r.returncode == 0, r.stderr
    time.sleep(2.0)
    seen = []
    for _ in range(10):
        seen.append(describe(run_dir)["itemCounts"]["running"])
        time.sleep(0.1)
    assert max(seen) <= 1, seen
    code, out, err = run.finish(60)
    assert code == 0, err[-2000:]
    assert json.loads(out)["itemCounts"]["total"] == 2500
    assert describe(run_dir)["maxConcurrency"] == 1


def test_list_shows_runs_newest_first_and_describe_errors_are_clear(tmp_path):
    """``distmap list DEST`` lists both runs, newest first, with status and counts; describe of a
    directory that is not a run exits 2 naming it."""
    job = _job(tmp_path, 50, "")
    for rid in ("a", "b"):
        code, _out, err = start([str(job), "--run-id", rid, "--set", "ToleratedFailurePercentage=100"],
                               cwd=tmp_path).finish(60)  # fmt: skip
        assert code == 0, err
    runs = list_runs(tmp_path / "out")
    assert [Path(r["runDir"]).name for r in runs] == ["b", "a"]
    assert runs[0]["status"] == "SUCCEEDED" and runs[0]["itemCounts"]["failed"] == 5
    text = _cli("list", str(tmp_path / "out")).stdout
    assert text.index("/out/b") < text.index("/out/a")
    bad = _cli("describe", str(tmp_path))
    assert bad.returncode == 2 and "is not a map run directory (it has no run.json)" in bad.stderr


def test_sigterm_ends_aborted_with_pending_files_and_the_run_stays_resumable(tmp_path):
    """SIGTERM to ``distmap run``: exit 130, ABORTED, unrun items in PENDING files; ``distmap
    resume`` then finishes the run (exit 0) with every item once and no PENDING file left."""
    import signal

    job = _job(tmp_path, 3000, "MaxConcurrency: 4\nToleratedFailurePercentage: 100\n")
    run = start([str(job), "--run-id", "term"], cwd=tmp_path)
    run_dir = tmp_path / "out" / "term"
    _wait_journal(run_dir)
    run.proc.send_signal(signal.SIGTERM)
    code, out, err = run.finish(30)
    summary = json.loads(out)
    assert code == 130 and summary["status"] == "ABORTED", err[-2000:]
    assert summary["itemCounts"]["pending"] + summary["itemCounts"]["aborted"] > 0
    assert json.loads((run_dir / "manifest.json").read_text())["ResultFiles"]["PENDING"]
    r = _cli("resume", str(run_dir), "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads(r.stdout)
    assert again["status"] == "SUCCEEDED" and again["itemCounts"]["total"] == 3000
    m = json.loads((run_dir / "manifest.json").read_text())
    assert m["ResultFiles"]["PENDING"] == []
    ids = []
    for files in m["ResultFiles"].values():
        for f in files:
            ids += [json.loads(r["Input"])["id"] for r in json.loads((run_dir.parent / f["Key"]).read_text())]
    assert sorted(ids) == list(range(3000))
