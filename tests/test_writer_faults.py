"""When the result writer fails for good (a full disk, a file size limit, S3 refusing writes), the
run ends FAILED with States.ResultWriterFailed naming the file that failed; no manifest is
written; nothing unfinished stays behind (no part file, no truncated file, no unfinished multipart
upload); and the counts say what is stored: resultsWritten is the number of records in the files
left, every item is counted once (succeeded + failed + timedOut + pending == total), and
stats.resultsNotWritten says how many results of items that ran were lost."""

from __future__ import annotations

import json
import re
import resource
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from faults import check_run_dir, record_ids, start, write_job
from s3_fault_proxy import FaultProxy

import distmap
from distmap.storage import s3_client


def _rows(n: int, pad: int) -> list[dict[str, Any]]:
    return [{"id": i, "pad": "x" * pad} for i in range(n)]


def _check_counts(summary: dict[str, Any], stored: int, n: int) -> None:
    c = summary["itemCounts"]
    assert c["resultsWritten"] == stored
    assert c["succeeded"] + c["failed"] + c["timedOut"] + c["pending"] == c["total"] == n
    done = c["succeeded"] + c["failed"] + c["timedOut"]
    assert summary["stats"]["resultsNotWritten"] == done - stored


def _check_local_failure(d: Path, code: int | None, out: str, err: str, n: int, reason: str) -> None:
    assert code == 1, err[-3000:]
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["status"] == "FAILED" and summary["error"] == "States.ResultWriterFailed"
    assert "manifest" not in summary
    failing = re.search(r"cannot write (\S+): (.*)", summary["cause"])
    assert failing, summary["cause"]
    assert reason in failing.group(2)
    path = Path(failing.group(1))
    assert path.name.startswith(("SUCCEEDED_", "FAILED_", "PENDING_")), summary["cause"]
    assert not path.exists()  # the file that failed was removed, not left truncated
    state = check_run_dir(d / "out" / "run", n)  # every file left is complete, no part files
    assert not state["manifest"]
    stored = len(state["by_status"]["SUCCEEDED"]) + len(state["by_status"]["FAILED"])
    _check_counts(summary, stored, n)


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_file_size_limit_fails_the_run_naming_the_result_file(tmp_path):
    """An injected local writer fault (RLIMIT_FSIZE: "File too large" once SUCCEEDED_0.json passes
    300 kB): FAILED naming SUCCEEDED_0.json, no truncated file, no manifest, counts match."""
    n = 3000
    job = write_job(tmp_path, "itemfns:echo", _rows(n, 100))
    run = start([str(job), "--run-id", "run"], cwd=tmp_path, preexec_fn=lambda: _limit_file_size(300_000))
    code, out, err = run.finish(60)
    _check_local_failure(tmp_path, code, out, err, n, "File too large")
    assert "SUCCEEDED_0.json" in json.loads(out)["cause"]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root; skipped otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_fails_the_run_and_keeps_only_complete_files(small_disk):
    """A full disk (2 MiB tmpfs, 256 kB result files): the run ends FAILED naming the file that hit
    "No space left on device"; the files that were completed stay and resultsWritten counts exactly
    their records; the one that failed is gone; no manifest."""
    n = 20000
    job = write_job(
        small_disk, "itemfns:echo", _rows(n, 20), "ResultWriter: {Destination: out, MaxFileBytes: 262144}\n"
    )
    code, out, err = start([str(job), "--run-id", "run"], cwd=small_disk).finish(60)
    _check_local_failure(small_disk, code, out, err, n, "No space left on device")
    assert json.loads(out)["itemCounts"]["resultsWritten"] > 0  # some files were completed


