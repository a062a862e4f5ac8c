"""The ``distmap`` command: exit codes, summary, overrides, logs, signals, and a killed coordinator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def distmap(*args: str, cwd: Path = ROOT, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "distmap", *args],
        cwd=cwd,
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def write_job(tmp_path: Path, fn: str, n: int, extra: str = "", rows=None) -> Path:
    src = tmp_path / "in.jsonl"
    rows = rows if rows is not None else [{"id": i} for i in range(n)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = tmp_path / "job.yaml"
    job.write_text(
        f"ItemReader:\n  Source: in.jsonl\n  ReaderConfig: {{InputType: JSONL}}\n"
        f"ItemProcessor:\n  Function: {fn}\nResultWriter:\n  Destination: out\n{extra}"
    )
    return job


def test_quickstart_config_runs_and_writes_manifest(tmp_path):
    """The bundled quickstart job succeeds and prints a DescribeMapRun-like summary with a manifest."""
    out = tmp_path / "qs-out"
    r = distmap("run", "configs/quickstart.yaml", "--set", f"ResultWriter.Destination={out}")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["status"] == "SUCCEEDED"
    assert set(summary["itemCounts"]) == {
        "pending",
        "running",
        "succeeded",
        "failed",
        "timedOut",
        "aborted",
        "total",
        "resultsWritten",
    }
    assert summary["itemCounts"]["total"] == 2000 and summary["itemCounts"]["failed"] == 8
    assert Path(summary["manifest"]).is_file()


def test_failed_run_exits_nonzero_naming_the_error(tmp_path):
    """A FAILED run exits 1 and prints the ASL error name."""
    job = write_job(tmp_path, "itemfns:always_fail", 10)
    r = distmap("run", str(job))
    assert r.returncode == 1
    assert "States.ExceedToleratedFailureThreshold" in r.stderr
    assert json.loads(r.stdout)["status"] == "FAILED"


def test_set_overrides_fields(tmp_path):
    """--set changes job fields before validation (here: tolerating all failures)."""
    job = write_job(tmp_path, "itemfns:always_fail", 10)
    r = distmap("run", str(job), "--set", "ToleratedFailurePercentage=100")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["itemCounts"]["failed"] == 10


def test_invalid_job_exits_2_with_field_and_reason(tmp_path):
    """An invalid job exits 2 with one message naming the file, the field and the reason; nothing runs."""
    job = write_job(tmp_path, "itemfns:echo", 3, extra="MaxConcurency: 4\n")
    r = distmap("run", str(job))
    assert r.returncode == 2
    assert (
        "MaxConcurency" in r.stderr and "did you mean 'MaxConcurrency'" in r.stderr and str(job) in r.stderr
    )
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_missing_input_exits_2_without_traceback(tmp_path):
    """A missing input file is reported as States.ItemReaderFailed with its path, without a traceback."""
    job = write_job(tmp_path, "itemfns:echo", 3)
    (tmp_path / "in.jsonl").unlink()
    r = distmap("run", str(job))
    assert r.returncode == 2
    assert "States.ItemReaderFailed" in r.stderr and "in.jsonl" in r.stderr and "Traceback" not in r.stderr


def test_json_logs_when_not_a_terminal(tmp_path):
    """Without a terminal, stderr carries JSON log events with the map run id bound."""
    job = write_job(tmp_path, "itemfns:echo", 5)
    r = distmap("run", str(job))
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "map_run.started" in names and "map_run.finished" in names
    run_id = json.loads(r.stdout)["mapRunArn"].rsplit(":", 1)[1]
    assert all(e["map_run_id"] == run_id for e in events)


def test_logs_never_print_credentials(tmp_path):
    """AWS secrets from the environment and in URLs are masked in logs and errors."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    job = write_job(tmp_path, "itemfns:echo", 3)
    job.write_text(
        job.read_text().replace(
            "Destination: out", "Destination: s3://user:hunter2pass@nonexistent-bucket-xyz/p"
        )
    )
    r = distmap(
        "run",
        str(job),
        env={
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        },
    )
    assert r.returncode == 2
    assert secret not in r.stderr + r.stdout
    assert "AKIAIOSFODNN7EXAMPLE" not in r.stderr + r.stdout
    assert "hunter2pass" not in r.stderr + r.stdout


def test_redact_masks_common_secret_shapes(monkeypatch):
    """redact() masks key ids, key=value secrets, presigned-URL signatures and URL passwords."""
    from distmap.storage import redact

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "abcdefghSECRET123")
    text = redact(
        "AKIAABCDEFGHIJKLMNOP secret=xyz https://u:p4ss@h/x?X-Amz-Signature=deadbeef abcdefghSECRET123"
    )
    for leaked in ("AKIAABCDEFGHIJKLMNOP", "xyz", "p4ss", "deadbeef", "abcdefghSECRET123"):
        assert leaked not in text


@pytest.mark.timeout(60)
def test_sigint_aborts_with_pending_results_and_exit_130(tmp_path):
    """Ctrl-C (SIGINT) stops the run: exit 130, status ABORTED, unrun items in PENDING files, manifest written."""
    rows = [{"id": i, "ms": 20} for i in range(2000)]
    job = write_job(tmp_path, "itemfns:sleep_ms", 0, rows=rows)
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}
    p = subprocess.Popen(
        [sys.executable, "-m", "distmap", "run", str(job)],
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    summary = json.loads(out)
    assert summary["status"] == "ABORTED"
    c = summary["itemCounts"]
    assert c["succeeded"] + c["pending"] + c["aborted"] == 2000 and c["pending"] > 0
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert manifest["ResultFiles"]["PENDING"]


@pytest.mark.timeout(60)
def test_killed_coordinator_leaves_no_manifest_and_no_orphans(tmp_path):
    """SIGKILL of the coordinator mid-run leaves no manifest.json, and its workers exit too."""
    rows = [{"id": i, "ms": 20} for i in range(2000)]
    job = write_job(tmp_path, "itemfns:sleep_ms", 0, rows=rows)
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}
    p = subprocess.Popen(
        [sys.executable, "-m", "distmap", "run", str(job), "--run-id", "killed"],
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(2.0)
    children = [int(x) for x in Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()]
    assert children, "workers should be running"
    p.kill()
    p.wait(timeout=10)
    run_dir = tmp_path / "out" / "killed"
    assert run_dir.is_dir()  # results were being written ...
    assert not (run_dir / "manifest.json").exists()  # ... but no manifest claims anything
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{c}").exists() for c in children):
        time.sleep(0.1)
    assert not any(
        Path(f"/proc/{c}").exists() and "zombie" not in Path(f"/proc/{c}/status").read_text()
        for c in children
    )
