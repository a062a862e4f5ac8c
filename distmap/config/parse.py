"""Job file (YAML / JSON, ASL-shaped) -> validated ``MapJob``.

Every problem is reported as one ``ConfigError`` naming the field path and the reason, before
any item is read. Unknown fields are errors (with a "did you mean" hint): a typo in
``ToleratedFailureCount`` must never silently mean "tolerate nothing".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from distmap.config import yamlsafe
from distmap.config.fields import Fields, shown, type_name
from distmap.config.model import (
    CatcherConfig,
    ItemBatcherConfig,
    ItemReaderConfig,
    MapJob,
    ProcessorConfig,
    ResultWriterConfig,
    RetrierConfig,
)
from distmap.dataflow.jsonata import is_expression
from distmap.dataflow.jsonpath import PathSyntaxError, compile_result_path
from distmap.dataflow.selectors import (
    JSONATA,
    JSONPATH,
    QUERY_LANGUAGES,
    compile_batch_input,
    compile_selector,
)
from distmap.errors import ConfigError
from distmap.names import name_problem

S3_GET_OBJECT = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::s3:putObject"
S3_LIST_OBJECTS = "arn:aws:states:::s3:listObjectsV2"
INPUT_TYPES = ("CSV", "JSON", "JSONL", "PARQUET", "MANIFEST")
#: ListObjectsV2 parameters passed through besides Bucket and Prefix
LIST_PARAMETERS = ("StartAfter", "Delimiter", "RequestPayer", "ExpectedBucketOwner")
OTHER_SCHEMES = ("gs", "az", "http", "https")
CSV_DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
_MAX_ASL_INT = 99_999_999
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")


# ---------------------------------------------------------------------------------------------
def load_job(path: str | os.PathLike[str], overrides: list[str] | None = None) -> MapJob:
    """Read, override (``Field.Sub=value``) and validate a YAML or JSON job file."""
    p = Path(path)
    source = str(p)
    data = parse_document(read_document(p, what="job file"), source)
    for item in overrides or []:
        apply_override(data, item, source=source)
    return parse_job(data, base_dir=str(p.resolve().parent), source=source, default_name=p.stem)


def read_document(
    path: str | os.PathLike[str], field: str = "", *, source: str | None = None, what: str | None = None
) -> str:
    """The text of a job file, definition or resources file, or a ConfigError saying why not."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        if what is None:
            raise ConfigError(field, f"cannot read {p}: No such file or directory", source=source) from None
        raise ConfigError(field, f"{what} not found: {p}", source=source) from None
    except OSError as exc:
        raise ConfigError(field, f"cannot read {p}: {exc.strerror or exc}", source=source) from None
    return decode_text(raw, str(p))


