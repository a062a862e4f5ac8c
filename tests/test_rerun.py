"""Running again with a --run-id whose results are already in the destination is refused before
anything runs (exit 2), instead of mixing two runs' files under one manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from faults import start, write_job

import distmap
from distmap.errors import ResultWriterFailed


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


def test_rerun_with_the_same_run_id_is_refused_with_exit_2_and_touches_nothing(tmp_path):
    """The second `distmap run --run-id same` exits 2 naming the run directory and the way out,
    runs no item (the marker function would write files) and leaves the first run's files as
    they were, even with a smaller MaxFileBytes that would have produced more files."""
    rows = [{"id": i, "name": f"n{i}"} for i in range(500)]
    job = write_job(tmp_path, "itemfns:echo", rows)
    code, out, err = start([str(job), "--run-id", "same"], cwd=tmp_path).finish(60)
    assert code == 0, err
    run_dir = tmp_path / "out" / "same"
    before = _files(run_dir)
    code, out, err = start(
        [str(job), "--run-id", "same", "--set", "ResultWriter.MaxFileBytes=2000"], cwd=tmp_path
    ).finish(60)
    assert code == 2, err
    assert out == ""
    assert "map_run.started" not in err and "Traceback" not in err
    assert "States.ResultWriterFailed" in err and "already holds map run 'same'" in err
    assert str(run_dir) in err and "--run-id" in err
    assert _files(run_dir) == before


def test_leftovers_of_a_killed_run_also_block_its_run_id(tmp_path, job):
    """A run directory without a manifest (a killed run's files) is refused too; an empty one is not."""
    j: dict[str, Any] = job("itemfns:echo", n=20)
    run_dir = tmp_path / "out" / "r1"
    run_dir.mkdir(parents=True)
    res = distmap.run(j, run_id="r1", handle_signals=False)  # an empty directory is fine
    assert res.status == "SUCCEEDED"
    (run_dir / "manifest.json").unlink()
    with pytest.raises(ResultWriterFailed, match="already holds map run 'r1'"):
        distmap.run(j, run_id="r1", handle_signals=False)


@pytest.mark.s3
def test_rerun_into_s3_is_refused_before_any_work(s3: Any, s3_bucket: str) -> None:
    """The same refusal for an s3:// destination: nothing new is written under the run's prefix."""
    s3.put_object(
        Bucket=s3_bucket, Key="in.jsonl", Body="".join(json.dumps({"id": i}) + "\n" for i in range(50))
    )
    j = {
        "ItemReader": {"Source": f"s3://{s3_bucket}/in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "itemfns:echo"},
        "ResultWriter": {"Destination": f"s3://{s3_bucket}/res"},
    }
    assert distmap.run(j, run_id="twice", handle_signals=False).status == "SUCCEEDED"
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="res/twice/")["Contents"]
    with pytest.raises(ResultWriterFailed, match=f"s3://{s3_bucket}/res/twice already holds"):
        distmap.run(j, run_id="twice", handle_signals=False)
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix="res/twice/")["Contents"] == listed
