"""``distmap.execute``: run a whole state machine and answer like ``StartSyncExecution``.

    response = distmap.execute("machine.asl.json", {"bucket": "b"}, resources="resources.yaml")
    response["status"]   # SUCCEEDED | FAILED | TIMED_OUT
    json.loads(response["output"])

The response has the fields of StartSyncExecution's: ``executionArn``, ``stateMachineArn``,
``name``, ``startDate``, ``stopDate``, ``status``, ``input`` / ``output`` as JSON strings with
``inputDetails`` / ``outputDetails``, and ``error`` / ``cause`` when it did not succeed. Dates
are ISO 8601 UTC strings (as distmap's result records), not epoch numbers.

Only problems that stop the execution from starting raise: ``ConfigError`` (a bad definition,
naming the state and field; a bad or incomplete resources file, naming every unmapped resource)
and ``BackendUnavailable``. ``stub="echo"`` runs unmapped Tasks as echo stubs instead.

``distmap.validate(definition, resources)`` checks the same things without running anything and
returns what every Task needs and what maps it (``distmap validate`` on the command line).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from distmap.asl.children import wait_for_started_executions
from distmap.asl.integrations import check_targets, count_states, requirements, unmapped
from distmap.asl.machine import ExecutionTimedOut, Run, StateMachine
from distmap.asl.resources import Resources
from distmap.config.parse import parse_document, read_document
from distmap.errors import ConfigError, StatesError
from distmap.logs import get_logger
from distmap.records import iso_now, region_account

log = get_logger()

#: executor options that configure the Ray connection (made once per execution)
_CONNECTION_OPTIONS = ("address", "num_cpus", "ship", "runtime_env", "dashboard", "init_options")


def load_definition(
    definition: str | os.PathLike[str] | Mapping[str, Any],
) -> tuple[Mapping[str, Any], str | None]:
    """A definition given as a mapping, a JSON/YAML string, or a file path -> (mapping, source)."""
    if isinstance(definition, Mapping):
        return definition, None
    text = str(definition)
    if isinstance(definition, str) and text.lstrip().startswith("{"):
        return parse_document(text, "<definition>"), None
    path = Path(definition)
    return parse_document(read_document(path, "definition"), str(path)), str(path)


def _state_machine_name(source: str | None, given: str | None) -> str:
    if given:
        return given
    if source:
        stem = Path(source).name.split(".")[0]
        cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)
        return cleaned or "StateMachine"
    return "StateMachine"


def load_resources(
    resources: Resources | Mapping[str, Any] | str | os.PathLike[str] | None, stub: str | None = None
) -> Resources:
    if isinstance(resources, Resources):
        res = resources
    elif isinstance(resources, Mapping):
        res = Resources.from_data(resources)
    elif resources is None:
        res = Resources()
    else:
        res = Resources.load(resources)
    return res.with_stub(stub) if stub is not None else res


def prepare(
    definition: str | os.PathLike[str] | Mapping[str, Any],
    resources: Resources | Mapping[str, Any] | str | os.PathLike[str] | None,
    *,
    stub: str | None = None,
) -> tuple[StateMachine, Resources, str | None]:
    """Parse and check everything an execution needs, raising ConfigError before any work.

    Every Task must find what runs it (see ``distmap.asl.resources``): the unmapped ones are all
    named at once, unless ``stub="echo"`` runs them as echo stubs."""
    data, source = load_definition(definition)
    machine = StateMachine.parse(data, source=source)
    res = load_resources(resources, stub)
    region, account = region_account()
    needs = requirements(machine, res, region, account, source=source)
    missing = unmapped(needs)
    if missing and res.stub is None:
        raise ConfigError(
            "--resources",
            f"{len(missing)} Task resource(s) are not mapped: "
            + "; ".join(f"{n.kind} {n.name} ({n.where})" for n in missing)
            + " (map them in the resources file: Resources: for resources, Functions: for Lambda "
            "functions, StateMachines: for state machines, Activities: for activities; or run with "
            "--stub echo)",
            source=res.source,
        )
    check_targets(needs, res)
    res.check_importable()
    return machine, res, source


def validate(
    definition: str | os.PathLike[str] | Mapping[str, Any],
    resources: Resources | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Check a definition (and resources file) without running it; list what it needs.

    Returns ``{"definition", "valid": True, "states", "requirements": [{"kind", "name",
    "states", "target"}...], "unmapped": [...]}``; a requirement's ``target`` is what runs it
    (``module:function``, ``boto3``, ``echo``, a definition file, ``built-in``, ``dynamic``) or
    None when unmapped. Raises ConfigError for an invalid definition or resources file."""
    data, source = load_definition(definition)
    machine = StateMachine.parse(data, source=source)
    res = load_resources(resources)
    region, account = region_account()
    needs = requirements(machine, res, region, account, source=source)
    check_targets(needs, res)
    res.check_importable()
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for need in needs:
        entry = grouped.setdefault(
            (need.kind, need.name),
            {"kind": need.kind, "name": need.name, "states": [], "target": need.target},
        )
        entry["states"].append(need.where)
    listing = list(grouped.values())
    return {
        "definition": source or "<definition>",
        "valid": True,
        "states": count_states(machine),
        "requirements": listing,
        "unmapped": [e for e in listing if e["target"] is None],
    }


