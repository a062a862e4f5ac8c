"""The backend contract: every end-to-end case here runs on the local backend and on a real Ray
cluster, and must give the same results: exactly-once result files, thresholds, early stop,
crashed workers, aborts, MaxConcurrency."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from conftest import ids, load_results

import distmap
from distmap.config import parse_job
from distmap.coordinator import Coordinator
from distmap.executors import make_executor


def run(job: dict, backend: str, **kw) -> distmap.MapRunResult:
    return distmap.run(job, backend=backend, handle_signals=False, **kw)


def test_every_item_lands_in_exactly_one_result_file(job, backend):
    """Each item appears once, in SUCCEEDED or FAILED, and the manifest lists files with true sizes."""
    res = run(job("itemfns:fail_if_mod", n=1000, ToleratedFailurePercentage=20), backend)
    assert res.status == "SUCCEEDED"
    c = res.item_counts
    assert (c.total, c.succeeded, c.failed, c.pending, c.results_written) == (1000, 900, 100, 0, 1000)
    out = load_results(res)
    assert ids(out["FAILED"]) == list(range(0, 1000, 10))
    assert sorted(ids(out["SUCCEEDED"]) + ids(out["FAILED"])) == list(range(1000))
    assert out["PENDING"] == []
    manifest = json.loads(Path(res.manifest).read_text())
    assert set(manifest) == {"DestinationBucket", "MapRunArn", "ResultFiles"}
    assert manifest["MapRunArn"] == res.map_run_arn
    assert res.map_run_arn.startswith("arn:aws:states:") and ":mapRun:" in res.map_run_arn
    assert res.map_run_arn.endswith(":" + res.run_id)
    assert Path(res.manifest).parent.name == res.run_id


def test_names_are_stable_per_item(job, backend):
    """Each record's Name/ExecutionArn is derived from the run id and the item index."""
    res = run(job("itemfns:echo", n=50), backend, run_id="fixed-run-id")
    out = load_results(res)
    by_id = {json.loads(r["Input"])["id"]: r for r in out["SUCCEEDED"]}
    assert by_id[7]["Name"] == "fixed-ru-0000000007"
    assert by_id[7]["ExecutionArn"].endswith(":fixed-ru-0000000007")


@pytest.mark.parametrize(
    ("fields", "failing", "status"),
    [
        ({}, 0, "SUCCEEDED"),
        ({}, 1, "FAILED"),  # default tolerance is 0
        ({"ToleratedFailureCount": 5}, 5, "SUCCEEDED"),  # at the limit
        ({"ToleratedFailureCount": 5}, 6, "FAILED"),
        ({"ToleratedFailurePercentage": 5}, 10, "SUCCEEDED"),  # 10 of 200 = 5%
        ({"ToleratedFailurePercentage": 5}, 11, "FAILED"),
        ({"ToleratedFailurePercentage": 10, "ToleratedFailureCount": 5}, 6, "FAILED"),  # count exceeded
        ({"ToleratedFailurePercentage": 2, "ToleratedFailureCount": 50}, 5, "FAILED"),  # percentage exceeded
        ({"ToleratedFailurePercentage": 10, "ToleratedFailureCount": 50}, 20, "SUCCEEDED"),
        ({"ToleratedFailurePercentage": 100}, 200, "SUCCEEDED"),
    ],
)
def test_tolerated_failure_thresholds(job, fields, failing, status, backend):
    """The run fails only when failures exceed a threshold, with States.ExceedToleratedFailureThreshold."""
    rows = [{"id": i, "limit": failing} for i in range(200)]
    res = run(job("itemfns:fail_ids_below", rows=rows, **fields), backend)
    assert res.status == status, res.cause
    if status == "FAILED":
        assert res.error == "States.ExceedToleratedFailureThreshold"
        assert res.cause.startswith("The specified tolerated failure threshold was exceeded (")
    assert Path(res.manifest).exists()  # results are written whatever the outcome


