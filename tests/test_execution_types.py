"""``ItemProcessor.ProcessorConfig.ExecutionType`` (STANDARD | EXPRESS) of a DISTRIBUTED Map, on
both backends: each type's child ARN form, its duration limit (EXPRESS 5 minutes, STANDARD 1
year; lowered here with DISTMAP_EXPRESS_CHILD_SECONDS / DISTMAP_STANDARD_CHILD_SECONDS), what a
child past its limit becomes (TIMED_OUT: in the FAILED file, counted in timedOut,
States.Timeout), and what a worker crash does to children of each type (README, Semantics).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_asl_execute import FN, RESOURCES, machine, output, task

import distmap
from distmap.asl.execution_types import DEFAULT_LIMITS, child_limits

TYPES_RESOURCES = {
    "Resources": {
        **RESOURCES["Resources"],
        FN + "mark": "aslfns:mark",
        FN + "kill_worker_once": "aslfns:kill_worker_once",
    }
}
ACCOUNT_REGION = "us-east-1:123456789012"


def dmap(processor: dict[str, Any], execution_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
            **processor,
        },
        "Label": "M",
        "End": True,
        **fields,
    }


def execute(definition: dict[str, Any], data: Any, backend: str = "local") -> dict[str, Any]:
    return distmap.execute(
        definition, data, resources=TYPES_RESOURCES, backend=backend, state_machine_name="sm"
    )


def finished_counts(logs: list[dict[str, Any]]) -> dict[str, int]:
    """The item counts of the (single) map run, from its map_run.finished event."""
    (event,) = [e for e in logs if e["event"] == "map_run.finished"]
    return event["item_counts"]


def seconds_between(start: str, stop: str) -> float:
    parse = datetime.fromisoformat
    return (parse(stop.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


# --------------------------------------------------------------------------- ARNs


@pytest.mark.parametrize("execution_type", ["STANDARD", "EXPRESS"])
def test_child_execution_arns_by_execution_type(backend, execution_type):
    """STANDARD children: arn:aws:states:REGION:ACCOUNT:execution:sm/M:<name>; EXPRESS children:
    arn:aws:states:REGION:ACCOUNT:express:sm/M:<name>:<uuid>, a distinct uuid per child that ends
    with the item index. Both: StateMachineArn ...:stateMachine:sm/M, Name <run8>-<index>."""
    d = machine(
        {
            "Map": dmap(
                machine({"T": task("echo", End=True)}),
                execution_type,
                ItemsPath="$.xs",
                ResultWriter={"WriterConfig": {"Transformation": "NONE"}},  # whole records as output
            )
        }
    )
    records = output(execute(d, {"xs": list(range(5))}, backend))
    assert [json.loads(r["Output"]) for r in records] == list(range(5))
    run8 = records[0]["Name"][:8]
    for i, r in enumerate(records):
        assert r["Name"] == f"{run8}-{i:010d}"
        assert r["StateMachineArn"] == f"arn:aws:states:{ACCOUNT_REGION}:stateMachine:sm/M"
        assert r["Status"] == "SUCCEEDED"
        if execution_type == "STANDARD":
            assert r["ExecutionArn"] == f"arn:aws:states:{ACCOUNT_REGION}:execution:sm/M:{r['Name']}"
        else:
            head = f"arn:aws:states:{ACCOUNT_REGION}:express:sm/M:{r['Name']}:"
            assert r["ExecutionArn"].startswith(head)
            child_uuid = r["ExecutionArn"][len(head) :]
            assert str(uuid.UUID(child_uuid)) == child_uuid and int(child_uuid[-12:], 16) == i
    assert len({r["ExecutionArn"] for r in records}) == 5


def test_execution_type_must_be_standard_or_express():
    """Any other ExecutionType is a definition error naming the field."""
    d = machine({"Map": dmap(machine({"T": task("echo", End=True)}), "ASYNC", ItemsPath="$")})
    with pytest.raises(distmap.ConfigError, match=r"ExecutionType.*STANDARD or EXPRESS"):
        execute(d, [])


# --------------------------------------------------------------------------- limits


def test_default_limits_are_five_minutes_and_one_year(monkeypatch):
    """Without overrides EXPRESS children get 300 s and STANDARD ones 365 days, as on AWS."""
    monkeypatch.delenv("DISTMAP_EXPRESS_CHILD_SECONDS", raising=False)
    monkeypatch.delenv("DISTMAP_STANDARD_CHILD_SECONDS", raising=False)
    assert child_limits() == DEFAULT_LIMITS == {"EXPRESS": 300.0, "STANDARD": 31_536_000.0}


def test_a_bad_limit_override_fails_the_map_with_states_runtime(monkeypatch):
    """A limit override that is not a positive number fails the Map state with States.Runtime,
    naming the variable."""
    monkeypatch.setenv("DISTMAP_EXPRESS_CHILD_SECONDS", "soon")
    d = machine({"Map": dmap(machine({"T": task("echo", End=True)}), "EXPRESS", ItemsPath="$")})
    resp = execute(d, [1])
    assert resp["status"] == "FAILED" and resp["error"] == "States.Runtime"
    assert "DISTMAP_EXPRESS_CHILD_SECONDS" in resp["cause"]


@pytest.mark.parametrize("execution_type", ["STANDARD", "EXPRESS"])
def test_a_child_past_its_limit_ends_timed_out(backend, monkeypatch, execution_type):
    """With its type's limit lowered to 0.5 s, a child whose Task sleeps 3 s is cut at the limit
    and ends TIMED_OUT: its record (in the output, as a tolerated failure) has Status TIMED_OUT,
    Error States.Timeout and a cause naming the limit; the map run counts it in timedOut; the
    quick children succeed. The other type's limit does not apply."""
    other = "EXPRESS" if execution_type == "STANDARD" else "STANDARD"
    monkeypatch.setenv(f"DISTMAP_{execution_type}_CHILD_SECONDS", "0.5")
    monkeypatch.setenv(f"DISTMAP_{other}_CHILD_SECONDS", "0.01")
    d = machine(
        {
            "Map": dmap(
                machine({"T": task("sleep", End=True)}),
                execution_type,
                ItemsPath="$.xs",
                ItemSelector={"seconds.$": "$$.Map.Item.Value"},
                ToleratedFailurePercentage=100,
                MaxConcurrency=4,
            )
        }
    )
    with capture_logs() as logs:
        out = output(execute(d, {"xs": [0, 3, 0, 3]}, backend))
    assert out[0] == out[2] == {"slept": 0}
    for rec in (out[1], out[3]):
        assert 0.45 <= seconds_between(rec["StartDate"], rec["StopDate"]) < 2.5  # cut at the limit
        assert (rec["Status"], rec["Error"]) == ("TIMED_OUT", "States.Timeout")
        assert rec["Cause"] == (
            f"the {execution_type} child execution did not finish within 0.5 seconds "
            f"(the ExecutionType {execution_type} limit)"
        )
        assert rec["RedriveStatus"] == "REDRIVABLE" and "Output" not in rec
    counts = finished_counts(logs)
    assert (counts["succeeded"], counts["failed"], counts["timedOut"], counts["total"]) == (2, 0, 2, 4)


