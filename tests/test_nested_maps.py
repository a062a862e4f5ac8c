"""Nested DISTRIBUTED Maps, on the local backend and on Ray (the contract: same results on both).

A DISTRIBUTED Map inside a DISTRIBUTED Map's child workflow runs inside the worker running that
child (in-process executor, its MaxConcurrency as threads), so no worker forks workers; maps
that run at the same time in the driver share one budget of workers. Each test checks the exact
outputs (built from the result files), that every inner child ran exactly once, and that the
number of worker processes (local) or worker actors (Ray) alive at once never exceeded the
backend's workers (2 here: 2 cores, and a 2-CPU Ray cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from proc_watch import WorkerWatch
from test_asl_execute import FN, RESOURCES, machine, output, task

import distmap

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # local: one worker per core; Ray: the session cluster's CPUs

NESTED_RESOURCES = {
    "Resources": {
        **RESOURCES["Resources"],
        FN + "with_pid": "aslfns:with_pid",
        FN + "double_with_pid": "aslfns:double_with_pid",
        FN + "mark": "aslfns:mark",
    }
}


def distributed(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            **processor,
        },
        "End": True,
        **fields,
    }


def inline(processor: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}


def execute(definition: dict[str, Any], data: Any, backend: str) -> dict[str, Any]:
    return distmap.execute(definition, data, resources=NESTED_RESOURCES, backend=backend)


def check_workers_bounded(backend: str, watch: WorkerWatch) -> None:
    assert watch.samples > 3
    assert 1 <= watch.peak <= WORKERS, f"{watch.peak} workers alive at once on {backend}"


GROUPS = [list(range(10 * g, 10 * g + g + 1)) for g in range(6)]  # 1..6 items per group

INNER = distributed(
    machine({"T": task("double_with_pid", End=True)}),
    ItemsPath="$.xs",
    MaxConcurrency=3,
    ResultPath="$.inner",
)


def test_distributed_map_inside_distributed_map(backend):
    """Each outer child runs its inner DISTRIBUTED Map in its own worker process (the inner
    children report the outer child's pid); MaxConcurrency 4 puts two outer children on each of
    the two workers, so every worker lane waits on an inner map at once, with no deadlock; the
    output is exact and no more than 2 workers are ever alive."""
    d = machine(
        {
            "Outer": distributed(
                machine({"Pid": task("with_pid", Next="Inner"), "Inner": INNER}),
                ItemsPath="$.groups",
                ItemSelector={"xs.$": "$$.Map.Item.Value", "group.$": "$$.Map.Item.Index"},
                MaxConcurrency=4,
            )
        }
    )
    with WorkerWatch(backend) as watch:
        out = output(execute(d, {"groups": GROUPS}, backend))
    check_workers_bounded(backend, watch)
    assert [{**o, "pid": 0, "inner": [v["value"] for v in o["inner"]]} for o in out] == [
        {"xs": xs, "group": g, "pid": 0, "inner": [2 * x for x in xs]} for g, xs in enumerate(GROUPS)
    ]
    for o in out:
        assert o["pid"] != os.getpid()  # the outer child ran in a worker...
        assert {v["pid"] for v in o["inner"]} == {o["pid"]}  # ...and its inner map in that same worker


@pytest.mark.parametrize("where", ["driver", "worker"])
def test_distributed_map_inside_inline_map(backend, where):
    """DISTRIBUTED Maps inside an inline Map's iterations: at the top of the execution ("driver":
    up to 40 iterations start their map runs at once, and share the backend's 2 workers) or
    inside a DISTRIBUTED Map's child ("worker": they run in that child's worker). Outputs are
    exact and at most 2 workers are alive at once."""
    inline_map = inline(  # each inner map run wants 1 worker: two of them run at once
        machine(
            {"D": distributed(machine({"T": task("double", End=True)}), ItemsPath="$", MaxConcurrency=1)}
        ),
        ItemsPath="$.groups",
    )
    if where == "driver":
        d, data = machine({"Inline": inline_map}), {"groups": GROUPS}
        expected: Any = [[2 * x for x in xs] for xs in GROUPS]
    else:
        d = machine(
            {
                "Outer": distributed(
                    machine({"Inline": inline_map}),
                    ItemsPath="$.outer",
                    ItemSelector={"groups.$": "$$.Map.Item.Value"},
                )
            }
        )
        data = {"outer": [GROUPS[:3], GROUPS[3:]]}
        expected = [[[2 * x for x in xs] for xs in GROUPS[:3]], [[2 * x for x in xs] for xs in GROUPS[3:]]]
    with WorkerWatch(backend) as watch:
        out = output(execute(d, data, backend))
    check_workers_bounded(backend, watch)
    assert out == expected


def test_nested_distributed_map_with_result_path_null(backend, tmp_path):
    """An inner DISTRIBUTED Map with ResultPath null: each outer child's output is its input
    unchanged, and every inner child ran exactly once (one marker line per item)."""
    inner = distributed(
        machine({"Mark": task("mark", End=True)}),
        ItemsPath="$.xs",
        ItemSelector={"dir.$": "$.dir", "key.$": "States.Format('{}-{}', $.group, $$.Map.Item.Value)"},
        MaxConcurrency=2,
        ResultPath=None,
    )
    d = machine(
        {
            "Outer": distributed(
                machine({"Inner": inner}),
                ItemsPath="$.groups",
                ItemSelector={"xs.$": "$$.Map.Item.Value", "group.$": "$$.Map.Item.Index", "dir.$": "$.dir"},
            )
        }
    )
    with WorkerWatch(backend) as watch:
        out = output(execute(d, {"groups": GROUPS, "dir": str(tmp_path)}, backend))
    check_workers_bounded(backend, watch)
    assert out == [{"xs": xs, "group": g, "dir": str(tmp_path)} for g, xs in enumerate(GROUPS)]
    marks = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert marks == {f"{g}-{x}": "ran\n" for g, xs in enumerate(GROUPS) for x in xs}


def test_nested_distributed_maps_from_the_cli(tmp_path):
    """`distmap execute` on a nested DISTRIBUTED Map: exit code 0, the exact output, and the
    command's process never has more than its 2 workers below it (no worker forks workers)."""
    d = machine(
        {
            "Outer": distributed(
                machine({"Inner": distributed(machine({"T": task("double", End=True)}), ItemsPath="$")}),
                ItemsPath="$.groups",
                MaxConcurrency=4,
            )
        }
    )
    (tmp_path / "m.asl.json").write_text(json.dumps(d))
    (tmp_path / "resources.json").write_text(json.dumps(NESTED_RESOURCES))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    cmd = [sys.executable, "-m", "distmap", "execute", str(tmp_path / "m.asl.json")]
    cmd += ["--input", json.dumps({"groups": GROUPS}), "--resources", str(tmp_path / "resources.json")]
    with WorkerWatch("local") as watch:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    resp = json.loads(proc.stdout)
    assert json.loads(resp["output"]) == [[2 * x for x in xs] for xs in GROUPS]
    assert 2 <= watch.peak <= 1 + WORKERS  # the command itself and its workers


def test_worker_budget_grants_what_is_free_and_waits_while_none_is():
    """The driver's budget: a map run gets the workers it wants that are free (at least one),
    waits while none is, and goes on once another map run gives its workers back."""
    import threading

    from distmap.executors.shared import WorkerBudget

    budget = WorkerBudget()
    assert budget.acquire(total=2, wanted=5) == 2  # capped at the total
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(total=2, wanted=2)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and got == []  # none free: it waits
    budget.release(1)
    waiter.join(5)
    assert got == [1]  # one came back: it goes on with one
    budget.release(1)
    budget.release(1)
    assert (budget.used, budget.peak) == (0, 2)
