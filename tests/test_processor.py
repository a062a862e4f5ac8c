"""The batch executor in-process: Retry schedule (injected sleep), Catch, timeouts, lanes, ItemSelector, ItemBatcher."""

from __future__ import annotations

import json
import time

import pytest

from distmap.config import parse_job
from distmap.contract import Chunk, RunSpec
from distmap.coordinator import map_run_identity
from distmap.processor import BatchProcessor
from distmap.readers.base import DecodeSpec, RawBlock


def make(fn: str, *, lanes: int = 1, sleep=None, **fields) -> BatchProcessor:
    data = {
        "ItemReader": {"Source": "/x.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": fn},
    }
    for k, v in fields.items():
        if k in ("Retry", "Catch", "TimeoutSeconds"):
            data["ItemProcessor"][k] = v
        else:
            data[k] = v
    job = parse_job(data)
    _, ident = map_run_identity(job, "12345678-run")
    spec = RunSpec(
        job=job, decode=DecodeSpec("JSONL", "/x.jsonl"), identity=ident, lanes=lanes, record_sep=b"\n"
    )
    return BatchProcessor(spec, **({"sleep": sleep} if sleep else {}))


def chunk(rows: list, first_index: int = 0) -> Chunk:
    payload = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return Chunk(0, first_index, RawBlock(payload, len(rows), 1))


def records(blob: bytes) -> list[dict]:
    return [json.loads(line) for line in blob.split(b"\n") if line]


def test_retry_schedule_uses_injected_sleep():
    """A failing item is retried with the ASL backoff schedule, sleeping through the injected sleep."""
    slept: list[float] = []
    bp = make(
        "itemfns:fail_first_n",
        sleep=slept.append,
        Retry=[
            {"ErrorEquals": ["CountingFailure"], "IntervalSeconds": 3, "MaxAttempts": 3, "BackoffRate": 2}
        ],
    )
    res = bp.process(chunk([{"id": 1, "fails": 3}]))
    assert slept == pytest.approx([3, 6, 12], abs=0.05)
    assert res.items_succeeded == 1 and res.retries == 3
    assert json.loads(records(res.succeeded)[0]["Output"]) == {"id": 1, "attempts": 4}


def test_retries_exhausted_item_fails_with_last_error():
    """When MaxAttempts is used up the item FAILS with the error name and cause of the last attempt."""
    slept: list[float] = []
    bp = make(
        "itemfns:fail_first_n",
        sleep=slept.append,
        Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.5}],
    )
    res = bp.process(chunk([{"id": 2, "fails": 10}]))
    assert slept == pytest.approx([1, 1.5], abs=0.05)
    rec = records(res.failed)[0]
    assert (rec["Error"], rec["Cause"], rec["Status"]) == ("CountingFailure", "attempt 3", "FAILED")
    assert res.items_failed == 1


def test_catch_turns_failure_into_success_with_error_at_result_path():
    """A matching Catcher makes the item SUCCEED with {Error, Cause} placed at ResultPath."""
    bp = make("itemfns:always_fail", Catch=[{"ErrorEquals": ["RuntimeError"], "ResultPath": "$.error"}])
    res = bp.process(chunk([{"id": 5}]))
    assert res.items_succeeded == 1 and res.items_failed == 0
    out = json.loads(records(res.succeeded)[0]["Output"])
    assert out == {"id": 5, "error": {"Error": "RuntimeError", "Cause": "nope"}}


def test_catch_does_not_match_other_errors():
    """A Catcher only catches the errors in its ErrorEquals."""
    bp = make("itemfns:always_fail", Catch=[{"ErrorEquals": ["KeyError"]}])
    assert bp.process(chunk([{"id": 5}])).items_failed == 1


def test_states_error_sets_exact_name_and_cause():
    """Raising distmap.StatesError fails the item with exactly that error name and cause."""
    res = make("itemfns:states_error").process(chunk([{"id": 1}]))
    rec = records(res.failed)[0]
    assert (rec["Error"], rec["Cause"]) == ("Custom.Error", "exact cause")


def test_non_json_output_is_a_terminal_runtime_error():
    """An output that is not JSON-serializable fails with States.Runtime, which States.ALL does not catch."""
    bp = make("itemfns:not_json", Catch=[{"ErrorEquals": ["States.ALL"]}])
    res = bp.process(chunk([{"id": 1}]))
    assert records(res.failed)[0]["Error"] == "States.Runtime"


