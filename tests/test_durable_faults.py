"""Result-store faults on a journaled run: the run ends FAILED with States.ResultWriterFailed (no
manifest), and a later ``distmap resume``, once the store works again, completes the run with
every item exactly once; no manifest ever lists data that is not there (``check_run_dir``
compares every listed file with the disk)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faults import ROOT, TESTS, check_run_dir, start, write_job


def _rows(n: int, pad: int) -> list[dict[str, Any]]:
    return [{"id": i, "pad": "x" * pad} for i in range(n)]


def _resume(run_dir: Path, cwd: Path) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}
    p = subprocess.run(
        [sys.executable, "-m", "distmap", "resume", str(run_dir), "--no-progress"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else {}, p.stderr


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _failed_then_resumed(d: Path, code: int | None, out: str, err: str, n: int) -> None:
    assert code == 1, err[-3000:]
    summary = json.loads(out)
    assert (summary["status"], summary["error"]) == ("FAILED", "States.ResultWriterFailed")
    run_dir = d / "out" / "run"
    assert not check_run_dir(run_dir, n)["manifest"]
    # a full disk may refuse the header's last write too: then it still says RUNNING (resumable)
    assert json.loads((run_dir / "run.json").read_text())["status"] in ("FAILED", "RUNNING")
    code, again, err = _resume(run_dir, d)
    assert code == 0, err[-3000:]
    assert again["status"] == "SUCCEEDED"
    c = again["itemCounts"]
    assert (c["succeeded"], c["total"], c["resultsWritten"], c["pending"]) == (n, n, n, 0)
    state = check_run_dir(run_dir, n)
    assert state["manifest"] and sorted(state["by_status"]["SUCCEEDED"]) == list(range(n))


def test_an_injected_writer_fault_fails_the_run_and_a_resume_completes_it(tmp_path):
    """RLIMIT_FSIZE makes SUCCEEDED_0.json fail at 300 kB ("File too large"): FAILED, no manifest;
    the resume (no limit) cuts the part file back to what the journal committed and finishes."""
    n = 6000
    job = write_job(tmp_path, "itemfns:echo", _rows(n, 100), "ResultWriter: {Destination: out, MaxFileBytes: 2000000}\n")
    run = start([str(job), "--run-id", "run"], cwd=tmp_path, preexec_fn=lambda: _limit_file_size(300_000))
    _failed_then_resumed(tmp_path, *run.finish(60), n)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root; skipped otherwise), grown to 64 MiB by calling the fixture's value."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)

    try:
        yield mnt, grow
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_fails_the_run_and_a_resume_after_freeing_space_completes_it(small_disk):
    """A full disk (2 MiB tmpfs): FAILED with "No space left on device", no manifest; once the
    disk has room, a resume finishes the run with each item once."""
    mnt, grow = small_disk
    n = 20000
    job = write_job(mnt, "itemfns:echo", _rows(n, 20), "ResultWriter: {Destination: out, MaxFileBytes: 262144}\n")
    code, out, err = start([str(job), "--run-id", "run"], cwd=mnt).finish(60)
    assert "No space left on device" in json.loads(out)["cause"]
    grow()
    _failed_then_resumed(mnt, code, out, err, n)