def decode_text(raw: bytes, source: str) -> str:
    """A job file or definition as text: UTF-8 (a byte order mark is allowed), else a ConfigError
    naming the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            "",
            f"the file is not valid UTF-8: byte 0x{raw[exc.start]:02x} at line {line} column {column} "
            f"({exc.reason}); save it as UTF-8",
            source=source,
        ) from None


def parse_document(text: str, source: str) -> Any:
    """Parse YAML (a superset of JSON), reporting the line and column of a syntax error."""
    try:
        if source.endswith(".json"):
            return json.loads(text)
        return yamlsafe.load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", source=source
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", f"invalid YAML{where}: {problem}", source=source) from None


_OVERRIDE_PATH = re.compile(r"[^.\[\]=]+(?:\[\d+\])*(?:\.[^.\[\]=]+(?:\[\d+\])*)*")
_OVERRIDE_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def override_steps(key: str) -> list[str | int]:
    """``ItemProcessor.Retry[0].MaxAttempts`` -> ``["ItemProcessor", "Retry", 0, "MaxAttempts"]``."""
    key = key.strip()
    if not _OVERRIDE_PATH.fullmatch(key):
        raise ValueError(key)
    return [name if name else int(index) for name, index in _OVERRIDE_STEP.findall(key)]


def _step_text(steps: list[str | int]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else s) for i, s in enumerate(steps))


def apply_override(data: Any, item: str, *, source: str | None = None) -> None:
    """Apply one ``--set Field.Sub=value`` (value parsed as a YAML scalar / flow value). List
    elements are addressed as ``Field[0]`` (``ItemProcessor.Retry[0].MaxAttempts=5``); the index
    one past the end appends."""
    if "=" not in item:
        raise ConfigError("--set", f"expected Field=value, got {item!r}", source=source)
    key, raw = item.split("=", 1)
    if not key.strip():
        raise ConfigError("--set", f"empty field name in {item!r}", source=source)
    try:
        parts = override_steps(key)
    except ValueError:
        raise ConfigError(
            "--set",
            f"cannot read the field path {key.strip()!r}: write Field.Sub, and Field[0] for a list element",
            source=source,
        ) from None
    try:
        value = yamlsafe.load(raw) if raw.strip() else ""
    except yamlsafe.AliasExpansionError as exc:
        raise ConfigError("--set", f"{key.strip()}: {exc.problem}", source=source) from None
    except yaml.YAMLError:
        value = raw
    if not isinstance(data, dict):
        raise ConfigError("", "job file must hold an object", source=source)
    cur: Any = data
    for depth, part in enumerate(parts):
        where = _step_text(parts[: depth + 1])
        last = depth == len(parts) - 1
        new: Any = value if last else ([] if isinstance(parts[depth + 1], int) else {})
        if isinstance(part, int):
            if not isinstance(cur, list):
                raise ConfigError(
                    where,
                    f"--set: {_step_text(parts[:depth])} is not a list ({type_name(cur)})",
                    source=source,
                )
            if part > len(cur):
                raise ConfigError(
                    where,
                    f"--set: index out of range: the list has {len(cur)} element(s) "
                    f"(use [{len(cur)}] to append one)",
                    source=source,
                )
            if part == len(cur):
                cur.append(new)
            elif last:
                cur[part] = value
        else:
            if not isinstance(cur, dict):
                raise ConfigError(
                    where,
                    f"--set: cannot set a field inside {_step_text(parts[:depth])}: it is "
                    f"{type_name(cur)}, not an object",
                    source=source,
                )
            if last or cur.get(part) is None:
                cur[part] = new
        if not last:
            cur = cur[part]


class _Problems:
    """Collects the ConfigErrors of independent parts of a job, so that all are reported at once."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def attempt(self, fn: Callable[[], Any], default: Any = None) -> Any:
        try:
            return fn()
        except ConfigError as exc:
            self.errors.append(exc)
            return default


def parse_job(
    data: Any, *, base_dir: str | None = None, source: str | None = None, default_name: str = "distmap"
) -> MapJob:
    """Validate a whole job. Every part is checked even when another is invalid, and all the
    problems are reported in one ``ConfigError`` (``.problems`` lists them)."""
    top = Fields(data, "", source)
    found = _Problems()
    top.get("Comment")
    state_type = top.get("Type")
    if state_type not in (None, "Map"):
        found.errors.append(top.error("Type", f"must be Map, got {shown(state_type)}"))
    language = found.attempt(lambda: top.enum("QueryLanguage", QUERY_LANGUAGES, JSONPATH), JSONPATH)
    reader = found.attempt(lambda: _item_reader(top, base_dir))
    processor = found.attempt(lambda: _processor(top))
    selector = found.attempt(lambda: _item_selector(top, language))
    batcher = found.attempt(lambda: _item_batcher(top, language))
    max_conc = found.attempt(lambda: top.integer("MaxConcurrency", 0, minimum=0, maximum=1_000_000))
    pct = found.attempt(lambda: top.number("ToleratedFailurePercentage", None, minimum=0.0, maximum=100.0))
    count = found.attempt(lambda: top.integer("ToleratedFailureCount", None, minimum=0))
    writer = found.attempt(lambda: _result_writer(top, base_dir))
    name = found.attempt(lambda: _name(top, "StateMachineName", default_name), default_name)
    label = found.attempt(lambda: _name(top, "Label", None))
    job_input = top.get("Input", {})
    top.get("ProcessorConfig")  # ASL: {Mode: DISTRIBUTED, ExecutionType: ...}; informational here
    found.attempt(top.finish)
    if found.errors:
        raise ConfigError.several(found.errors)
    return MapJob(
        item_reader=reader,
        processor=processor,
        item_selector=selector,
        item_batcher=batcher,
        max_concurrency=max_conc or 0,
        tolerated_failure_percentage=pct,
        tolerated_failure_count=count,
        result_writer=writer,
        state_machine_name=name,
        label=label,
        input=job_input,
        source_file=source,
        query_language=language,
    )