def test_early_stop_leaves_unrun_items_pending(job, backend):
    """Once the threshold is exceeded no new work starts, and every unrun item is in a PENDING file."""
    res = run(job("itemfns:always_fail", n=20000, ToleratedFailureCount=3), backend)
    assert res.status == "FAILED" and res.error == "States.ExceedToleratedFailureThreshold"
    c = res.item_counts
    assert c.total == 20000
    assert c.failed < 2000  # stopped long before the end
    assert c.pending == 20000 - c.failed - c.succeeded
    out = load_results(res)
    assert len(out["PENDING"]) == c.pending
    assert all(r["Status"] == "PENDING" for r in out["PENDING"])
    everything = ids(out["SUCCEEDED"]) + ids(out["FAILED"]) + ids(out["PENDING"])
    assert sorted(everything) == list(range(20000))


def test_percentage_threshold_stops_early_on_large_input(job, backend):
    """With a percentage threshold the total is counted ahead, so the run stops before reading everything."""
    n = 100_000
    res = run(job("itemfns:always_fail", n=n, ToleratedFailurePercentage=1), backend)
    assert res.status == "FAILED" and res.error == "States.ExceedToleratedFailureThreshold"
    assert res.item_counts.failed < n // 2
    assert res.item_counts.pending + res.item_counts.failed == n


def test_one_percent_retried_five_percent_failed_within_tolerance(job, backend):
    """1% fail once and succeed on retry, 5% always fail; with 10% tolerance the run SUCCEEDS with exactly the 5% FAILED."""
    n = 4000
    res = run(
        job(
            "jobs.examples:flaky",
            n=n,
            ToleratedFailurePercentage=10,
            Retry=[{"ErrorEquals": ["TransientError"], "IntervalSeconds": 0.01, "MaxAttempts": 2}],
        ),
        backend,
    )
    assert res.status == "SUCCEEDED"
    out = load_results(res)
    always = [i for i in range(n) if i % 20 == 1]
    assert ids(out["FAILED"]) == always
    assert ids(out["SUCCEEDED"]) == sorted(set(range(n)) - set(always))
    assert {r["Error"] for r in out["FAILED"]} == {"PermanentError"}
    assert res.stats["retries"] == n // 100


def test_max_items_limits_the_run(job, backend):
    """ReaderConfig.MaxItems reads only the first N items; 0 means all."""
    j = job("itemfns:echo", n=500)
    j["ItemReader"]["ReaderConfig"]["MaxItems"] = 123
    res = run(j, backend)
    assert res.item_counts.total == 123
    assert ids(load_results(res)["SUCCEEDED"]) == list(range(123))


@pytest.mark.timeout(120)
def test_worker_killed_by_an_item_loses_nothing(job, backend):
    """An item that SIGKILLs its worker ends FAILED (Runtime.ExitError); every other item succeeds exactly once."""
    rows = [{"id": i, "kill": i == 777} for i in range(3000)]
    res = run(job("itemfns:kill_worker_on", rows=rows, ToleratedFailureCount=1), backend)
    assert res.status == "SUCCEEDED", res.cause
    out = load_results(res)
    assert ids(out["FAILED"]) == [777]
    assert out["FAILED"][0]["Error"] == "Runtime.ExitError"
    cause = out["FAILED"][0]["Cause"]
    assert ("SIGKILL" in cause) if backend == "local" else ("Ray worker process died" in cause), cause
    assert ids(out["SUCCEEDED"]) == [i for i in range(3000) if i != 777]
    assert res.stats["workerCrashes"] >= 3


@pytest.mark.timeout(180)
def test_worker_killed_by_an_item_with_chunks_side_by_side_is_blamed_exactly(job, backend):
    """With lanes, a worker runs several chunks at once: when an item kills it, every chunk it held
    is suspect and re-run alone until the killer is isolated. Only that item ends FAILED
    (Runtime.ExitError); every other item succeeds exactly once."""
    rows = [{"id": i, "kill": i == 1234, "ms": 1} for i in range(4000)]
    res = run(job("itemfns:kill_worker_on", rows=rows, ToleratedFailureCount=1, MaxConcurrency=64), backend)
    assert res.status == "SUCCEEDED", res.cause
    out = load_results(res)
    assert ids(out["FAILED"]) == [1234]
    assert out["FAILED"][0]["Error"] == "Runtime.ExitError"
    assert ids(out["SUCCEEDED"]) == [i for i in range(4000) if i != 1234]
    assert res.stats["workerCrashes"] >= 3


