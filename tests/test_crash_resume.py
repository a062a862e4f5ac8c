"""Crash fault test: a real ``distmap run`` (local backend, worker processes) is SIGKILLed at
random moments, and ``distmap resume`` (SIGKILLed too, at random) continues it after each kill.

Every time, the final result files hold each item exactly once, with the records an
uninterrupted run writes (apart from dates and file splits), and the work run again after a kill
is at most the in-flight window (the chunks the executor held: workers x chunks per worker x the
largest chunk).

Kill points: ``DISTMAP_FAULT_TRIALS`` (the full count is 20) or a CI-sized 3; 200,000 items.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from faults import ROOT, TESTS, trials

from distmap.contract import MAX_CHUNK_ITEMS
from distmap.journal import last_line

N = 200_000
JOB = (
    "StateMachineName: crash\n"
    "ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}\n"
    "ItemProcessor: {Function: 'durablefns:logged'}\n"
    "ToleratedFailurePercentage: 5\n"
    "ResultWriter: {Destination: %s, MaxFileBytes: 3000000}\n"
)


def _env(calls: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", "DISTMAP_TEST_CALLS": str(calls)}


def _start(args: list[str], cwd: Path, calls: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "distmap", *args, "--no-progress", "--log-level", "warning"],
        cwd=cwd,
        env=_env(calls),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _records(run_dir: Path) -> dict[str, list[str]]:
    m = json.loads((run_dir / "manifest.json").read_text())
    out: dict[str, list[str]] = {}
    for status, files in m["ResultFiles"].items():
        out[status] = []
        for f in files:
            path = Path(m["DestinationBucket"]) / f["Key"]
            assert path.stat().st_size == f["Size"]
            for r in json.loads(path.read_text()):
                r.pop("StartDate")
                r.pop("StopDate")
                out[status].append(json.dumps(r, sort_keys=True))
    return {s: sorted(v) for s, v in out.items()}


def _done(run_dir: Path) -> int:
    """Items the run's journal says are done (0 before it has one)."""
    line = last_line(run_dir) if (run_dir / "journal.jsonl").exists() else None
    c = (line or {}).get("c") or {}
    return c.get("succeeded", 0) + c.get("failed", 0)


def _ids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


@pytest.mark.timeout(600)  # seconds on a quiet machine; minutes when the machine is overloaded
def test_sigkill_at_random_moments_then_resume_gives_exactly_once_results(tmp_path):
    """SIGKILL the coordinator at random moments (the first run, then each resume); a last resume
    ends the run: each item once in the files, the records of an uninterrupted run, counts equal
    to the files, and at most a window of items run again after each kill."""
    _kill_and_resume(tmp_path, [], trials(3))


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_and_resume_on_the_ray_backend_gives_exactly_once_results(tmp_path):
    """The same on ``--backend ray`` (each attempt starts its own local cluster, which dies with
    its coordinator): at least 5 kill points."""
    _kill_and_resume(tmp_path, ["--backend", "ray", "--num-cpus", "2"], max(5, trials(5)))


def _kill_and_resume(tmp_path: Path, backend: list[str], kills: int) -> None:
    rng = random.Random(int(os.environ.get("DISTMAP_FAULT_SEED", "16")))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(N)))
    (tmp_path / "whole.yaml").write_text(JOB % "whole")
    (tmp_path / "job.yaml").write_text(JOB % "out")
    ref = _start(["run", "whole.yaml", "--run-id", "r", *backend], tmp_path, tmp_path / "calls-ref")
    _, err = ref.communicate(timeout=120)
    assert ref.returncode == 0, err.decode()[-2000:]

    window = (os.cpu_count() or 1) * 2 * MAX_CHUNK_ITEMS  # workers x chunks per worker x largest chunk
    run_dir = tmp_path / "out" / "r"
    # kill points: random amounts of finished work, each plus a random delay, so a kill lands
    # anywhere in the coordinator's loop (reading, writing, between a write and its journal line)
    targets = sorted(rng.sample(range(1, N - N // 20), kills))
    attempts: list[Path] = []
    killed = 0
    for k, target in enumerate(targets):
        calls = tmp_path / f"calls-{k}"
        attempts.append(calls)
        started = (run_dir / "run.json").exists()
        args = ["resume", str(run_dir)] if started else ["run", "job.yaml", "--run-id", "r"]
        proc = _start([*args, *backend], tmp_path, calls)
        while proc.poll() is None and _done(run_dir) < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)  # the coordinator only: its workers die with it
            killed += 1
        proc.communicate(timeout=120)
    attempts.append(tmp_path / "calls-final")
    fin = _start(["resume", str(run_dir), *backend], tmp_path, attempts[-1])
    out, err = fin.communicate(timeout=120)
    assert fin.returncode == 0, err.decode()[-2000:]
    summary: dict[str, Any] = json.loads(out)
    assert summary["status"] == "SUCCEEDED"
    assert killed >= kills - 1, f"only {killed} of {kills} kills landed while the run was going"

    got, want = _records(run_dir), _records(tmp_path / "whole" / "r")
    assert got == want, "the same records as an uninterrupted run, each item once"
    ids = sorted(json.loads(json.loads(r)["Input"])["id"] for rs in got.values() for r in rs)
    assert ids == list(range(N))
    header = json.loads((run_dir / "run.json").read_text())
    c = header["itemCounts"]
    assert (c["succeeded"] + c["failed"], c["total"], c["resultsWritten"]) == (N, N, N)
    assert c["failed"] == len(got["FAILED"])

    seen: set[int] = set()
    redone_most = 0
    for k, calls in enumerate(attempts):
        ran = _ids(calls)
        redone = sum(1 for i in ran if i in seen)
        assert redone <= window, f"attempt {k} ran {redone} items again (window {window})"
        redone_most = max(redone_most, redone)
        seen.update(ran)
    assert seen == set(range(N))
    print(f"crash-resume: {killed} kills landed in {len(attempts) - 1} attempts; most items run again "
          f"after a kill: {redone_most} (window {window})")  # fmt: skip
