"""End-to-end S3 tests against a moto server on 127.0.0.1 (HTTP, the real boto3 / smart_open path).

Fixtures come from ``tests/fixtures_s3.py``: ``s3_server`` (endpoint URL, AWS env set for the
session), ``s3_bucket`` (a fresh bucket per test) and ``s3`` (a boto3 client on the server).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest

import distmap

pytestmark = pytest.mark.s3

SECRET_KEY = "testing-secret-key-do-not-log"


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"item-{i}", "value": i * 0.5, "tag": "a"} for i in range(n)]


def _put_jsonl(s3: Any, bucket: str, key: str, rows: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _jsonl_job(bucket: str, *, destination: str | None = None, **writer: Any) -> dict[str, Any]:
    return {
        "ItemReader": {"Source": f"s3://{bucket}/in/rows.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": destination or f"s3://{bucket}/out", **writer},
    }


def _read_manifest(s3: Any, result: distmap.MapRunResult, bucket: str) -> dict[str, Any]:
    assert result.manifest is not None
    prefix = f"s3://{bucket}/"
    assert result.manifest.startswith(prefix)
    body = s3.get_object(Bucket=bucket, Key=result.manifest[len(prefix) :])["Body"].read()
    manifest = json.loads(body)
    assert isinstance(manifest, dict)
    return manifest


def _load_results(s3: Any, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every record of every result file the manifest lists, checking each file's Size against S3."""
    bucket = manifest["DestinationBucket"]
    out: dict[str, list[dict[str, Any]]] = {}
    for status, files in manifest["ResultFiles"].items():
        records: list[dict[str, Any]] = []
        for entry in files:
            assert set(entry) == {"Key", "Size"}
            head = s3.head_object(Bucket=bucket, Key=entry["Key"])
            assert head["ContentLength"] == entry["Size"], entry["Key"]
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            assert len(body) == entry["Size"]
            data = json.loads(body)
            assert isinstance(data, list), f"{entry['Key']} is not a JSON array"
            records.extend(data)
        out[status] = records
    return out


def _input_ids(records: list[dict[str, Any]]) -> list[int]:
    return sorted(json.loads(r["Input"])["id"] for r in records)


def test_jsonl_roundtrip_manifest_and_result_files(s3: Any, s3_bucket: str) -> None:
    """A JSONL object in S3 is mapped with noop; the manifest lands at <dest>/<run_id>/manifest.json,
    names the bucket and map run, and lists result files whose Keys exist with the exact Sizes and
    whose SUCCEEDED records hold each of the 500 inputs exactly once."""
    _put_jsonl(s3, s3_bucket, "in/rows.jsonl", _rows(500))

    result = distmap.run(_jsonl_job(s3_bucket), handle_signals=False)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.item_counts.succeeded == 500
    assert result.manifest == f"s3://{s3_bucket}/out/{result.run_id}/manifest.json"

    manifest = _read_manifest(s3, result, s3_bucket)
    assert manifest["DestinationBucket"] == s3_bucket
    assert manifest["MapRunArn"] == result.map_run_arn
    assert set(manifest["ResultFiles"]) == {"FAILED", "PENDING", "SUCCEEDED"}
    for files in manifest["ResultFiles"].values():
        assert isinstance(files, list)
    assert manifest["ResultFiles"]["SUCCEEDED"], "no SUCCEEDED result file listed"
    for files in manifest["ResultFiles"].values():
        for entry in files:
            assert entry["Key"].startswith(f"out/{result.run_id}/")

    results = _load_results(s3, manifest)
    succeeded = results["SUCCEEDED"]
    assert len(succeeded) == 500
    assert _input_ids(succeeded) == list(range(500))
    assert {r["Status"] for r in succeeded} == {"SUCCEEDED"}
    assert results["FAILED"] == []
    assert results["PENDING"] == []


def test_asl_getobject_reader_and_putobject_writer(s3: Any, s3_bucket: str) -> None:
    """The ASL forms ItemReader {Resource: s3:getObject, Parameters: {Bucket, Key}} and
    ResultWriter {Resource: s3:putObject, Parameters: {Bucket, Prefix}} read the same object and
    write the manifest under <Prefix>/<run_id>/manifest.json."""
    _put_jsonl(s3, s3_bucket, "in/rows.jsonl", _rows(500))
    job = {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "Parameters": {"Bucket": s3_bucket, "Key": "in/rows.jsonl"},
            "ReaderConfig": {"InputType": "JSONL"},
        },
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": s3_bucket, "Prefix": "asl"},
        },
    }

    result = distmap.run(job, handle_signals=False)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.item_counts.succeeded == 500
    key = f"asl/{result.run_id}/manifest.json"
    assert result.manifest == f"s3://{s3_bucket}/{key}"
    s3.head_object(Bucket=s3_bucket, Key=key)
    manifest = _read_manifest(s3, result, s3_bucket)
    assert manifest["DestinationBucket"] == s3_bucket
    assert _input_ids(_load_results(s3, manifest)["SUCCEEDED"]) == list(range(500))