@pytest.mark.timeout(60)
def test_worker_that_exits_once_is_replaced_and_the_batch_rerun(job, tmp_path, backend):
    """A worker that dies once (os._exit) is replaced; its chunk re-runs and no result is duplicated."""
    rows = [{"id": i, "exit_once": i == 50, "dir": str(tmp_path)} for i in range(400)]
    res = run(job("itemfns:exit_once", rows=rows), backend)
    assert res.status == "SUCCEEDED"
    assert ids(load_results(res)["SUCCEEDED"]) == list(range(400))
    assert res.stats["workerCrashes"] >= 1


def test_malformed_line_mid_run_fails_with_item_reader_failed(job, tmp_path, backend):
    """A malformed line found mid-run fails the run with States.ItemReaderFailed naming file and line."""
    src = tmp_path / "bad.jsonl"
    lines = [json.dumps({"id": i}) for i in range(5000)]
    lines[4321] = '{"id": 4321,'
    src.write_text("\n".join(lines) + "\n")
    j = job("itemfns:echo", n=1)
    j["ItemReader"]["Source"] = str(src)
    res = run(j, backend)
    assert res.status == "FAILED" and res.error == "States.ItemReaderFailed"
    assert f"{src} line 4322" in res.cause
    assert res.item_counts.succeeded < 5000


@pytest.mark.parametrize("output_type", ["JSON", "JSONL"])
def test_result_files_never_exceed_max_file_bytes(job, output_type, backend):
    """Result files rotate so that none is larger than MaxFileBytes, whatever the chunking;
    JSON files stay valid arrays and JSONL files hold one record per line."""
    j = job("itemfns:fail_if_mod", n=3000, ToleratedFailurePercentage=100)
    j["ResultWriter"].update({"MaxFileBytes": 20_000, "WriterConfig": {"OutputType": output_type}})
    res = run(j, backend)
    manifest = json.loads(Path(res.manifest).read_text())
    ext = output_type.lower()
    for status in ("SUCCEEDED", "FAILED"):
        files = manifest["ResultFiles"][status]
        assert len(files) > 3
        assert [f["Key"].rsplit("/", 1)[1] for f in files[:2]] == [f"{status}_0.{ext}", f"{status}_1.{ext}"]
        assert all(f["Size"] <= 20_000 for f in files), [f["Size"] for f in files]
    out = load_results(res)  # parses every file and checks its manifest size
    assert ids(out["FAILED"]) == list(range(0, 3000, 10))
    assert sorted(ids(out["SUCCEEDED"]) + ids(out["FAILED"])) == list(range(3000))


def test_compact_transformation_writes_outputs_only(job, backend):
    """WriterConfig Transformation COMPACT writes just the outputs to SUCCEEDED files."""
    j = job("itemfns:double", n=10)
    j["ResultWriter"]["WriterConfig"] = {"Transformation": "COMPACT"}
    res = run(j, backend)
    manifest = json.loads(Path(res.manifest).read_text())
    root = Path(manifest["DestinationBucket"])
    outs = [
        o for f in manifest["ResultFiles"]["SUCCEEDED"] for o in json.loads((root / f["Key"]).read_text())
    ]
    assert sorted(o["double"] for o in outs) == [2 * i for i in range(10)]


@pytest.mark.timeout(60)
def test_max_concurrency_beyond_cores_overlaps_latency_bound_items(job, backend):
    """MaxConcurrency above the core count runs extra items on threads inside each worker."""
    rows = [{"id": i, "ms": 50} for i in range(400)]
    t0 = time.monotonic()
    res = run(job("itemfns:sleep_ms", rows=rows, MaxConcurrency=100), backend)
    elapsed = time.monotonic() - t0
    assert res.status == "SUCCEEDED"
    assert elapsed < 8  # sequentially: 20 s
    outs = [json.loads(r["Output"]) for r in load_results(res)["SUCCEEDED"]]
    assert len({o["thread"] for o in outs}) > 10


def test_max_concurrency_one_runs_one_item_at_a_time(job, backend):
    """MaxConcurrency 1 uses a single worker with a single lane."""
    res = run(
        job("itemfns:sleep_ms", rows=[{"id": i, "ms": 1} for i in range(30)], MaxConcurrency=1), backend
    )
    outs = [json.loads(r["Output"]) for r in load_results(res)["SUCCEEDED"]]
    assert len({o["pid"] for o in outs}) == 1 and len({o["thread"] for o in outs}) == 1