def _item_selector(top: Fields, language: str) -> Any:
    selector = top.get("ItemSelector")
    if selector is None and top.has("Parameters"):
        selector = top.get("Parameters")  # legacy name of ItemSelector
    if selector is not None:
        if not isinstance(selector, Mapping) and not (language == JSONATA and is_expression(selector)):
            raise top.error("ItemSelector", f"must be an object, got {type_name(selector)}")
        try:
            compile_selector(selector, language, where="ItemSelector")
        except PathSyntaxError as exc:
            raise top.error("ItemSelector", str(exc)) from None
    return selector


def _name(top: Fields, key: str, default: str | None) -> str | None:
    val = top.string(key, default) or default
    if val is not None:
        _check_name(top, key, val)
    return val


def _check_name(f: Fields, key: str, val: str) -> None:
    # Names end up in ARNs and in result paths: refuse anything that could leave the destination.
    problem = name_problem(val)
    if problem:
        raise f.error(key, problem)


def _resolve_uri(uri: str, base_dir: str | None) -> str:
    if "://" in uri:
        return uri
    p = Path(os.path.expanduser(uri))
    if not p.is_absolute() and base_dir:
        p = Path(base_dir) / p
    return os.path.normpath(p)


def _item_reader(top: Fields, base_dir: str | None) -> ItemReaderConfig:
    f = Fields(top.require("ItemReader"), "ItemReader", top.source)
    resource = f.string("Resource")
    params = f.get("Parameters")
    source = f.string("Source")
    version_id = f.string("VersionId")
    if resource is not None and resource not in (S3_GET_OBJECT, S3_LIST_OBJECTS):
        raise f.error("Resource", f"must be {S3_GET_OBJECT} or {S3_LIST_OBJECTS}, got {shown(resource)}")
    listing = resource == S3_LIST_OBJECTS
    list_params: list[tuple[str, str]] = []
    expand = source is not None
    if source is None:
        if params is None:
            raise f.missing(
                "Source",
                "is required (a local path, directory, glob or s3://bucket/key), or give Parameters: "
                + ("{Bucket, Prefix}" if listing else "{Bucket, Key}"),
            )
        pf = Fields(params, "ItemReader.Parameters", top.source)
        bucket = pf.string("Bucket", required=True)
        if listing:
            prefix = pf.string("Prefix") or ""
            for name in LIST_PARAMETERS:
                value = pf.string(name)
                if value is not None:
                    list_params.append((name, value))
            source = f"s3://{bucket}/{prefix}"
        else:
            key = pf.string("Key", required=True)
            version_id = pf.string("VersionId")
            source = f"s3://{bucket}/{key}"
        pf.finish()
        if not _BUCKET.match(bucket or ""):
            raise pf.error("Bucket", f"is not a valid bucket name: {shown(bucket)}")
    elif params is not None:
        raise f.error("Parameters", "give either Source or Parameters, not both")
    if source.startswith("s3://"):
        bucket, _, key = source[5:].partition("/")
        if not _BUCKET.match(bucket) or (not key and not listing):
            raise f.error(
                "Source", "must be s3://<bucket>/<key> with a valid bucket name (no credentials in the URI)"
            )
    elif "://" in source and source.split("://", 1)[0] not in OTHER_SCHEMES:
        raise f.error(
            "Source",
            f"unsupported scheme in {shown(source)}: use a local path, s3://, gs://, az://, http:// or https://",
        )
    if listing and "://" in source and not source.startswith("s3://"):
        raise f.error("Source", "s3:listObjectsV2 lists an s3://bucket/prefix or a local directory")
    if version_id is not None and (listing or not source.startswith("s3://")):
        raise f.error("VersionId", "only applies to s3:getObject of one s3:// object")
    rc_raw = f.get("ReaderConfig")
    if rc_raw is None and not listing:
        rc_raw = f.require("ReaderConfig")
    rc = Fields(rc_raw if rc_raw is not None else {}, "ItemReader.ReaderConfig", top.source)
    input_type = rc.enum("InputType", INPUT_TYPES)
    transformation = rc.enum("Transformation", ("NONE", "LOAD_AND_FLATTEN"), "NONE") or "NONE"
    manifest_type = rc.enum("ManifestType", ("S3_INVENTORY", "ATHENA_DATA"), None)
    header_loc = rc.enum("CSVHeaderLocation", ("FIRST_ROW", "GIVEN"), None)
    headers = rc.get("CSVHeaders")
    delim_name = rc.enum("CSVDelimiter", tuple(CSV_DELIMITERS), "COMMA")
    max_items = rc.integer("MaxItems", 0, minimum=0, maximum=100_000_000)
    rc.finish()
    f.finish()
    if transformation == "LOAD_AND_FLATTEN" and not listing:
        raise rc.error("Transformation", f"LOAD_AND_FLATTEN only applies to Resource {S3_LIST_OBJECTS}")
    if input_type is None:
        if listing and transformation == "NONE":
            input_type = "JSONL"  # the listing's own items; no data file is read
        else:
            raise rc.missing("InputType", f"is required ({', '.join(INPUT_TYPES)})")
    elif listing and transformation == "NONE":
        raise rc.error(
            "InputType",
            "s3:listObjectsV2 items are the objects themselves; to read their contents set "
            "Transformation: LOAD_AND_FLATTEN",
        )
    if listing and input_type == "MANIFEST":
        raise rc.error("InputType", "MANIFEST cannot be read with s3:listObjectsV2")
    if manifest_type == "ATHENA_DATA" and input_type not in ("CSV", "JSONL", "PARQUET"):
        raise rc.error("InputType", "with ManifestType ATHENA_DATA, InputType is the data files' format: CSV, JSONL or PARQUET")
    if manifest_type == "S3_INVENTORY" and input_type != "MANIFEST":
        raise rc.error("ManifestType", "S3_INVENTORY goes with InputType MANIFEST")
    if input_type == "MANIFEST" and manifest_type is None:
        manifest_type = "S3_INVENTORY"
    if input_type != "CSV":
        for key, val in (("CSVHeaderLocation", header_loc), ("CSVHeaders", headers)):
            if val is not None:
                raise rc.error(key, f"only applies to InputType CSV (InputType is {input_type})")
        if rc.data.get("CSVDelimiter") is not None:
            raise rc.error("CSVDelimiter", f"only applies to InputType CSV (InputType is {input_type})")
    header_loc = header_loc or "FIRST_ROW"
    header_tuple: tuple[str, ...] = ()
    if header_loc == "GIVEN":
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) for h in headers):
            raise rc.error(
                "CSVHeaders", "must be a non-empty list of strings when CSVHeaderLocation is GIVEN"
            )
        header_tuple = tuple(headers)  # duplicates fail the run when it reads (AWS: States.ItemReaderFailed)
    elif headers is not None:
        raise rc.error("CSVHeaders", "only applies when CSVHeaderLocation is GIVEN")
    return ItemReaderConfig(
        source=_resolve_uri(source, base_dir),
        input_type=input_type,  # type: ignore[arg-type]
        csv_header_location=header_loc,  # type: ignore[arg-type]
        csv_headers=header_tuple,
        csv_delimiter=CSV_DELIMITERS[delim_name or "COMMA"],
        max_items=max_items or 0,
        resource="listObjectsV2" if listing else "getObject",
        version_id=version_id,
        transformation=transformation,  # type: ignore[arg-type]
        manifest_type=manifest_type,  # type: ignore[arg-type]
        expand=expand,
        list_params=tuple(list_params),
    )