def test_csv_from_s3_strings_padding_and_extra_fields(s3: Any, s3_bucket: str) -> None:
    """A CSV object in S3 is read with every value a string; a short row is padded with "" and a
    row with an extra field has the extra value dropped."""
    body = b"id,name\n1,alpha\n2\n3,gamma,EXTRA\n4,delta\n"
    s3.put_object(Bucket=s3_bucket, Key="in/rows.csv", Body=body)
    job = {
        "ItemReader": {"Source": f"s3://{s3_bucket}/in/rows.csv", "ReaderConfig": {"InputType": "CSV"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": f"s3://{s3_bucket}/out"},
    }

    result = distmap.run(job, handle_signals=False)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.item_counts.succeeded == 4
    records = _load_results(s3, _read_manifest(s3, result, s3_bucket))["SUCCEEDED"]
    inputs = sorted((json.loads(r["Input"]) for r in records), key=lambda d: d["id"])
    assert inputs == [
        {"id": "1", "name": "alpha"},
        {"id": "2", "name": ""},
        {"id": "3", "name": "gamma"},
        {"id": "4", "name": "delta"},
    ]
    for item in inputs:
        assert all(isinstance(v, str) for v in item.values())


def test_missing_source_key_raises_item_reader_failed_without_secret(s3_bucket: str) -> None:
    """A source key that does not exist makes distmap.run raise ItemReaderFailed whose cause names
    the s3:// URI, and neither the cause nor str(exception) contains the secret access key."""
    uri = f"s3://{s3_bucket}/in/does-not-exist-{uuid.uuid4().hex}.jsonl"
    job = {
        "ItemReader": {"Source": uri, "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": f"s3://{s3_bucket}/out"},
    }

    with pytest.raises(distmap.ItemReaderFailed) as info:
        distmap.run(job, handle_signals=False)

    exc = info.value
    assert exc.error == "States.ItemReaderFailed"
    assert uri in exc.cause
    assert SECRET_KEY not in exc.cause
    assert SECRET_KEY not in str(exc)
    assert SECRET_KEY not in repr(exc)


def test_missing_destination_bucket_raises_result_writer_failed_before_items(s3: Any, s3_bucket: str) -> None:
    """A ResultWriter pointing at a bucket that does not exist raises ResultWriterFailed before any
    item runs (nothing is written anywhere, not even to the existing source bucket)."""
    _put_jsonl(s3, s3_bucket, "in/rows.jsonl", _rows(20))
    missing = f"distmap-missing-{uuid.uuid4().hex[:16]}"
    job = _jsonl_job(s3_bucket, destination=f"s3://{missing}/out")

    with pytest.raises(distmap.ResultWriterFailed) as info:
        distmap.run(job, handle_signals=False)

    assert info.value.error == "States.ResultWriterFailed"
    assert missing in info.value.cause
    assert SECRET_KEY not in str(info.value)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == ["in/rows.jsonl"]
    bucket_names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert missing not in bucket_names


def test_max_file_bytes_rotates_succeeded_files_in_s3(s3: Any, s3_bucket: str) -> None:
    """With MaxFileBytes 2048, 200 records are split over several SUCCEEDED_<n>.json objects, each a
    valid JSON array, together holding every record exactly once."""
    _put_jsonl(s3, s3_bucket, "in/rows.jsonl", _rows(200))

    result = distmap.run(_jsonl_job(s3_bucket, MaxFileBytes=2048), handle_signals=False)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.item_counts.succeeded == 200
    manifest = _read_manifest(s3, result, s3_bucket)
    files = manifest["ResultFiles"]["SUCCEEDED"]
    assert len(files) > 1
    names = [entry["Key"].rsplit("/", 1)[-1] for entry in files]
    assert names == [f"SUCCEEDED_{i}.json" for i in range(len(files))]

    listed = {
        o["Key"]
        for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"out/{result.run_id}/SUCCEEDED_").get(
            "Contents", []
        )
    }
    assert listed == {entry["Key"] for entry in files}

    records = _load_results(s3, manifest)["SUCCEEDED"]
    counts = Counter(json.loads(r["Input"])["id"] for r in records)
    assert sorted(counts) == list(range(200))
    assert set(counts.values()) == {1}


def test_json_array_input_from_s3(s3: Any, s3_bucket: str) -> None:
    """A pretty-printed (indent=2) JSON array of 50 objects in S3 is read with InputType JSON and
    every element is processed once, unchanged."""
    rows = _rows(50)
    s3.put_object(Bucket=s3_bucket, Key="in/rows.json", Body=json.dumps(rows, indent=2).encode())
    job = {
        "ItemReader": {"Source": f"s3://{s3_bucket}/in/rows.json", "ReaderConfig": {"InputType": "JSON"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": f"s3://{s3_bucket}/out"},
    }

    result = distmap.run(job, handle_signals=False)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.item_counts.succeeded == 50
    records = _load_results(s3, _read_manifest(s3, result, s3_bucket))["SUCCEEDED"]
    inputs = sorted((json.loads(r["Input"]) for r in records), key=lambda d: d["id"])
    assert inputs == rows
    assert {r["Status"] for r in records} == {"SUCCEEDED"}
