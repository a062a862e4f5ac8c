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
and ``BackendUnavailable``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import structlog

from distmap.asl.machine import ExecutionTimedOut, Run, StateMachine
from distmap.asl.resources import Resources
from distmap.config.parse import parse_document
from distmap.errors import ConfigError, StatesError
from distmap.records import iso_now

log = structlog.get_logger("distmap")

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
    try:
        raw = path.read_text()
    except OSError as exc:
        raise ConfigError("definition", f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_document(raw, str(path)), str(path)


def _state_machine_name(source: str | None, given: str | None) -> str:
    if given:
        return given
    if source:
        stem = Path(source).name.split(".")[0]
        cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)
        return cleaned or "StateMachine"
    return "StateMachine"


def prepare(
    definition: str | os.PathLike[str] | Mapping[str, Any],
    resources: Resources | Mapping[str, Any] | str | os.PathLike[str] | None,
) -> tuple[StateMachine, Resources, str | None]:
    """Parse and check everything an execution needs, raising ConfigError before any work."""
    data, source = load_definition(definition)
    machine = StateMachine.parse(data, source=source)
    if isinstance(resources, Resources):
        res = resources
    elif isinstance(resources, Mapping):
        res = Resources.from_data(resources)
    elif resources is None:
        res = Resources()
    else:
        res = Resources.load(resources)
    missing = res.missing(machine.resources())
    if missing:
        raise ConfigError(
            "--resources",
            f"{len(missing)} Task resource(s) are not mapped to a function: {', '.join(missing)} "
            "(add them under Resources: in the resources file, as module:function)",
            source=res.source,
        )
    res.check_importable()
    return machine, res, source


def execute(
    definition: str | os.PathLike[str] | Mapping[str, Any],
    input: Any = None,
    *,
    resources: Resources | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    backend: str = "local",
    name: str | None = None,
    state_machine_name: str | None = None,
    **executor_options: Any,
) -> dict[str, Any]:
    """Run a state machine to its end; return the StartSyncExecution-shaped response.

    Args:
        definition: the ASL definition: a mapping, JSON text, or a JSON / YAML file path.
        input: the execution input (any JSON value; default ``{}``).
        resources: the resources file (path), or its mapping, mapping Task ``Resource`` strings to
            ``module:function``.
        backend: where DISTRIBUTED Map children run: ``local`` or ``ray``.
        name: the execution name (default: a UUID).
        state_machine_name: used in ARNs (default: the definition file's name).
        executor_options: as for ``distmap.run`` (``address=...`` for Ray, ...).
    """
    from distmap.executors import BACKENDS

    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    machine, res, source = prepare(definition, resources)
    data = {} if input is None else input
    sm_name = _state_machine_name(source, state_machine_name)
    exec_name = name or str(uuid.uuid4())
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    account = os.environ.get("DISTMAP_ACCOUNT_ID", "123456789012")
    sm_arn = f"arn:aws:states:{region}:{account}:stateMachine:{sm_name}"
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
        state_machine={"Id": sm_arn, "Name": sm_name},
        resources=res,
        backend=backend,
        executor_options={k: v for k, v in executor_options.items() if k not in _CONNECTION_OPTIONS},
        deadline=time.monotonic() + machine.timeout if machine.timeout else None,
        region=region,
        account=account,
    )
    bound = log.bind(execution_arn=exec_arn)
    bound.info("execution.started", state_machine=sm_name, backend=backend)
    response: dict[str, Any] = {
        "executionArn": exec_arn,
        "stateMachineArn": sm_arn,
        "name": exec_name,
        "startDate": started,
        "input": input_json,
        "inputDetails": {"included": True},
    }
    with _backend_session(backend, executor_options, res):
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
    ex.connect_for([t for t in resources.mapping.values()])
    try:
        yield
    finally:
        ex.close()