@pytest.mark.timeout(60)
def test_abort_writes_pending_and_reports_aborted(job, backend):
    """request_abort stops the run: status ABORTED, unfinished items in PENDING files, counts add up."""
    j = job("itemfns:sleep_ms", rows=[{"id": i, "ms": 5} for i in range(3000)])
    coord = Coordinator(parse_job(j), make_executor(backend), handle_signals=False)
    threading.Timer(1.0, coord.request_abort).start()
    res = coord.run()
    assert res.status == "ABORTED" and res.error == "States.Aborted"
    c = res.item_counts
    out = load_results(res)
    assert c.succeeded + c.failed + c.pending + c.aborted == 3000
    assert len(out["PENDING"]) == c.pending + c.aborted
    assert sorted(ids(out["SUCCEEDED"]) + ids(out["PENDING"])) == list(range(3000))


def test_without_result_writer_only_counts_are_reported(job, backend):
    """A job without ResultWriter runs and reports counts, writing no files."""
    j = job("itemfns:echo", n=20)
    del j["ResultWriter"]
    res = run(j, backend)
    assert res.status == "SUCCEEDED" and res.manifest is None and res.item_counts.succeeded == 20


def test_csv_job_end_to_end(tmp_path, backend):
    """A CSV job passes each row to the function as a dict of strings."""
    src = tmp_path / "in.csv"
    src.write_text("id,name\n1,a\n2,b\n")
    res = run(
        {
            "ItemReader": {
                "Source": str(src),
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            },
            "ItemProcessor": {"Function": "itemfns:echo"},
            "ResultWriter": {"Destination": str(tmp_path / "out")},
        },
        backend,
    )
    outs = sorted(json.loads(r["Output"])["id"] for r in load_results(res)["SUCCEEDED"])
    assert outs == ["1", "2"]


def test_item_batcher_end_to_end(job, backend):
    """ItemBatcher runs one execution per batch, and item counts still count items."""
    j = job("itemfns:batch_sum", n=250, ItemBatcher={"MaxItemsPerBatch": 100})
    res = run(j, backend)
    out = load_results(res)
    assert res.item_counts.succeeded == 250
    sizes = sorted(json.loads(r["Output"])["n"] for r in out["SUCCEEDED"])
    assert sum(sizes) == 250 and max(sizes) <= 100


def test_item_selector_with_intrinsics_and_wildcards(job, backend):
    """Job files' ItemSelector takes intrinsic functions and any JSONPath, evaluated in the workers."""
    rows = [{"id": i, "tags": [{"k": "a"}, {"k": str(i)}]} for i in range(20)]
    j = job(
        "itemfns:echo",
        rows=rows,
        ItemSelector={
            "label.$": "States.Format('item-{} of {}', $$.Map.Item.Index, $.batch)",
            "keys.$": "$$.Map.Item.Value.tags[*].k",
            "n.$": "States.ArrayLength($$.Map.Item.Value.tags)",
        },
        Input={"batch": "b1"},
    )
    outs = sorted(
        (json.loads(r["Output"]) for r in load_results(run(j, backend))["SUCCEEDED"]),
        key=lambda o: o["keys"][1],
    )
    assert {"label": "item-3 of b1", "keys": ["a", "3"], "n": 2} in outs
    assert len(outs) == 20


def test_local_summary_reports_coordinator_and_worker_cpu(tmp_path):
    """A local run's stats report the CPU its workers used (here 400 items of ~1 ms of pure-Python
    work each) and the coordinator's, which does none of the items' work."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(400)))
    res = distmap.run(
        {"ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
         "ItemProcessor": {"Function": "jobs.examples:cpu_1ms"}},
        backend="local",
        handle_signals=False,
    )  # fmt: skip
    assert res.status == "SUCCEEDED"
    assert res.stats["workersCpuSeconds"] >= 0.2  # the items spin 0.4 s of wall time between them
    assert 0 < res.stats["coordinatorCpuSeconds"] < res.stats["workersCpuSeconds"]