def test_a_child_waiting_past_its_limit_ends_timed_out_and_breaches_the_threshold(monkeypatch):
    """A Wait state does not outlive the limit either; with no tolerated failures one TIMED_OUT
    child fails the Map with States.ExceedToleratedFailureThreshold (timed-out children count)."""
    monkeypatch.setenv("DISTMAP_EXPRESS_CHILD_SECONDS", "0.3")
    d = machine(
        {
            "Map": dmap(
                machine({"W": {"Type": "Wait", "SecondsPath": "$", "End": True}}),
                "EXPRESS",
                ItemsPath="$",
            )
        }
    )
    t0 = time.monotonic()
    with capture_logs() as logs:
        resp = execute(d, [0, 5])
    assert time.monotonic() - t0 < 3
    assert resp["status"] == "FAILED" and resp["error"] == "States.ExceedToleratedFailureThreshold"
    counts = finished_counts(logs)
    assert (counts["succeeded"], counts["timedOut"], counts["failed"]) == (1, 1, 0)


def test_an_inner_map_inherits_the_limits_of_the_outer_map(backend, monkeypatch):
    """Limits are read where the outermost map starts and passed to its workers: an EXPRESS map
    nested in a STANDARD child gets the lowered EXPRESS limit there too (on Ray as well, whose
    workers do not see the driver's environment)."""
    monkeypatch.setenv("DISTMAP_EXPRESS_CHILD_SECONDS", "0.5")
    inner = dmap(
        machine({"T": task("sleep", End=True)}),
        "EXPRESS",
        ItemsPath="$.xs",
        ItemSelector={"seconds.$": "$$.Map.Item.Value"},
        ToleratedFailurePercentage=100,
    )
    d = machine({"Outer": dmap(machine({"Inner": inner}), "STANDARD", ItemsPath="$.groups")})
    out = output(execute(d, {"groups": [{"xs": [0, 3]}]}, backend))
    assert out[0][0] == {"slept": 0}
    assert (out[0][1]["Status"], out[0][1]["Error"]) == ("TIMED_OUT", "States.Timeout")
    assert re.match(rf"arn:aws:states:{ACCOUNT_REGION}:express:sm/M:", out[0][1]["ExecutionArn"])


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize("execution_type", ["STANDARD", "EXPRESS"])
def test_a_worker_crash_reruns_the_children_of_its_chunk(backend, tmp_path, execution_type):
    """Children run at least once: when a worker dies (here: SIGKILL during child 10, on one
    worker), the children of its chunk that had already run are run again, for both types (a
    STANDARD child's steps are not durable here). Every child's record is still written exactly
    once, and a child runs only once unless its worker died."""
    d = machine(
        {
            "Map": dmap(
                machine({"Mark": task("mark", Next="Kill"), "Kill": task("kill_worker_once", End=True)}),
                execution_type,
                ItemsPath="$.xs",
                ItemSelector={"dir.$": "$.dir", "key.$": "$$.Map.Item.Value", "victim": 10},
                MaxConcurrency=1,  # one worker, one lane: children 0..19 in one chunk, in order
            )
        }
    )
    out = output(execute(d, {"xs": list(range(20)), "dir": str(tmp_path)}, backend))
    assert [o["key"] for o in out] == list(range(20))  # each child's result exactly once
    runs = {int(p.name): p.read_text().count("ran") for p in tmp_path.iterdir() if p.name != "killed"}
    assert set(runs) == set(range(20))
    assert all(runs[k] == 1 for k in range(11, 20))  # not started before the crash: once
    assert runs[10] == 2  # ran when its worker was killed, and again
    assert all(runs[k] == 2 for k in range(10))  # finished, but lost with the chunk: again


