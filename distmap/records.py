"""Execution records in the shape of AWS Distributed Map result files.

One record per child execution (one item, or one ItemBatcher batch)::

    {"ExecutionArn": "...", "Input": "<json>", "InputDetails": {"Included": true},
     "Name": "...", "Output": "<json>", "OutputDetails": {"Included": true},
     "RedriveCount": 0, "RedriveStatus": "NOT_REDRIVABLE",
     "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
     "StartDate": "2026-11-25T10:00:00.000Z", "StateMachineArn": "...",
     "Status": "SUCCEEDED", "StopDate": "2026-11-25T10:00:00.004Z"}

FAILED records carry ``Error`` and ``Cause`` instead of ``Output`` (the cause passed through
``mask_cause``: the batch executor gives ``distmap.storage.redact``, which masks credentials,
unless masking is off); a child that was stopped at a time limit (TimeoutSeconds, its
ExecutionType's limit) has a FAILED-file record too (AWS writes failed, timed-out and aborted
children to ``FAILED_n.json``), with ``"Status": "TIMED_OUT"`` and ``Error: States.Timeout``. PENDING records
(items never run) carry only the identity and the input. Records are built from pre-encoded byte pieces: the
encoder runs once per item on the worker, and the coordinator only concatenates bytes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

_dumps = orjson.dumps


def region_account() -> tuple[str, str]:
    """The region and account of every ARN distmap writes (and of Lambda name resolution):
    ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, else us-east-1; ``DISTMAP_ACCOUNT_ID``, else
    123456789012."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return region, os.environ.get("DISTMAP_ACCOUNT_ID", "123456789012")


def quote(text: str) -> bytes:
    """A JSON string literal for ``text``."""
    return _dumps(text)


def date_formatter() -> Any:
    """``fmt(t) -> b'"2026-11-25T10:00:00.123Z"'``: ISO-8601 UTC with milliseconds, cached per
    millisecond and per second, since consecutive items almost always share them (hot path)."""
    gmtime, strftime = time.gmtime, time.strftime
    cache = [-1, b"", -1, b""]  # last ms, its text, last second, its prefix

    def fmt(t: float) -> bytes:
        ms = int(t * 1000)
        if ms == cache[0]:
            return cache[1]
        sec, frac = divmod(ms, 1000)
        if sec != cache[2]:
            cache[2] = sec
            cache[3] = strftime("%Y-%m-%dT%H:%M:%S", gmtime(sec)).encode()
        cache[0] = ms
        cache[1] = b'"%s.%03dZ"' % (cache[3], frac)
        return cache[1]

    return fmt


_iso_cache: tuple[int, str] = (-1, "")


def iso_now() -> str:
    """Now as ISO-8601 UTC with milliseconds; cached per millisecond (it runs once per state)."""
    global _iso_cache
    ms = int(time.time() * 1000)
    cached = _iso_cache
    if cached[0] == ms:
        return cached[1]
    sec, frac = divmod(ms, 1000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:03d}Z"
    _iso_cache = (ms, text)
    return text


@dataclass(frozen=True, slots=True)
class RecordIdentity:
    """The ARNs every record of one map run shares."""

    execution_arn_prefix: str
    """``arn:aws:states:<region>:<account>:execution:<stateMachine>/<Map>:``"""
    state_machine_arn: str
    name_prefix: str
    """Names are ``<name_prefix><index>``: stable for an item across retries, resumes and redrives."""
    express_id_prefix: str | None = None
    """EXPRESS children only: their ARNs end with ``:<uuid>`` (AWS's Express execution ARN form),
    the uuid being this prefix (24 characters) and the index in 12 hex digits."""
    redrive_count: int = 0
    """The ``RedriveCount`` of the children run now: the map run's redrives so far."""


EXECUTION_TYPES = ("STANDARD", "EXPRESS")


def child_identity(
    region: str,
    account: str,
    state_machine: str,
    map_name: str,
    run_id: str,
    execution_type: str = "STANDARD",
) -> RecordIdentity:
    """The ARNs of a map run's child executions, by ``ItemProcessor.ProcessorConfig.ExecutionType``.

    * STANDARD: ``arn:aws:states:<region>:<account>:execution:<machine>/<map>:<name>``, as AWS's
      ResultWriter documentation shows it;
    * EXPRESS: ``arn:aws:states:<region>:<account>:express:<machine>/<map>:<name>:<uuid>``, the
      form of AWS's Express execution ARNs (AWS does not document it for Map children). The uuid
      is derived from the run id and the index, so an item keeps it across re-runs.
    """
    express = execution_type == "EXPRESS"
    kind = "express" if express else "execution"
    return RecordIdentity(
        execution_arn_prefix=f"arn:aws:states:{region}:{account}:{kind}:{state_machine}/{map_name}:",
        state_machine_arn=f"arn:aws:states:{region}:{account}:stateMachine:{state_machine}/{map_name}",
        name_prefix=f"{run_id[:8]}-",
        express_id_prefix=_uuid_prefix(run_id) if express else None,
    )


def _uuid_prefix(run_id: str) -> str:
    try:
        base = uuid.UUID(run_id)
    except ValueError:
        base = uuid.uuid5(uuid.NAMESPACE_URL, "distmap:" + run_id)
    return str(base)[:24]


