"""A DISTRIBUTED Map state, run by the same engine as ``distmap run``.

The state's fields become a Map job (``MapJob``): ItemReader, ItemSelector, ItemBatcher,
MaxConcurrency, the tolerated-failure thresholds and ResultWriter keep their ASL meaning, the
``*Path`` variants are resolved from the state's input first, and the ItemProcessor state
machine becomes the item function (``ChildMachine``), which runs inside the engine's workers,
local or Ray, with the engine's batching. Outputs, as AWS returns them:

* with ``ResultWriter`` (``Resource`` + ``Parameters``): ``{"MapRunArn", "ResultWriterDetails":
  {"Bucket", "Key"}}`` with Key ``<Prefix>/<map-run-id>/manifest.json``;
* without: the array of child outputs in item order (``Transformation`` COMPACT, or as given in
  a ResultWriter that only has ``WriterConfig``); a failed child that was tolerated appears as
  its whole execution record (``Error``, ``Cause``, ``Status``...), as AWS does.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from distmap.asl import path_values
from distmap.asl.execution_types import (
    DEADLINE_HORIZON,
    ExecutionTimedOut,
    child_limits,
    inherit_limits,
    timed_out,
)
from distmap.asl.query_language import states_of, variables_of
from distmap.asl.resources import Resources
from distmap.config.fields import Fields
from distmap.config.parse import parse_job
from distmap.dataflow.jsonata import compile_template, is_expression
from distmap.dataflow.jsonpath import compile_query
from distmap.dataflow.templates import compile_payload
from distmap.errors import ConfigError, StatesError, Timeout
from distmap.executors.worker_context import current_worker

if TYPE_CHECKING:
    from distmap.asl.machine import MapState, Run

READER_RESOURCES = ("arn:aws:states:::s3:getObject", "arn:aws:states:::s3:listObjectsV2")
WRITER_RESOURCES = ("arn:aws:states:::s3:putObject",)


class ChildMachine:
    """The ItemProcessor of a DISTRIBUTED Map as an item function: picklable (the definition and
    the resources travel, the compiled machine is rebuilt once per worker). Each call is one child
    execution, held to its ExecutionType's limit (``execution_types.py``)."""

    def __init__(
        self, definition: Mapping[str, Any], resources: Resources, run_info: dict[str, Any], engine: Any
    ) -> None:
        self.definition = dict(definition)
        self.resources = resources
        self.run_info = run_info
        self.engine = engine
        """``(StateMachine, Run)``: the classes of the machine module, passed in (this module sits
        below it and never imports it); pickled by reference."""
        self._machine: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "definition": self.definition,
            "resources": self.resources,
            "run_info": self.run_info,
            "engine": self.engine,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._machine = None

    def ship_modules(self) -> list[str]:
        """Item-function specs whose modules must reach Ray workers."""
        return [t for t in self.resources.ship_specs() if isinstance(t, str)]

    def __call__(self, item: Any) -> Any:
        if self._machine is None:
            self._setup()
        limit = self._limit
        own = self._machine.timeout  # the ItemProcessor's own TimeoutSeconds
        if limit is None and own is None and self.run_info.get("outer_deadline") is None:
            return self._machine.run(item, self._run)
        start = time.monotonic()
        # a deadline also cuts a running Task, Wait or nested map short; the execution that
        # started this map may have one too (its TimeoutSeconds, or its own ExecutionType limit).
        # The earliest of them stops the child, and its cause names that one.
        deadlines: list[tuple[float, str]] = []
        if limit is not None and limit <= DEADLINE_HORIZON:
            deadlines.append((start + limit, "type"))
        if own is not None:
            deadlines.append((start + own, "own"))
        outer = self.run_info.get("outer_deadline")
        if outer is not None:
            deadlines.append((start + outer - time.time(), "outer"))
        deadline, first = min(deadlines) if deadlines else (None, None)
        run = (
            self._run if deadline is None else replace(self._run, deadline=deadline, cancel=threading.Event())
        )
        try:
            out = self._machine.run(item, run)
        except ExecutionTimedOut:
            if first == "own":
                raise Timeout(
                    cause=f"the child execution did not finish within its TimeoutSeconds ({own:g})"
                ) from None
            if first == "type" and limit is not None:
                raise timed_out(self._type, limit) from None
            raise Timeout(cause=OUTER_TIMED_OUT) from None
        except StatesError:
            if limit is not None and time.monotonic() - start > limit:  # it ended past its limit
                raise timed_out(self._type, limit) from None
            raise
        if limit is not None and time.monotonic() - start > limit:
            raise timed_out(self._type, limit)
        return out

    def _setup(self) -> None:
        """Build the machine once per worker (under a lock: lanes may call at the same time)."""
        state_machine, run_cls = self.engine
        with _SETUP_LOCK:
            if self._machine is not None:
                return
            self._type = self.run_info.get("execution_type", "STANDARD")
            limits = self.run_info.get("limits")
            if limits is not None and current_worker() is not None:
                # a worker serves one map run: maps nested in its children use the same limits
                inherit_limits(limits)
            self._limit = None if limits is None else limits[self._type]
            # one Run per worker: the child executions share nothing that changes per item
            self._run = run_cls(
                execution=self.run_info["execution"],
                state_machine=self.run_info["state_machine"],
                resources=self.resources,
                # a DISTRIBUTED Map inside this child runs in this worker (executors/shared.py)
                backend=self.run_info.get("backend", "local"),
                run_child=self.run_info.get("run_child"),
                mask_causes=self.run_info.get("mask_causes", True),
            )
            self._machine = state_machine.parse(self.definition, where="ItemProcessor")