def test_without_crashes_every_child_runs_exactly_once(tmp_path):
    """STANDARD children on healthy workers: each child runs once and is recorded once, with
    lanes and several workers (MaxConcurrency 6 over 2 workers)."""
    d = machine(
        {
            "Map": dmap(
                machine({"Mark": task("mark", End=True)}),
                "STANDARD",
                ItemsPath="$.xs",
                ItemSelector={"dir.$": "$.dir", "key.$": "$$.Map.Item.Value"},
                MaxConcurrency=6,
            )
        }
    )
    out = output(execute(d, {"xs": list(range(300)), "dir": str(tmp_path)}))
    assert [o["key"] for o in out] == list(range(300))
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == list(range(300))
    assert {p.read_text() for p in tmp_path.iterdir()} == {"ran\n"}


def test_a_child_past_its_limit_stops_its_nested_map(backend, monkeypatch):
    """An EXPRESS child (limit lowered to 1 s) whose nested DISTRIBUTED Map runs 3 s children is
    stopped at its limit, nested map included, and ends TIMED_OUT; its sibling succeeds."""
    monkeypatch.setenv("DISTMAP_EXPRESS_CHILD_SECONDS", "1")
    inner = dmap(
        machine({"T": task("sleep", End=True)}),
        "STANDARD",
        ItemsPath="$",
        ItemSelector={"seconds.$": "$$.Map.Item.Value"},
        MaxConcurrency=4,
    )
    d = machine(
        {"Outer": dmap(machine({"Inner": inner}), "EXPRESS", ItemsPath="$", ToleratedFailurePercentage=100)}
    )
    out = output(execute(d, [[3, 3, 3, 3], [0]], backend))
    assert out[1] == [{"slept": 0}]
    assert (out[0]["Status"], out[0]["Error"]) == ("TIMED_OUT", "States.Timeout")
    assert "EXPRESS child execution did not finish within 1 seconds" in out[0]["Cause"]
    assert seconds_between(out[0]["StartDate"], out[0]["StopDate"]) < 2.5


