"""Signals at random moments never hang distmap, never print a traceback, and never leave a result
that lies: every run ends within 10 s with a correct manifest (every item exactly once) or none.

The fault tests run a CI-sized number of trials; ``DISTMAP_FAULT_TRIALS=50`` runs the full count.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
from faults import check_run_dir, start, trials, write_job

N = 3000
EXIT_WITHIN = 10.0
#: one or two signals to the coordinator, and how far apart (seconds)
PATTERNS = [
    ("SIGINT",),
    ("SIGINT", "SIGINT", 0.0, 0.005),
    ("SIGTERM", "SIGINT", 0.0, 0.005),
    ("SIGTERM",),
    ("SIGINT", "SIGINT", 0.02, 0.3),
    ("SIGTERM", "SIGTERM", 0.0, 0.005),
]


def _job(tmp_path: Path) -> Path:
    rows = [{"id": i, "ms": 4} for i in range(N)]
    return write_job(tmp_path, "itemfns:sleep_ms", rows, "MaxConcurrency: 8\n")


def _check_stopped(tmp_path: Path, code: int | None, out: str, err: str, what: str) -> dict:
    assert code is not None, f"{what}: still running {EXIT_WITHIN} s after the signal\n{err[-3000:]}"
    assert "Traceback" not in err, f"{what}:\n{err[-3000:]}"
    assert code == 130, f"{what}: exit {code}\n{err[-3000:]}"
    state = check_run_dir(tmp_path / "out" / "run", N)
    if out.strip():  # the summary, when one was printed, agrees with the files
        summary = json.loads(out)
        assert summary["status"] == "ABORTED"
        c = summary["itemCounts"]
        stored = len(state["by_status"]["SUCCEEDED"]) + len(state["by_status"]["FAILED"])
        assert c["resultsWritten"] == stored, (c, stored)
        assert c["succeeded"] + c["failed"] + c["timedOut"] + c["pending"] + c["aborted"] == c["total"]
        if state["manifest"]:
            assert c["total"] == N and summary["manifest"].endswith("manifest.json")
            assert c["pending"] + c["aborted"] == len(state["by_status"]["PENDING"])
        else:
            assert "manifest" not in summary
    return state


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_signals_at_random_moments_exit_130_with_a_correct_manifest_or_none(tmp_path):
    """One or two SIGINT / SIGTERM (0-5 ms or 20-300 ms apart) at a random moment of a running
    `distmap run`: exit 130 within 10 s, no traceback, and either a manifest with every item
    exactly once or no manifest (and then no half-written file)."""
    rng = random.Random(12)
    outcomes = {"manifest": 0, "none": 0}
    for trial in range(trials(8)):
        d = tmp_path / f"t{trial}"
        d.mkdir()
        job = _job(d)
        pattern = PATTERNS[trial % len(PATTERNS)]
        run = start([str(job), "--run-id", "run"], cwd=d)
        run.wait_started()
        time.sleep(rng.uniform(0.0, 1.5))
        run.proc.send_signal(getattr(signal, pattern[0]))
        sent = time.monotonic()
        if len(pattern) > 1:
            time.sleep(rng.uniform(pattern[2], pattern[3]))
            run.proc.send_signal(getattr(signal, pattern[1]))
        code, out, err = run.finish(EXIT_WITHIN)
        assert time.monotonic() - sent < EXIT_WITHIN + 1
        state = _check_stopped(d, code, out, err, f"trial {trial} {pattern}")
        outcomes["manifest" if state["manifest"] else "none"] += 1
        if len(pattern) == 1:  # a single stop is graceful: it always writes the manifest
            assert state["manifest"], err[-2000:]
    print("signal trials:", outcomes)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_to_one_worker_is_a_worker_crash_and_the_run_completes(tmp_path):
    """SIGTERM to one worker process (not the coordinator) kills just that worker: it is replaced,
    its chunk runs again, nobody is told to "press Ctrl-C again", and the run SUCCEEDS with every
    item exactly once. With a SIGINT to the coordinator 0-5 ms later, it is an ordinary abort."""
    rng = random.Random(7)
    for trial in range(max(2, trials(8) // 2)):
        d = tmp_path / f"w{trial}"
        d.mkdir()
        job = _job(d)
        run = start([str(job), "--run-id", "run"], cwd=d)
        run.wait_started()
        time.sleep(rng.uniform(0.0, 1.0))
        workers = run.workers()
        assert workers, "the workers should be running"
        victim = rng.choice(workers)
        also_coordinator = trial % 2 == 1
        signal_sent = time.monotonic()
        os.kill(victim, signal.SIGTERM)
        if also_coordinator:
            time.sleep(rng.uniform(0.0, 0.005))
            run.proc.send_signal(signal.SIGINT)
        code, out, err = run.finish(EXIT_WITHIN if also_coordinator else 60)
        assert code is not None, err[-3000:]
        assert time.monotonic() - signal_sent < (EXIT_WITHIN + 1 if also_coordinator else 60)
        assert "press Ctrl-C again" not in err and "Traceback" not in err, err[-3000:]
        if also_coordinator:
            _check_stopped(d, code, out, err, f"worker trial {trial}")
            continue
        assert code == 0, err[-3000:]
        state = check_run_dir(d / "out" / "run", N)
        assert state["manifest"] and sorted(state["by_status"]["SUCCEEDED"]) == list(range(N))
        summary = json.loads(out)
        assert summary["status"] == "SUCCEEDED" and summary["itemCounts"]["succeeded"] == N
        assert "map_run.worker_died" in err and "SIGTERM" in err


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_quick_stop_signals_stop_at_once_without_a_manifest(tmp_path):
    """Two stop signals 0-5 ms apart mean "stop now": exit 130, status ABORTED, no manifest, no
    unfinished file, and the summary's resultsWritten counts exactly the records left in complete
    files (the first signal alone would have written PENDING files and the manifest). SIGINT then
    SIGTERM: two identical signals that close together may reach Python as one (see README)."""
    rng = random.Random(3)
    for trial in range(3):
        d = tmp_path / f"q{trial}"
        d.mkdir()
        run = start([str(_job(d)), "--run-id", "run"], cwd=d)
        run.wait_started()
        time.sleep(rng.uniform(0.2, 1.0))
        run.proc.send_signal(signal.SIGINT)
        time.sleep(rng.uniform(0.0, 0.005))
        run.proc.send_signal(signal.SIGTERM)
        code, out, err = run.finish(EXIT_WITHIN)
        state = _check_stopped(d, code, out, err, f"quick trial {trial}")
        assert not state["manifest"], err[-2000:]
        summary = json.loads(out)
        assert "stopped at once by a second SIG" in summary["cause"]
        assert "map_run.stopping_now" in err