class RecordEncoder:
    """Encodes SUCCEEDED / FAILED / PENDING records for one map run."""

    def __init__(
        self,
        ident: RecordIdentity,
        transformation: str = "NONE",
        *,
        mask_cause: Callable[[str], str] | None = None,
    ) -> None:
        self.transformation = transformation
        self.mask_cause = mask_cause
        """Applied to the Cause of every FAILED record (credential masking), when given."""
        self.dates = date_formatter()
        self._arn = b'{"ExecutionArn":' + b'"' + ident.execution_arn_prefix.encode()
        self._name_prefix = ident.name_prefix.encode()
        self._express = ident.express_id_prefix.encode() if ident.express_id_prefix else None
        sm = quote(ident.state_machine_arn)
        self._after_input = b',"InputDetails":{"Included":true},"Name":"'
        self._ok_mid = b'","Output":'
        redrives = b"%d" % ident.redrive_count
        self._ok_tail = (
            b',"OutputDetails":{"Included":true},"RedriveCount":'
            + redrives
            + b',"RedriveStatus":"NOT_REDRIVABLE",'
            b'"RedriveStatusReason":"Execution is SUCCEEDED and cannot be redriven","StartDate":'
        )
        self._fail_mid = b'","Error":'
        self._fail_tail = b',"RedriveCount":' + redrives + b',"RedriveStatus":"REDRIVABLE","StartDate":'
        self._sm_ok = b',"StateMachineArn":' + sm + b',"Status":"SUCCEEDED","StopDate":'
        self._sm_fail = b',"StateMachineArn":' + sm + b',"Status":"FAILED","StopDate":'
        self._sm_timed_out = b',"StateMachineArn":' + sm + b',"Status":"TIMED_OUT","StopDate":'
        self._succeeded = self.succeeded_fn()

    def name(self, index: int) -> bytes:
        return b"%s%010d" % (self._name_prefix, index)

    def succeeded_fn(self) -> Any:
        """A closure building SUCCEEDED records (transformation NONE), with everything it needs
        bound locally: this runs once per item."""
        arn, after_input, ok_mid, ok_tail, sm_ok = (
            self._arn,
            self._after_input,
            self._ok_mid,
            self._ok_tail,
            self._sm_ok,
        )
        name_prefix = self._name_prefix
        join = b"".join
        dumps = _dumps
        date = self.dates
        express = self._express
        if express is not None:

            def succeeded_express(
                index: int, input_json: bytes, output_json: bytes, start: float, stop: float
            ) -> bytes:
                name = b"%s%010d" % (name_prefix, index)
                return join((
                    arn, name, b":%s%012x" % (express, index), b'","Input":', dumps(input_json.decode()),
                    after_input, name, ok_mid, dumps(output_json.decode()), ok_tail, date(start), sm_ok,
                    date(stop), b"}",
                ))  # fmt: skip

            return succeeded_express

        def succeeded(index: int, input_json: bytes, output_json: bytes, start: float, stop: float) -> bytes:
            name = b"%s%010d" % (name_prefix, index)
            return join((
                arn, name, b'","Input":', dumps(input_json.decode()), after_input, name,
                ok_mid, dumps(output_json.decode()), ok_tail, date(start), sm_ok, date(stop), b"}",
            ))  # fmt: skip

        return succeeded

    def succeeded(
        self, index: int, input_json: bytes, output_json: bytes, start: float, stop: float
    ) -> bytes:
        """``input_json`` / ``output_json`` are the JSON texts of the input and output values."""
        if self.transformation != "NONE":
            return output_json
        return self._succeeded(index, input_json, output_json, start, stop)

    def _head(self, index: int, input_json: bytes) -> tuple[bytes, ...]:
        """The pieces every record starts with: ExecutionArn, Input, InputDetails, Name."""
        name = self.name(index)
        arn = name if self._express is None else b":".join((name, self.express_id(index)))
        return (self._arn, arn, b'","Input":', quote(input_json.decode()), self._after_input, name)

    def express_id(self, index: int) -> bytes:
        """The uuid ending an EXPRESS child's ARN."""
        return b"%s%012x" % (self._express, index)

    def failed(
        self,
        index: int,
        input_json: bytes,
        error: str,
        cause: str,
        start: float,
        stop: float,
        *,
        timed_out: bool = False,
    ) -> bytes:
        """A record for the FAILED files: ``Status`` FAILED, or TIMED_OUT for a child execution
        stopped at TimeoutSeconds. Both are REDRIVABLE, like AWS's failed and timed-out executions."""
        d = self.dates
        if self.mask_cause is not None:
            cause = self.mask_cause(cause)
        name = b"%s%010d" % (self._name_prefix, index)
        arn = name if self._express is None else b"%s:%s%012x" % (name, self._express, index)
        return b"".join((
            self._arn, arn, b'","Input":', _dumps(input_json.decode()), self._after_input, name,
            self._fail_mid, _dumps(error), b',"Cause":', _dumps(cause), self._fail_tail,
            d(start), self._sm_timed_out if timed_out else self._sm_fail, d(stop), b"}",
        ))  # fmt: skip

    def pending(self, index: int, input_json: bytes) -> bytes:
        return b"".join((*self._head(index, input_json), b'","Status":"PENDING"}'))
