"""S3 behind a flaky endpoint (a proxy in front of the moto server answering 500 / 503 to a share
of requests): runs end in retried success or a clear FAILED, no manifest lists an object that
is not there, and a journaled run whose input is on S3 resumes (seeking in the S3 object) to
every item once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from s3_fault_proxy import FaultProxy

import distmap
from distmap.config.parse import parse_job
from distmap.coordinator import Coordinator
from distmap.executors.inline import CoordinatorDied, InlineExecutor
from distmap.runs import resume, start_journal
from distmap.storage import s3_client

pytestmark = pytest.mark.s3


def _input(s3: Any, bucket: str, n: int) -> None:
    body = "".join(json.dumps({"id": i, "pad": "x" * 200}) + "\n" for i in range(n))
    s3.put_object(Bucket=bucket, Key="in.jsonl", Body=body)


@pytest.mark.parametrize("attempts", ["10", "1"], ids=["retried", "no-retries"])
def test_flaky_s3_results_end_in_retried_success_or_a_clear_failure(s3, s3_bucket, s3_server, monkeypatch, attempts):
    """Results on S3, 15% of requests answered 500 / 503: with retries the run SUCCEEDS; without,
    it may FAIL with States.ResultWriterFailed. Either way every object a manifest lists is there
    with its listed size, and each item is in exactly one of them."""
    n = 6000
    _input(s3, s3_bucket, n)
    job = {
        "ItemReader": {"Source": f"s3://{s3_bucket}/in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "itemfns:echo"},
        "ResultWriter": {"Destination": f"s3://{s3_bucket}/out", "MaxFileBytes": 6 << 20},
    }
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    with FaultProxy(s3_server, 1 << 30, share=0.15, seed=7).running() as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", attempts)
        s3_client.cache_clear()
        try:
            res = distmap.run(job, run_id=run_id, handle_signals=False)
        except distmap.StatesError as exc:  # the source or destination could not even be opened
            assert (attempts == "1" and "InternalError" in exc.cause) or "SlowDown" in exc.cause
            return
        finally:
            s3_client.cache_clear()
    assert proxy.flaky, "the proxy failed no request"
    if attempts == "10":
        assert res.status == "SUCCEEDED", res.cause
    if res.status != "SUCCEEDED":
        assert res.error in ("States.ResultWriterFailed", "States.ItemReaderFailed") and res.manifest is None
        assert "InternalError" in (res.cause or "") or "SlowDown" in (res.cause or "")
        return
    m = json.loads(s3.get_object(Bucket=s3_bucket, Key=f"out/{run_id}/manifest.json")["Body"].read())
    ids: list[int] = []
    for files in m["ResultFiles"].values():
        for f in files:
            obj = s3.get_object(Bucket=s3_bucket, Key=f["Key"])
            assert obj["ContentLength"] == f["Size"], "the manifest lists only what is there"
            ids += [json.loads(r["Input"])["id"] for r in json.loads(obj["Body"].read())]
    assert sorted(ids) == list(range(n))


def test_a_journaled_run_reading_flaky_s3_resumes_by_seeking_in_the_object(
    s3, s3_bucket, s3_server, monkeypatch, tmp_path
):
    """Input on a flaky S3 (20% of requests fail, retried), results local: the coordinator dies
    mid-run; the resume opens the object at the journal's offset (a ranged GET) and the run ends
    with every item once."""
    n = 8000
    _input(s3, s3_bucket, n)
    spec = {
        "ItemReader": {"Source": f"s3://{s3_bucket}/in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "itemfns:echo"},
        "ResultWriter": {"Destination": str(tmp_path / "out"), "WriterConfig": {"OutputType": "JSONL"}},
    }
    with FaultProxy(s3_server, 1 << 30, share=0.2, seed=3).running() as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "10")
        s3_client.cache_clear()
        try:
            job = parse_job(spec)
            with pytest.raises(CoordinatorDied):
                Coordinator(job, InlineExecutor(window=3, die=lambda k: k >= 20), run_id="r", handle_signals=False,
                            max_chunk_items=100, durable=start_journal(job, "r")).run()  # fmt: skip
            res = resume(tmp_path / "out" / "r", backend="inline", handle_signals=False, max_chunk_items=100)
        finally:
            s3_client.cache_clear()
    assert proxy.flaky
    assert res.status == "SUCCEEDED", res.cause
    assert res.manifest is not None
    m = json.loads(Path(res.manifest).read_text())
    ids = []
    for f in m["ResultFiles"]["SUCCEEDED"]:
        ids += [json.loads(json.loads(x)["Input"])["id"] for x in (tmp_path / "out" / f["Key"]).read_text().splitlines()]
    assert sorted(ids) == list(range(n))