@pytest.mark.timeout(30)
def test_hung_item_times_out_and_does_not_stall_inline():
    """TimeoutSeconds fails a hung item with States.Timeout (single lane, SIGALRM) and the next items still run."""
    bp = make("itemfns:hang_if_flagged", TimeoutSeconds=0.2)
    t0 = time.monotonic()
    res = bp.process(chunk([{"id": 1, "hang": True}, {"id": 2}, {"id": 3, "hang": True}]))
    assert time.monotonic() - t0 < 5
    assert res.items_timed_out == 2 and res.items_succeeded == 1
    assert {r["Error"] for r in records(res.failed)} == {"States.Timeout"}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fn", ["itemfns:hang_if_flagged", "itemfns:busy_hang_if_flagged"])
def test_hung_item_times_out_with_thread_lanes(fn):
    """With several lanes a hung item (sleeping in C or looping in Python) times out and the rest complete."""
    bp = make(fn, lanes=4, TimeoutSeconds=0.2)
    rows = [{"id": i, "hang": i == 3} for i in range(20)]
    t0 = time.monotonic()
    res = bp.process(chunk(rows))
    assert time.monotonic() - t0 < 10
    assert res.items_timed_out == 1 and res.items_succeeded == 19
    assert json.loads(records(res.failed)[0]["Input"])["id"] == 3


@pytest.mark.timeout(30)
def test_timeout_is_retried_when_a_retrier_matches():
    """A States.Timeout can be retried by a Retrier listing it; each attempt gets the full timeout."""
    slept: list[float] = []
    bp = make(
        "itemfns:hang_if_flagged",
        sleep=slept.append,
        TimeoutSeconds=0.1,
        Retry=[{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2}],
    )
    res = bp.process(chunk([{"id": 1, "hang": True}]))
    assert slept == pytest.approx([1, 2], abs=0.25) and res.items_timed_out == 1


@pytest.mark.timeout(30)
def test_async_function_runs_concurrently_and_times_out():
    """An async def function runs MaxConcurrency items at once on an event loop, and hung ones time out."""
    bp = make("itemfns:async_sleep_ms", lanes=50, TimeoutSeconds=0.5)
    rows = [{"id": i, "ms": 100, "hang": i == 7} for i in range(100)]
    t0 = time.monotonic()
    res = bp.process(chunk(rows))
    elapsed = time.monotonic() - t0
    assert res.items_succeeded == 99 and res.items_timed_out == 1
    assert elapsed < 3  # 100 x 100 ms sequentially would take 10 s


def test_thread_lanes_run_items_concurrently():
    """Several lanes of a sync function overlap latency-bound items."""
    bp = make("itemfns:sleep_ms", lanes=20)
    rows = [{"id": i, "ms": 50} for i in range(100)]
    t0 = time.monotonic()
    res = bp.process(chunk(rows))
    assert res.items_succeeded == 100
    assert time.monotonic() - t0 < 2  # sequentially 5 s
    threads = {json.loads(r["Output"])["thread"] for r in records(res.succeeded)}
    assert len(threads) > 5


def test_item_selector_uses_context_and_state_input():
    """ItemSelector builds each child input from $$.Map.Item.Value / Index and the Map input ($)."""
    bp = make(
        "itemfns:echo",
        ItemSelector={"v.$": "$$.Map.Item.Value.name", "i.$": "$$.Map.Item.Index", "run.$": "$.run", "k": 1},
        Input={"run": "r1"},
    )
    res = bp.process(chunk([{"name": "a"}, {"name": "b"}], first_index=10))
    outs = [json.loads(r["Output"]) for r in records(res.succeeded)]
    assert outs == [{"k": 1, "v": "a", "i": 10, "run": "r1"}, {"k": 1, "v": "b", "i": 11, "run": "r1"}]
    assert [r["Name"] for r in records(res.succeeded)] == ["12345678-0000000010", "12345678-0000000011"]


def test_item_selector_missing_path_fails_item_with_runtime_error():
    """An ItemSelector path missing from an item fails that item with States.Runtime, not the chunk."""
    bp = make("itemfns:echo", ItemSelector={"v.$": "$$.Map.Item.Value.name"})
    res = bp.process(chunk([{"name": "a"}, {"other": 1}]))
    assert res.items_succeeded == 1 and res.items_failed == 1
    assert records(res.failed)[0]["Error"] == "States.Runtime"


def test_item_batcher_groups_items_and_counts_failed_batches_per_item():
    """ItemBatcher calls the function with {Items, BatchInput}; a failed batch counts all its items as failed."""
    bp = make("itemfns:batch_fail_if_contains", ItemBatcher={"MaxItemsPerBatch": 4, "BatchInput": {"b": 1}})
    res = bp.process(chunk([{"id": i} for i in range(10, 20)]))
    # batches: 10-13 (holds 13: fails), 14-17, 18-19
    assert (res.succeeded_records, res.failed_records) == (2, 1)
    assert (res.items_succeeded, res.items_failed) == (6, 4)
    failed_input = json.loads(records(res.failed)[0]["Input"])
    assert failed_input == {"Items": [{"id": 10}, {"id": 11}, {"id": 12}, {"id": 13}], "BatchInput": {"b": 1}}