# ---------------------------------------------------------------------------------------- S3
def _s3_job(bucket: str, n: int) -> dict[str, Any]:
    return {
        "ItemReader": {"Source": f"s3://{bucket}/in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "itemfns:echo"},
        "ResultWriter": {"Destination": f"s3://{bucket}/out", "MaxFileBytes": 6 << 20},
    }


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize("allow_writes", [0, 2, 5], ids=["create-fails", "part-fails", "second-file-fails"])
def test_s3_failing_for_good_leaves_no_unfinished_upload_and_counts_what_is_stored(
    s3: Any, s3_bucket: str, s3_server: str, monkeypatch, allow_writes: int
) -> None:
    """S3 behind a proxy that fails every write after the first N for good: FAILED naming the S3
    object that failed, no unfinished multipart upload (list_multipart_uploads), no manifest, and
    resultsWritten equal to the records in the objects that were completed."""
    n = 12000
    s3.put_object(Bucket=s3_bucket, Key="in.jsonl", Body="".join(json.dumps(r) + "\n" for r in _rows(n, 900)))
    with FaultProxy(s3_server, allow_writes).running() as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
        s3_client.cache_clear()
        try:
            run_id = f"run-{uuid.uuid4().hex[:8]}"
            res = distmap.run(_s3_job(s3_bucket, n), run_id=run_id, handle_signals=False)
        finally:
            s3_client.cache_clear()
    assert proxy.failed, "the proxy should have failed some writes"
    assert res.status == "FAILED" and res.error == "States.ResultWriterFailed", res.cause
    assert res.manifest is None
    m = re.search(rf"cannot write s3://{s3_bucket}/(out/{run_id}/\S+): .*InternalError", res.cause or "")
    assert m, res.cause
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"out/{run_id}/").get("Contents", [])
    ]
    assert m.group(1) not in keys and f"out/{run_id}/manifest.json" not in keys
    stored: list[int] = []
    for key in keys:
        stored += record_ids(json.loads(s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()))
    assert len(stored) == len(set(stored))
    _check_counts(res.to_dict(), len(stored), n)
    if allow_writes >= 4:  # the first file was completed before the failure
        assert stored


@pytest.mark.s3
def test_s3_outage_that_refuses_the_abort_too_names_the_upload_left_behind(
    s3: Any, s3_bucket: str, s3_server: str, monkeypatch
) -> None:
    """When S3 refuses even AbortMultipartUpload, the run still ends FAILED with the right cause,
    and a `result_writer.upload_not_aborted` warning names the object and the upload id left."""
    n = 12000
    s3.put_object(Bucket=s3_bucket, Key="in.jsonl", Body="".join(json.dumps(r) + "\n" for r in _rows(n, 900)))
    proxy = FaultProxy(s3_server, 2, fail_deletes=True)
    with proxy.running(), structlog.testing.capture_logs() as logs:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        s3_client.cache_clear()
        try:
            res = distmap.run(_s3_job(s3_bucket, n), run_id="outage", handle_signals=False)
        finally:
            s3_client.cache_clear()
    assert res.status == "FAILED" and res.error == "States.ResultWriterFailed"
    assert f"cannot write s3://{s3_bucket}/out/outage/SUCCEEDED_0.json" in (res.cause or "")
    left = s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    warned = [e for e in logs if e["event"] == "result_writer.upload_not_aborted"]
    assert warned and warned[0]["map_run_id"] == "outage"
    assert {u["UploadId"] for u in left} == {e["upload_id"] for e in warned}
    assert warned[0]["uri"] == f"s3://{s3_bucket}/out/outage/SUCCEEDED_0.json"
    for u in left:  # clean up behind the outage
        s3.abort_multipart_upload(Bucket=s3_bucket, Key=u["Key"], UploadId=u["UploadId"])


def test_failed_pending_write_on_a_block_with_malformed_data_keeps_counts_exact(tmp_path):
    """A threshold stop writes the rest of the input as PENDING; that write fails (RLIMIT_FSIZE on
    PENDING_0.json) on the block holding a malformed line. The run is FAILED naming PENDING_0.json,
    total is the items before the bad line (what follows it is not read), and the counts add up."""
    n, bad = 30_000, 12_000
    rows = [json.dumps({"id": i, "fail": i == 0, "pad": "x" * 100}) for i in range(n)]
    rows[bad] = '{"id": oops}'
    (tmp_path / "in.jsonl").write_text("\n".join(rows) + "\n")
    job = tmp_path / "job.yaml"
    job.write_text(
        "ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}\n"
        "ItemProcessor: {Function: 'itemfns:fail_flagged'}\nResultWriter: {Destination: out}\n"
        "ToleratedFailureCount: 0\n"
    )
    run = start([str(job), "--run-id", "run"], cwd=tmp_path, preexec_fn=lambda: _limit_file_size(3_000_000))
    code, out, err = run.finish(60)
    assert code == 1, err[-3000:]
    summary = json.loads(out)
    assert summary["error"] == "States.ResultWriterFailed", summary
    assert "PENDING_0.json" in summary["cause"]
    c = summary["itemCounts"]
    assert c["total"] == bad
    assert c["succeeded"] + c["failed"] + c["timedOut"] + c["pending"] == c["total"]