def _item_batcher(top: Fields, language: str) -> ItemBatcherConfig | None:
    raw = top.get("ItemBatcher")
    if raw is None:
        return None
    f = Fields(raw, "ItemBatcher", top.source)
    n = f.integer("MaxItemsPerBatch", 0, minimum=0, maximum=100_000_000)
    b = f.integer("MaxInputBytesPerBatch", 0, minimum=0, maximum=256 * 1024)
    batch_input = f.get("BatchInput")
    f.finish()
    if not n and not b:
        raise top.error("ItemBatcher", "needs MaxItemsPerBatch and/or MaxInputBytesPerBatch greater than 0")
    jsonata_expression = language == JSONATA and is_expression(batch_input)
    if batch_input is not None and not isinstance(batch_input, Mapping) and not jsonata_expression:
        raise f.error("BatchInput", f"must be an object, got {type_name(batch_input)}")
    if batch_input is not None and language == JSONATA:
        try:
            compile_batch_input(batch_input, language)
        except PathSyntaxError as exc:
            raise f.error("BatchInput", str(exc)) from None
    return ItemBatcherConfig(
        max_items_per_batch=n or 0, max_input_bytes_per_batch=b or 0, batch_input=batch_input
    )


def _error_equals(f: Fields, last_in_list: bool, kind: str) -> tuple[str, ...]:
    ee = f.require("ErrorEquals")
    if not isinstance(ee, list) or not ee or not all(isinstance(e, str) and e for e in ee):
        raise f.error("ErrorEquals", "must be a non-empty list of error names")
    if "States.ALL" in ee:
        if len(ee) != 1:
            raise f.error("ErrorEquals", "States.ALL must appear alone")
        if not last_in_list:
            raise f.error("ErrorEquals", f"States.ALL must be in the last {kind}")
    return tuple(ee)


