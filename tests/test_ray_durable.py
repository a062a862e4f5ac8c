"""Redrive and resume on the Ray backend (the session's real local Ray cluster): the same
semantics as on the local backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import distmap

pytestmark = pytest.mark.ray


def _records(manifest: str) -> dict[str, list[dict[str, Any]]]:
    m = json.loads(Path(manifest).read_text())
    return {
        s: [r for f in files for r in json.loads((Path(m["DestinationBucket"]) / f["Key"]).read_text())]
        for s, files in m["ResultFiles"].items()
    }


def test_redrive_on_ray_reruns_only_the_failed_items(tmp_path, ray_cluster):
    """A run FAILED by its threshold on Ray is redriven on Ray once the outage is over: SUCCEEDED,
    each item once, RedriveCount 1 on the items run again and 0 on the others."""
    n = 2000
    gate = tmp_path / "gate"
    rows = [{"id": i, "flaky": i % 50 == 7, "gate": str(gate)} for i in range(n)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = {
        "ItemReader": {"Source": str(tmp_path / "in.jsonl"), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "itemfns:fail_until_gate"},
        "ToleratedFailureCount": 0,
        "ResultWriter": {"Destination": str(tmp_path / "out")},
    }
    first = distmap.run(job, backend="ray", run_id="r", handle_signals=False)
    assert first.status == "FAILED" and first.error == "States.ExceedToleratedFailureThreshold"
    before = _records(first.manifest)
    rerun = {json.loads(r["Input"])["id"] for s in ("FAILED", "PENDING") for r in before[s]}
    gate.write_text("open")
    res = distmap.redrive(tmp_path / "out" / "r", backend="ray", handle_signals=False)
    assert res.status == "SUCCEEDED", res.cause
    got = _records(res.manifest)
    assert got["FAILED"] == [] and got["PENDING"] == []
    ids = [json.loads(r["Input"])["id"] for r in got["SUCCEEDED"]]
    assert sorted(ids) == list(range(n))
    counts = {json.loads(r["Input"])["id"]: r["RedriveCount"] for r in got["SUCCEEDED"]}
    assert {counts[i] for i in rerun} == {1}
    assert {c for i, c in counts.items() if i not in rerun} == {0}
    assert distmap.describe_map_run(tmp_path / "out" / "r")["redriveCount"] == 1