def test_the_execution_timeout_stops_a_running_distributed_map(backend):
    """A machine's TimeoutSeconds ends the execution TIMED_OUT at its deadline even while a
    DISTRIBUTED Map is running (the map run is stopped), not once the map has finished."""
    d = machine(
        {
            "Map": dmap(
                machine({"T": task("sleep", End=True)}),
                "STANDARD",
                ItemsPath="$",
                ItemSelector={"seconds.$": "$$.Map.Item.Value"},
            )
        },
        TimeoutSeconds=1,
    )
    resp = execute(d, [4, 4, 4, 4], backend)
    assert (resp["status"], resp["error"]) == ("TIMED_OUT", "States.Timeout")
    assert seconds_between(resp["startDate"], resp["stopDate"]) < 3.5


def test_limits_are_read_again_by_each_execution(monkeypatch):
    """On the inline backend the children run in this process; the limits they were given do not
    stick to it: the next execution reads the environment again."""
    d = machine(
        {
            "Map": dmap(
                machine({"T": task("sleep", End=True)}),
                "EXPRESS",
                ItemsPath="$",
                ItemSelector={"seconds.$": "$$.Map.Item.Value"},
                ToleratedFailurePercentage=100,
            )
        }
    )
    monkeypatch.setenv("DISTMAP_EXPRESS_CHILD_SECONDS", "0.2")
    assert output(execute(d, [0.5], "inline"))[0]["Status"] == "TIMED_OUT"
    monkeypatch.setenv("DISTMAP_EXPRESS_CHILD_SECONDS", "5")
    assert output(execute(d, [0.5], "inline")) == [{"slept": 0.5}]


def test_express_ids_for_any_run_id():
    """A run id that is not a UUID (``--run-id``) still gives EXPRESS children valid uuids,
    stable for the run id and the index; STANDARD identities have no uuid part."""
    from distmap.records import RecordEncoder, child_identity

    ident = child_identity("eu-west-1", "111122223333", "sm", "M", "fixed-run-id", "EXPRESS")
    assert ident.execution_arn_prefix == "arn:aws:states:eu-west-1:111122223333:express:sm/M:"
    enc = RecordEncoder(ident)
    rec = json.loads(enc.failed(7, b"{}", "States.Timeout", "late", 0.0, 1.0, timed_out=True))
    name, child_uuid = rec["ExecutionArn"].rsplit(":", 2)[1:]
    assert name == rec["Name"] == "fixed-ru-0000000007"
    assert str(uuid.UUID(child_uuid)) == child_uuid and child_uuid.endswith("000000000007")
    assert rec["Status"] == "TIMED_OUT"
    assert child_identity("eu-west-1", "1", "sm", "M", "fixed-run-id", "EXPRESS") == child_identity(
        "eu-west-1", "1", "sm", "M", "fixed-run-id", "EXPRESS"
    )
    standard = child_identity("eu-west-1", "1", "sm", "M", "fixed-run-id")
    assert standard.express_id_prefix is None and ":execution:sm/M:" in standard.execution_arn_prefix