def _processor(top: Fields) -> ProcessorConfig:
    key = "ItemProcessor" if top.has("ItemProcessor") or not top.has("Iterator") else "Iterator"
    f = Fields(top.require(key), key, top.source)
    fn = f.get("Function")
    if fn is None:
        raise f.missing("Function", "is required: a Python callable as module:function")
    if isinstance(fn, str):
        mod, _, attr = fn.partition(":")
        if not mod or not attr or not all(p.isidentifier() for p in mod.split(".") + attr.split(".")):
            raise f.error("Function", f"must look like package.module:function, got {shown(fn)}")
    elif not callable(fn):
        raise f.error("Function", f"must be module:function or a callable, got {shown(fn)}")
    timeout = f.number("TimeoutSeconds", None, minimum=0.0, maximum=float(_MAX_ASL_INT), exclusive_min=True)
    retriers = parse_retriers(f)
    catchers = parse_catchers(f, allow_next=True)
    f.finish()
    return ProcessorConfig(function=fn, timeout_seconds=timeout, retry=retriers, catch=catchers)


def parse_retriers(f: Fields) -> tuple[RetrierConfig, ...]:
    """The ``Retry`` list of a state (or of ItemProcessor), validated as ASL."""
    retry_raw = f.get("Retry", [])
    if not isinstance(retry_raw, list):
        raise f.error("Retry", f"must be a list of retriers, got {type_name(retry_raw)}")
    retriers = []
    for i, r in enumerate(retry_raw):
        rf = Fields(r, f.sub(f"Retry[{i}]"), f.source)
        ee = _error_equals(rf, i == len(retry_raw) - 1, "retrier")
        retriers.append(
            RetrierConfig(
                error_equals=ee,
                interval_seconds=rf.number(
                    "IntervalSeconds", 1.0, minimum=0.0, maximum=float(_MAX_ASL_INT), exclusive_min=True
                ),  # type: ignore[arg-type]
                max_attempts=rf.integer("MaxAttempts", 3, minimum=0, maximum=_MAX_ASL_INT),  # type: ignore[arg-type]
                backoff_rate=rf.number("BackoffRate", 2.0, minimum=1.0),  # type: ignore[arg-type]
                max_delay_seconds=rf.number(
                    "MaxDelaySeconds", None, minimum=0.0, maximum=31_622_401.0, exclusive_min=True
                ),
                jitter_strategy=rf.enum("JitterStrategy", ("FULL", "NONE"), "NONE"),  # type: ignore[arg-type]
            )
        )
        rf.get("Comment")
        rf.finish()
    return tuple(retriers)