def execute(
    definition: str | os.PathLike[str] | Mapping[str, Any],
    input: Any = None,
    *,
    resources: Resources | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    backend: str = "local",
    name: str | None = None,
    state_machine_name: str | None = None,
    stub: str | None = None,
    mask_causes: bool = True,
    **executor_options: Any,
) -> dict[str, Any]:
    """Run a state machine to its end; return the StartSyncExecution-shaped response.

    Args:
        definition: the ASL definition: a mapping, JSON text, or a JSON / YAML file path.
        input: the execution input (any JSON value; default ``{}``).
        resources: the resources file (path), or its mapping (see ``distmap.asl.resources``).
        backend: where DISTRIBUTED Map children run: ``local`` or ``ray``.
        name: the execution name (default: a UUID).
        state_machine_name: used in ARNs (default: the definition file's name).
        stub: ``"echo"`` runs every unmapped Task as an echo stub (a dry run).
        mask_causes: mask credentials in the ``Cause`` of DISTRIBUTED Map FAILED records (default
            on; ``False`` keeps causes verbatim, as ``--no-mask-causes`` does).
        executor_options: as for ``distmap.run`` (``address=...`` for Ray, ...).
    """
    from distmap.executors import BACKENDS

    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    machine, res, source = prepare(definition, resources, stub=stub)
    data = {} if input is None else input
    sm_name = _state_machine_name(source, state_machine_name)
    region, account = region_account()
    sm_arn = f"arn:aws:states:{region}:{account}:stateMachine:{sm_name}"
    with _backend_session(backend, executor_options, res):
        try:
            return run_execution(
                machine,
                data,
                resources=res,
                backend=backend,
                executor_options={k: v for k, v in executor_options.items() if k not in _CONNECTION_OPTIONS},
                state_machine_arn=sm_arn,
                name=name,
                mask_causes=mask_causes,
            )
        finally:
            wait_for_started_executions()


def run_child_execution(
    parent: Run,
    key: str,
    data: Any,
    *,
    state_machine_arn: str,
    name: str,
    cancel: threading.Event | None,
) -> dict[str, Any]:
    """A child execution of the ``StateMachines`` entry ``key`` (``states:startExecution``), run
    like its parent: same resources, backend and options. Handed to every ``Run`` as ``run_child``."""
    res = parent.resources
    return run_execution(
        res.parsed_machine(key, StateMachine.parse),
        data,
        resources=res,
        backend=parent.backend,
        executor_options=parent.executor_options,
        state_machine_arn=state_machine_arn,
        name=name,
        cancel=cancel,
        mask_causes=parent.mask_causes,
    )


def run_execution(
    machine: StateMachine,
    data: Any,
    *,
    resources: Resources,
    backend: str,
    executor_options: dict[str, Any],
    state_machine_arn: str,
    name: str | None = None,
    cancel: threading.Event | None = None,
    mask_causes: bool = True,
) -> dict[str, Any]:
    """Run one execution of a parsed machine (top-level, or a child started by a Task) and return
    its StartSyncExecution-shaped response. ``cancel``: a parent's flag the child stops on."""
    parts = state_machine_arn.split(":")
    region, account = region_account()
    if len(parts) >= 7 and parts[0] == "arn":
        region, account = parts[3] or region, parts[4] or account
    sm_name = parts[-1]
    exec_name = name or str(uuid.uuid4())
    exec_arn = f"arn:aws:states:{region}:{account}:execution:{sm_name}:{exec_name}"
    input_json = orjson.dumps(data).decode()
    started = iso_now()
    run = Run(
        execution={
            "Id": exec_arn,
            "Name": exec_name,
            "StartTime": started,
            "Input": data,
            "RoleArn": f"arn:aws:iam::{account}:role/distmap",
        },
        state_machine={"Id": state_machine_arn, "Name": sm_name},
        resources=resources,
        backend=backend,
        executor_options=executor_options,
        deadline=time.monotonic() + machine.timeout if machine.timeout else None,
        cancel=cancel if cancel is not None else threading.Event(),
        region=region,
        account=account,
        mask_causes=mask_causes,
        run_child=run_child_execution,
    )
    bound = log.bind(execution_arn=exec_arn)
    bound.info("execution.started", state_machine=sm_name, backend=backend)
    response: dict[str, Any] = {
        "executionArn": exec_arn,
        "stateMachineArn": state_machine_arn,
        "name": exec_name,
        "startDate": started,
        "input": input_json,
        "inputDetails": {"included": True},
    }
    try:
        output = machine.run(data, run)
    except ExecutionTimedOut:
        response.update(
            status="TIMED_OUT",
            error="States.Timeout",
            cause=f"the execution did not finish within TimeoutSeconds ({machine.timeout:g})",
        )
    except StatesError as exc:
        response.update(status="FAILED", error=exc.error or None, cause=exc.cause or None)
    else:
        response.update(
            status="SUCCEEDED",
            output=orjson.dumps(output).decode(),
            outputDetails={"included": True},
        )
    response["stopDate"] = iso_now()
    for key in ("error", "cause"):
        if key in response and response[key] is None:
            del response[key]
    bound.info("execution.finished", status=response["status"], error=response.get("error"))
    return response


@contextmanager
def _backend_session(backend: str, options: dict[str, Any], resources: Resources) -> Iterator[None]:
    """For Ray: connect once per execution (shipping the resources' modules), not once per Map."""
    if backend != "ray":
        yield
        return
    from distmap.executors.ray_backend import RayExecutor

    ex = RayExecutor(**{k: v for k, v in options.items() if k in _CONNECTION_OPTIONS})
    ex.connect_for(resources.ship_specs())
    try:
        yield
    finally:
        ex.close()
