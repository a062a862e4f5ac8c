"""TimeoutSeconds: an item stops on time on every path (one lane with SIGALRM, thread lanes with
the watchdog, asyncio), and a child stopped at TimeoutSeconds is recorded as AWS records a
timed-out child: in the FAILED files, ``"Status": "TIMED_OUT"``, ``Error: States.Timeout``,
REDRIVABLE, counted in ``timedOut``, with a cause that says what happened.

Most runs use the real coordinator, readers, batch executor and writer on the inline executor
(no fork); the local-backend tests check the same in forked worker processes.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import timeoutfns
from conftest import load_results

import distmap
from distmap.config import parse_job
from distmap.coordinator import Coordinator
from distmap.executors.inline import InlineExecutor
from distmap.executors.local import LocalExecutor

T = 1.0
"""The TimeoutSeconds of the timing tests."""


def on_time(seconds: float, timeout: float = T) -> bool:
    """Within the accuracy distmap promises: not before the timeout, at most 10% + 0.1 s after."""
    return timeout - 0.01 <= seconds <= timeout * 1.1 + 0.1


@pytest.fixture(autouse=True)
def _release_blocked_threads():
    """Blocked ``block_in_c`` calls of a test return when it ends (abandoned threads rejoin the pool)."""
    timeoutfns.RELEASE.clear()
    yield
    timeoutfns.RELEASE.set()


def job(tmp_path: Path, fn: str, rows: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    processor: dict[str, Any] = {"Function": f"timeoutfns:{fn}"}
    for key in ("TimeoutSeconds", "Retry", "Catch"):
        if key in fields:
            processor[key] = fields.pop(key)
    return {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": processor,
        "ResultWriter": {"Destination": str(tmp_path / "out"), **fields.pop("ResultWriter", {})},
        **fields,
    }


def run_inline(spec: dict[str, Any]) -> distmap.MapRunResult:
    return Coordinator(parse_job(spec), InlineExecutor(), handle_signals=False).run()


def seconds(record: dict[str, Any]) -> float:
    """StopDate - StartDate of a record (millisecond precision)."""

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return (parse(record["StopDate"]) - parse(record["StartDate"])).total_seconds()


def input_id(record: dict[str, Any]) -> int:
    return json.loads(record["Input"])["id"]


# --------------------------------------------------------------------------- on time

PATHS = [
    pytest.param("block_in_c", 1, {}, id="one-lane-SIGALRM"),
    pytest.param("block_in_c", 4, {}, id="lanes-blocked-in-C"),
    pytest.param("python_loop", 4, {}, id="lanes-python-loop"),
    pytest.param("async_hang", 4, {}, id="async"),
    pytest.param("async_slow_cleanup", 4, {"cleanup": 3}, id="async-slow-cleanup"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("fn", "concurrency", "extra"), PATHS)
def test_a_hung_item_times_out_at_timeout_seconds_not_later(tmp_path, fn, concurrency, extra):
    """A hung item stops within 10% + 0.1 s of TimeoutSeconds on every path: one lane (SIGALRM),
    thread lanes whether the item is blocked in C code or looping in Python, and async functions
    even when the cancelled coroutine takes seconds to clean up. The other items succeed."""
    rows = [{"id": i, "block": i == 2, **extra} for i in range(8)]
    res = run_inline(
        job(tmp_path, fn, rows, TimeoutSeconds=T, MaxConcurrency=concurrency, ToleratedFailureCount=1)
    )
    assert res.status == "SUCCEEDED", res
    c = res.item_counts
    assert (c.succeeded, c.failed, c.timed_out) == (7, 0, 1)
    (rec,) = load_results(res)["FAILED"]
    assert input_id(rec) == 2 and rec["Error"] == "States.Timeout" and rec["Status"] == "TIMED_OUT"
    assert on_time(seconds(rec)), f"timed out after {seconds(rec):.3f} s for TimeoutSeconds {T}"


@pytest.mark.timeout(30)
def test_several_blocked_lanes_each_time_out_on_time(tmp_path):
    """Four items blocked in C code at once, among quick ones on 6 lanes: each stops at its own
    deadline (the watchdog wakes for the earliest one, not at a fixed multiple of the timeout)."""
    rows = [{"id": i, "block": i in (0, 3, 9, 15)} for i in range(40)]
    res = run_inline(
        job(tmp_path, "block_in_c", rows, TimeoutSeconds=T, MaxConcurrency=6, ToleratedFailureCount=4)
    )
    assert res.item_counts.timed_out == 4 and res.item_counts.succeeded == 36
    recs = load_results(res)["FAILED"]
    assert sorted(input_id(r) for r in recs) == [0, 3, 9, 15]
    assert all(on_time(seconds(r)) for r in recs), [seconds(r) for r in recs]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fn", ["block_in_c", "python_loop"])
def test_each_retry_attempt_is_stopped_at_timeout_seconds_on_thread_lanes(tmp_path, fn):
    """With a Retrier on States.Timeout, every attempt is timed on its own: two attempts of
    0.5 s and a 0.2 s interval end the item after about 1.2 s, and it is TIMED_OUT."""
    rows = [{"id": 0, "block": True}, {"id": 1}]
    spec = job(
        tmp_path,
        fn,
        rows,
        TimeoutSeconds=0.5,
        Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 0.2, "MaxAttempts": 1}],
        MaxConcurrency=3,
        ToleratedFailureCount=1,
    )
    res = run_inline(spec)
    (rec,) = load_results(res)["FAILED"]
    assert rec["Status"] == "TIMED_OUT" and res.item_counts.timed_out == 1
    assert 1.19 <= seconds(rec) <= 1.2 * 1.1 + 0.1, seconds(rec)


# --------------------------------------------------------------------------- the record


@pytest.mark.parametrize("transformation", ["NONE", "COMPACT", "FLATTEN"])
@pytest.mark.parametrize("output_type", ["JSON", "JSONL"])
def test_timed_out_child_is_a_timed_out_record_in_the_failed_files(tmp_path, transformation, output_type):
    """A child stopped at TimeoutSeconds is written to FAILED_n (there is no TIMED_OUT file, as on
    AWS) as a full record with Status TIMED_OUT, Error States.Timeout, a cause naming the timeout,
    RedriveStatus REDRIVABLE, whatever the Transformation. It counts in timedOut, a raised error
    in failed; the manifest keeps the keys FAILED / PENDING / SUCCEEDED."""
    rows = [{"id": 0}, {"id": 1, "block": True}, {"id": 2}]
    spec = job(
        tmp_path,
        "python_loop",
        rows,
        TimeoutSeconds=0.25,
        ToleratedFailureCount=1,
        ResultWriter={"WriterConfig": {"Transformation": transformation, "OutputType": output_type}},
    )
    res = run_inline(spec)
    assert res.status == "SUCCEEDED"
    counts = res.to_dict()["itemCounts"]  # the summary
    assert (counts["succeeded"], counts["failed"], counts["timedOut"], counts["total"]) == (2, 0, 1, 3)
    manifest = json.loads(Path(res.manifest).read_text())
    assert set(manifest["ResultFiles"]) == {"FAILED", "PENDING", "SUCCEEDED"}
    assert len(manifest["ResultFiles"]["FAILED"]) == 1
    (rec,) = load_results(res)["FAILED"]
    assert rec["Status"] == "TIMED_OUT"
    assert rec["Error"] == "States.Timeout"
    assert rec["Cause"] == "the item did not finish within TimeoutSeconds (0.25 s)"
    assert (rec["RedriveStatus"], rec["RedriveCount"]) == ("REDRIVABLE", 0)
    assert "Output" not in rec and input_id(rec) == 1
    assert rec["Name"].endswith("-0000000001") and rec["ExecutionArn"].endswith(":" + rec["Name"])


@pytest.mark.timeout(30)
def test_blocked_lane_cause_says_its_thread_was_left_running(tmp_path):
    """An item blocked in C code cannot be interrupted: its record says so (its thread runs on)."""
    res = run_inline(
        job(
            tmp_path,
            "block_in_c",
            [{"id": 0, "block": True}],
            TimeoutSeconds=0.25,
            MaxConcurrency=2,
            ToleratedFailureCount=1,
        )
    )
    (rec,) = load_results(res)["FAILED"]
    assert rec["Status"] == "TIMED_OUT"
    assert rec["Cause"].startswith("the item did not finish within TimeoutSeconds (0.25 s); ")
    assert rec["Cause"].endswith(
        "; it did not stop when interrupted (code blocked outside Python cannot), so its thread was left running"
    )


@pytest.mark.timeout(30)
def test_timed_out_batch_counts_every_item_and_names_the_batch(tmp_path):
    """With ItemBatcher a batch stopped at TimeoutSeconds is one TIMED_OUT record whose cause names
    the batch, and each of its items counts in timedOut."""
    rows = [{"id": i, "block": i == 4} for i in range(9)]
    spec = job(
        tmp_path,
        "batch_block_in_c",
        rows,
        TimeoutSeconds=0.25,
        ItemBatcher={"MaxItemsPerBatch": 3},
        MaxConcurrency=2,
        ToleratedFailureCount=3,
    )
    res = run_inline(spec)
    c = res.item_counts
    assert (c.succeeded, c.failed, c.timed_out) == (6, 0, 3)
    (rec,) = load_results(res)["FAILED"]
    assert rec["Status"] == "TIMED_OUT"
    assert rec["Cause"].startswith("the batch did not finish within TimeoutSeconds (0.25 s)")
    assert rec["Name"].endswith("-0000000003")


def test_catch_on_states_timeout_sees_the_cause(tmp_path):
    """A Catcher for States.Timeout gets the cause too: the item SUCCEEDS with {Error, Cause} at ResultPath."""
    spec = job(
        tmp_path,
        "python_loop",
        [{"id": 0, "block": True}],
        TimeoutSeconds=0.2,
        Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error"}],
    )
    res = run_inline(spec)
    (rec,) = load_results(res)["SUCCEEDED"]
    assert json.loads(rec["Output"])["error"] == {
        "Error": "States.Timeout",
        "Cause": "the item did not finish within TimeoutSeconds (0.2 s)",
    }
    assert res.item_counts.succeeded == 1 and res.item_counts.timed_out == 0


@pytest.mark.parametrize("concurrency", [1, 3])
def test_function_raising_states_timeout_is_failed_not_timed_out(tmp_path, concurrency):
    """An item function that raises States.Timeout itself (as a child workflow whose Task timed out
    does) ran to its end: its execution FAILED, as on AWS, and counts in failed, not timedOut."""
    spec = job(
        tmp_path,
        "raise_states_timeout",
        [{"id": 0, "block": True}, {"id": 1}],
        TimeoutSeconds=5,
        MaxConcurrency=concurrency,
        ToleratedFailureCount=1,
    )
    res = run_inline(spec)
    assert (res.item_counts.failed, res.item_counts.timed_out) == (1, 0)
    (rec,) = load_results(res)["FAILED"]
    assert (rec["Status"], rec["Error"]) == ("FAILED", "States.Timeout")
    assert rec["Cause"] == "the task did not finish within 1 seconds"


# --------------------------------------------------------------------------- forked workers


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("fn", "concurrency"),
    [
        pytest.param("block_in_c", 2, id="one-lane-SIGALRM"),
        pytest.param("block_in_c", 6, id="lanes-blocked-in-C"),
        pytest.param("async_slow_cleanup", 6, id="async-slow-cleanup"),
    ],
)
def test_local_backend_workers_time_out_on_time(tmp_path, fn, concurrency):
    """In forked worker processes (2 workers; MaxConcurrency 2 is one lane each, timed by SIGALRM,
    6 is three thread lanes or tasks each) a hung item stops on time and is recorded TIMED_OUT."""
    rows = [{"id": i, "block": i == 5} for i in range(30)]
    spec = job(tmp_path, fn, rows, TimeoutSeconds=T, MaxConcurrency=concurrency, ToleratedFailureCount=1)
    res = Coordinator(parse_job(spec), LocalExecutor(workers=2), handle_signals=False).run()
    assert res.status == "SUCCEEDED", res
    c = res.item_counts
    assert (c.succeeded, c.failed, c.timed_out) == (29, 0, 1)
    (rec,) = load_results(res)["FAILED"]
    assert input_id(rec) == 5 and rec["Status"] == "TIMED_OUT" and rec["Error"] == "States.Timeout"
    assert rec["Cause"].startswith("the item did not finish within TimeoutSeconds (1 s)")
    assert on_time(seconds(rec)), seconds(rec)


@pytest.mark.timeout(60)
def test_items_ending_right_at_their_deadline_are_each_recorded_once(tmp_path):
    """Items that return, raise or stay blocked right around the deadline race the watchdog's
    interrupt; each still ends exactly once (SUCCEEDED, FAILED or TIMED_OUT) and the run ends."""
    rng = random.Random(13)
    rows = [
        {"id": i, "s": rng.uniform(0.04, 0.06), "how": rng.choice(["sleep", "loop", "raise"])}
        for i in range(80)
    ]
    spec = job(
        tmp_path,
        "near_deadline",
        rows,
        TimeoutSeconds=0.05,
        Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 0.01, "MaxAttempts": 1}],
        MaxConcurrency=8,
        ToleratedFailurePercentage=100,
    )
    res = run_inline(spec)
    out = load_results(res)
    c = res.item_counts
    assert sorted(input_id(r) for r in out["SUCCEEDED"] + out["FAILED"]) == list(range(80))
    assert c.succeeded + c.failed + c.timed_out == 80 and c.results_written == 80
    assert c.timed_out == sum(r["Status"] == "TIMED_OUT" for r in out["FAILED"])
    assert c.failed == sum(r["Status"] == "FAILED" and r["Error"] == "ValueError" for r in out["FAILED"])


def test_child_workflow_timeout_seconds_ends_the_child_timed_out():
    """`distmap execute`: a DISTRIBUTED Map child whose ItemProcessor has TimeoutSeconds 1 and runs
    3 s is stopped on time and is TIMED_OUT (States.Timeout, counted as timed out); a quick child
    of the same map succeeds. Before, the ItemProcessor's TimeoutSeconds was ignored."""
    import json
    import time

    import distmap

    fn = "arn:aws:lambda:us-east-1:123456789012:function:sleep"
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "TimeoutSeconds": 1,
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": fn, "End": True}},
                },
                "ItemsPath": "$.items",
                "ToleratedFailureCount": 1,
                "End": True,
            }
        },
    }
    t0 = time.monotonic()
    resp = distmap.execute(
        definition,
        {"items": [{"seconds": 0.01}, {"seconds": 3}]},
        resources={"Resources": {fn: "aslfns:sleep"}},
        backend="inline",
    )
    assert time.monotonic() - t0 < 2.8  # stopped before the 3 s Task ended
    assert resp["status"] == "SUCCEEDED", resp
    quick, slow = json.loads(resp["output"])
    assert quick == {"slept": 0.01}
    assert (slow["Status"], slow["Error"]) == ("TIMED_OUT", "States.Timeout")
    assert "within its TimeoutSeconds (1)" in slow["Cause"]