def parse_catchers(f: Fields, *, allow_next: bool) -> tuple[CatcherConfig, ...]:
    """The ``Catch`` list; with ``allow_next`` each catcher's ``Next`` is accepted (and kept)."""
    catch_raw = f.get("Catch", [])
    if not isinstance(catch_raw, list):
        raise f.error("Catch", f"must be a list of catchers, got {type_name(catch_raw)}")
    catchers = []
    for i, c in enumerate(catch_raw):
        cf = Fields(c, f.sub(f"Catch[{i}]"), f.source)
        ee = _error_equals(cf, i == len(catch_raw) - 1, "catcher")
        result_path = cf.get("ResultPath", "$")
        if result_path is not None:
            try:
                compile_result_path(result_path)
            except PathSyntaxError as exc:
                raise cf.error("ResultPath", str(exc)) from None
        nxt = cf.string("Next") if allow_next else None
        cf.get("Comment")
        if allow_next:  # a state's catcher may also hold Output (JSONata) and Assign, compiled by the state
            cf.get("Output")
            cf.get("Assign")
        cf.finish()
        catchers.append(CatcherConfig(error_equals=ee, result_path=result_path, next=nxt))
    return tuple(catchers)


def _result_writer(top: Fields, base_dir: str | None) -> ResultWriterConfig | None:
    raw = top.get("ResultWriter")
    if raw is None:
        return None
    f = Fields(raw, "ResultWriter", top.source)
    dest = f.string("Destination")
    resource = f.string("Resource")
    params = f.get("Parameters")
    wc_raw = f.get("WriterConfig")
    max_bytes = f.integer("MaxFileBytes", 5 * 1024**3, minimum=1024)
    f.finish()
    if resource is not None and resource != S3_PUT_OBJECT:
        raise f.error("Resource", f"must be {S3_PUT_OBJECT}, got {shown(resource)}")
    if dest is None:
        if params is None:
            raise f.missing(
                "Destination",
                "is required (a local directory or s3://bucket/prefix), or give Parameters: {Bucket, Prefix}",
            )
        pf = Fields(params, "ResultWriter.Parameters", top.source)
        bucket = pf.string("Bucket", required=True)
        prefix = pf.get("Prefix", "")
        pf.finish()
        if not isinstance(prefix, str):
            raise pf.error("Prefix", f"must be a string, got {shown(prefix)}")
        dest = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    elif params is not None:
        raise f.error("Parameters", "give either Destination or Parameters, not both")
    _check_destination(f, dest)
    output_type, transformation = "JSON", "NONE"
    if wc_raw is not None:
        wc = Fields(wc_raw, "ResultWriter.WriterConfig", top.source)
        output_type = wc.enum("OutputType", ("JSON", "JSONL"), "JSON") or "JSON"
        transformation = wc.enum("Transformation", ("NONE", "COMPACT", "FLATTEN"), "NONE") or "NONE"
        wc.finish()
    return ResultWriterConfig(
        destination=_resolve_uri(dest, base_dir),
        output_type=output_type,  # type: ignore[arg-type]
        transformation=transformation,  # type: ignore[arg-type]
        max_file_bytes=max_bytes or 5 * 1024**3,
    )


def _check_destination(f: Fields, dest: str) -> None:
    if dest.startswith("s3://"):
        bucket, _, prefix = dest[5:].partition("/")
        if not _BUCKET.match(bucket):
            raise f.error(
                "Destination",
                "must be s3://<bucket>[/prefix] with a valid bucket name (no credentials in the URI)",
            )
        if prefix.startswith("/") or any(seg == ".." for seg in prefix.split("/")):
            raise f.error("Destination", f"prefix must not be absolute or contain '..', got {shown(prefix)}")
    elif "://" in dest:
        raise f.error("Destination", f"must be a local directory or s3://bucket/prefix, got {shown(dest)}")