_SETUP_LOCK = threading.Lock()
OUTER_TIMED_OUT = "the child execution was stopped: the execution running its Map state timed out"


# --------------------------------------------------------------------------- validation


def check_distributed_fields(state: MapState, f: Fields) -> None:
    """Static checks of a DISTRIBUTED Map's fields, at definition time."""
    d = state.distributed
    reader = d.get("ItemReader")
    if reader is not None:
        rf = Fields(reader, f.sub("ItemReader"), f.source)
        resource = rf.get("Resource")
        if resource not in READER_RESOURCES:
            supported = ", ".join(READER_RESOURCES)
            raise rf.error("Resource", f"unsupported ItemReader resource {resource!r}; supported: {supported}")
        listing = resource == READER_RESOURCES[1]
        pkey = _params_key(state)
        params = rf.require(pkey)
        if not isinstance(params, Mapping):
            raise rf.error(pkey, f"must be an object with Bucket and {'Prefix' if listing else 'Key'}")
        _template_check(state, params, rf.sub(pkey), f.source)
        config = rf.get("ReaderConfig", {})
        if not isinstance(config, Mapping) or ("InputType" not in config and not listing):
            raise rf.error(
                "ReaderConfig", "must be an object with InputType (CSV, JSON, JSONL, PARQUET or MANIFEST)"
            )
        if "MaxItems" in config and "MaxItemsPath" in config:
            raise rf.error("ReaderConfig.MaxItems", "MaxItems and MaxItemsPath cannot both be set")
        rf.finish()
    writer = d.get("ResultWriter")
    if writer is not None:
        wf = Fields(writer, f.sub("ResultWriter"), f.source)
        resource = wf.get("Resource")
        pkey = _params_key(state)
        params = wf.get(pkey)
        wf.get("WriterConfig")
        if resource is None and params is None and wf.get("WriterConfig") is None:
            raise wf.error("", "needs Resource and Parameters, or WriterConfig")
        if resource is not None and resource not in WRITER_RESOURCES:
            raise wf.error(
                "Resource",
                f"unsupported ResultWriter resource {resource!r}; supported: {WRITER_RESOURCES[0]}",
            )
        if (resource is None) != (params is None):
            raise wf.error(pkey, f"Resource and {pkey} go together")
        if params is not None:
            if not isinstance(params, Mapping):
                raise wf.error(pkey, "must be an object with Bucket and Prefix")
            _template_check(state, params, wf.sub(pkey), f.source)
        wf.finish()
    for key in ("ToleratedFailurePercentage", "ToleratedFailureCount"):
        if key in d and key + "Path" in d:
            raise f.error(key, f"{key} and {key}Path cannot both be set")
    # the rest (numbers, batcher fields, reader config) is validated by the engine's job parser,
    # once paths are resolved; a static job is checked here already
    if (
        not any(k.endswith("Path") for k in d)
        and reader is not None
        and not _has_dynamic(reader)
        and not (state.jsonata and _has_dynamic(dict(d)))
    ):
        job = _job_mapping(state, {}, {}, static_check=True)
        try:
            parse_job(job, source=f.source)
        except ConfigError as exc:
            raise ConfigError(f"{f.path}.{exc.field}", exc.reason, source=f.source) from None


def _params_key(state: MapState) -> str:
    """ItemReader / ResultWriter take Arguments in a JSONata state, Parameters in a JSONPath one."""
    return "Arguments" if state.jsonata else "Parameters"