def test_item_batcher_respects_max_input_bytes():
    """MaxInputBytesPerBatch keeps each batch's serialized input within the limit."""
    bp = make("itemfns:batch_sum", ItemBatcher={"MaxInputBytesPerBatch": 100})
    rows = [{"id": i, "pad": "x" * 20} for i in range(12)]
    res = bp.process(chunk(rows))
    batches = [json.loads(r["Input"]) for r in records(res.succeeded)]
    assert sum(len(b["Items"]) for b in batches) == 12
    assert all(len(json.dumps(b, separators=(",", ":"))) <= 100 for b in batches)
    assert len(batches) > 1


def test_record_shape_matches_aws():
    """SUCCEEDED and FAILED records carry AWS's keys; Input and Output are JSON strings."""
    res = make("itemfns:fail_if_mod").process(chunk([{"id": 1}, {"id": 10}]))
    ok, bad = records(res.succeeded)[0], records(res.failed)[0]
    assert set(ok) == {
        "ExecutionArn",
        "Input",
        "InputDetails",
        "Name",
        "Output",
        "OutputDetails",
        "RedriveCount",
        "RedriveStatus",
        "RedriveStatusReason",
        "StartDate",
        "StateMachineArn",
        "Status",
        "StopDate",
    }
    assert {"Error", "Cause", "Status", "Input", "Name", "ExecutionArn", "StartDate", "StopDate"} <= set(bad)
    assert "Output" not in bad
    assert json.loads(ok["Input"]) == {"id": 1} and json.loads(ok["Output"]) == {"id": 1}
    assert ok["ExecutionArn"].endswith(":" + ok["Name"]) and ok["Status"] == "SUCCEEDED"
    assert ok["StartDate"].endswith("Z") and len(ok["StartDate"]) == 24
    assert bad["Error"] == "ValueError" and bad["Cause"] == "bad item 10" and bad["Status"] == "FAILED"


def test_waiting_retry_does_not_block_the_lane():
    """While a failed item waits for its retry, the following items keep running (one lane)."""
    bp = make(
        "itemfns:fail_first_n",
        Retry=[{"ErrorEquals": ["CountingFailure"], "IntervalSeconds": 0.3, "MaxAttempts": 1}],
    )
    rows = [{"id": i, "fails": 1 if i % 10 == 0 else 0} for i in range(50)]
    t0 = time.monotonic()
    res = bp.process(chunk(rows))
    assert res.items_succeeded == 50 and res.retries == 5
    assert time.monotonic() - t0 < 1.0  # five 0.3 s waits in line would take 1.5 s


def test_fast_path_writes_the_same_records_as_the_general_path(monkeypatch):
    """The JSONL fast path (one lane, no selector) and the general path give the same records and
    counts for every kind of outcome: success, a failure no retrier or catcher takes, a caught
    error, a retried item, an errors.Timeout (TIMED_OUT), NaN and a non-JSON output."""
    import itemfns

    kinds = ["ok", "fail", "caught", "timeout", "retry", "nan", "object"]
    rows = [{"id": i, "kind": kinds[i % len(kinds)]} for i in range(42)]
    fields = {
        "Retry": [{"ErrorEquals": ["CountingFailure"], "IntervalSeconds": 0.001, "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["KeyError"], "Next": "X"}],
    }

    def run(fast: bool) -> tuple:
        itemfns._calls.clear()
        bp = make("itemfns:by_kind", **fields)
        if not fast:
            monkeypatch.setattr(bp, "_fast_path_ok", lambda: False)
        assert bp._fast_path_ok() is fast
        res = bp.process(chunk(rows))
        dated = ("StartDate", "StopDate")
        recs = sorted(  # the fast path writes a retried item when it ends, so the order may differ
            (
                {k: v for k, v in r.items() if k not in dated}
                for blob in (res.succeeded, res.failed)
                for r in records(blob)
            ),
            key=lambda r: r["Name"],
        )
        return recs, res.items_succeeded, res.items_failed, res.items_timed_out, res.retries

    fast, general = run(True), run(False)
    assert fast == general
    statuses = sorted({r["Status"] for r in fast[0]})
    assert statuses == ["FAILED", "SUCCEEDED", "TIMED_OUT"]
    assert fast[1:] == (18, 18, 6, 6)