def _template_check(state: MapState, template: Mapping[str, Any], where: str, source: str | None) -> None:
    try:
        if state.jsonata:
            compile_template(template, where.rsplit(".", 1)[-1], state.name)
        else:
            compile_payload(template, where=where)
    except ValueError as exc:
        raise ConfigError(where, str(exc), source=source) from None


def _has_dynamic(value: Any) -> bool:
    if is_expression(value):
        return True
    if isinstance(value, Mapping):
        return any((isinstance(k, str) and k.endswith(".$")) or _has_dynamic(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_dynamic(x) for x in value)
    return False


# --------------------------------------------------------------------------- run


def _resolve(value: Any, effective: Any, ctx: Any, state: MapState | None = None, field: str = "") -> Any:
    if state is not None and state.jsonata:
        if not _has_dynamic(value):
            return value
        return compile_template(value, field, state.name)(states_of(effective, ctx), variables_of(ctx))
    if isinstance(value, Mapping) and _has_dynamic(value):
        return compile_payload(value)(effective, ctx)
    return value


def _dynamic_number(state: MapState, key: str, effective: Any, ctx: Any) -> Any:
    """``Key`` or the value at ``KeyPath`` (validated as AWS does: a bad value is States.Runtime)."""
    d = state.distributed
    if key + "Path" not in d:
        return _resolve(d.get(key), effective, ctx, state, key)
    query = compile_query(d[key + "Path"])
    if key == "ToleratedFailurePercentage":
        return path_values.percentage(query, state.name, effective, ctx)
    return path_values.non_negative(query, f"{key}Path", state.name, effective, ctx)


def _job_mapping(state: MapState, effective: Any, ctx: Any, *, static_check: bool = False) -> dict[str, Any]:
    d = state.distributed
    job: dict[str, Any] = {"ItemProcessor": {"Function": "distmap.asl.distributed:ChildMachine"}}
    reader = d.get("ItemReader")
    if reader is not None:
        config = dict(reader.get("ReaderConfig") or {})
        if "MaxItemsPath" in config:
            path = config.pop("MaxItemsPath")
            config["MaxItems"] = (
                0 if static_check else path_values.max_items(compile_query(path), state.name, effective, ctx)
            )
        if not static_check:
            config = _resolve(config, effective, ctx, state, "ItemReader/ReaderConfig")
        pkey = _params_key(state)
        job["ItemReader"] = {
            "Resource": reader["Resource"],
            "Parameters": reader[pkey] if static_check else _resolve(reader[pkey], effective, ctx, state, "Arguments"),
            **({"ReaderConfig": config} if config or "ReaderConfig" in reader else {}),
        }
    if state.jsonata:
        job["QueryLanguage"] = "JSONata"
    if state.item_selector_raw is not None:
        job["ItemSelector"] = state.item_selector_raw
    batcher = d.get("ItemBatcher")
    if batcher is not None:
        if state.jsonata and not static_check:
            batcher = _resolve(batcher, effective, ctx, state, "ItemBatcher")
        job["ItemBatcher"] = _resolve_batcher(state.name, batcher, effective, ctx, static_check)
    if not static_check:
        for key in ("ToleratedFailurePercentage", "ToleratedFailureCount"):
            value = _dynamic_number(state, key, effective, ctx)
            if value is not None:
                job[key] = value
    else:
        for key in ("ToleratedFailurePercentage", "ToleratedFailureCount"):
            if key in d:
                job[key] = d[key]
    writer = d.get("ResultWriter")
    if writer is not None and writer.get("Resource"):
        job["ResultWriter"] = {
            "Resource": writer["Resource"],
            "Parameters": _resolve(writer[_params_key(state)], effective, ctx, state, "Arguments"),
            **({"WriterConfig": writer["WriterConfig"]} if "WriterConfig" in writer else {}),
        }
    return job


def _resolve_batcher(
    state: str, batcher: Any, effective: Any, ctx: Any, static_check: bool
) -> dict[str, Any]:
    out = {}
    for key, value in dict(batcher).items():
        if key in ("MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"):
            name = key[: -len("Path")]
            out[name] = (
                1
                if static_check
                else path_values.non_negative(compile_query(value), key, state, effective, ctx)
            )
        elif key == "BatchInput":
            out[key] = value if static_check else _resolve(value, effective, ctx)
        else:
            out[key] = value
    return out


def run_distributed_map(state: MapState, effective: Any, ctx: dict[str, Any], run: Run) -> Any:
    from distmap.coordinator import Coordinator
    from distmap.executors.shared import executor_for_map

    job = _job_mapping(state, effective, ctx)
    scratch = None
    try:
        if "ItemReader" not in job:  # items come from the state input (ItemsPath)
            scratch = Path(tempfile.mkdtemp(prefix="distmap-map-"))
            items = state.items_of(effective, ctx)
            src = scratch / "items.jsonl"
            with open(src, "wb") as fh:
                for item in items:
                    fh.write(orjson.dumps(item) + b"\n")
            job["ItemReader"] = {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}}
        writer = state.distributed.get("ResultWriter") or {}
        to_s3 = "ResultWriter" in job
        transformation = (writer.get("WriterConfig") or {}).get(
            "Transformation", "NONE" if to_s3 else "COMPACT"
        )
        if not to_s3:
            scratch = scratch or Path(tempfile.mkdtemp(prefix="distmap-map-"))
            job["ResultWriter"] = {
                "Destination": str(scratch / "results"),
                "WriterConfig": {"OutputType": "JSONL", "Transformation": "NONE"},
            }
        executor, default_lanes = executor_for_map(run.backend, run.executor_options)
        max_conc = state.max_concurrency_for(effective, ctx) or default_lanes
        if max_conc:
            job["MaxConcurrency"] = max_conc
        job["StateMachineName"] = run.state_machine["Name"]
        job["Label"] = state.label or state.name
        job["Input"] = effective
        mj = parse_job(job)
        if state.item_selector_raw is not None and variables_of(ctx):
            mj = replace(mj, variables=dict(variables_of(ctx)))  # the ItemSelector may read them
        remaining = run.remaining()
        child = ChildMachine(
            state.processor_definition,
            run.resources,
            {
                "execution": run.execution,
                "state_machine": run.state_machine,
                "backend": run.backend,
                "execution_type": state.execution_type,
                "limits": child_limits(),
                "outer_deadline": None if remaining is None else time.time() + remaining,
                "run_child": run.run_child,
                "mask_causes": run.mask_causes,
            },
            (type(state.processor), type(run)),
        )
        mj = replace(mj, processor=replace(mj.processor, function=child, execution_type=state.execution_type))
        result = _run_until_deadline(
            Coordinator(mj, executor, handle_signals=False, mask_causes=run.mask_causes), run
        )
        if result.status != "SUCCEEDED":
            raise StatesError(
                result.error or "States.Runtime", result.cause or f"the map run {result.status}"
            )
        if to_s3:
            bucket = job["ResultWriter"]["Parameters"]["Bucket"]
            prefix = str(job["ResultWriter"]["Parameters"].get("Prefix") or "").strip("/")
            key = f"{prefix}/{result.run_id}/manifest.json" if prefix else f"{result.run_id}/manifest.json"
            return {"MapRunArn": result.map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}
        return _collect_outputs(Path(result.manifest or ""), transformation)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_until_deadline(coordinator: Any, run: Run) -> Any:
    """Run the map run; at the execution's deadline (its TimeoutSeconds, or the ExecutionType
    limit of the child it runs in) stop it, as Ctrl-C would (its unfinished items are PENDING),
    and end the execution TIMED_OUT. On the in-process executor (a map inside a worker) the stop
    takes effect once the running chunk is done."""
    remaining = run.remaining()
    if remaining is None:
        return coordinator.run()
    timer = threading.Timer(remaining, coordinator.request_abort)
    timer.daemon = True
    timer.start()
    try:
        result = coordinator.run()
    finally:
        timer.cancel()
    if run.remaining() == 0:  # stopped, or its children were (they share the deadline)
        raise ExecutionTimedOut()
    return result


def _collect_outputs(manifest_path: Path, transformation: str) -> list[Any]:
    """The Map's output array from local JSONL result files, in item order."""
    manifest = json.loads(manifest_path.read_text())
    root = Path(manifest["DestinationBucket"])
    indexed: list[tuple[int, Any, bool]] = []
    for status in ("SUCCEEDED", "FAILED"):
        for entry in manifest["ResultFiles"].get(status, []):
            with open(root / entry["Key"], "rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    rec = orjson.loads(line)
                    index = int(rec["Name"].rsplit("-", 1)[1])
                    if status == "SUCCEEDED" and transformation != "NONE":
                        indexed.append((index, orjson.loads(rec["Output"]), True))
                    else:
                        indexed.append((index, rec, False))
    indexed.sort(key=lambda t: t[0])
    out: list[Any] = []
    for _, value, ok in indexed:
        if ok and transformation == "FLATTEN" and isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)
    return out
