"""Finished executions -> result records (``distmap.records``), joined for the result writer."""

from __future__ import annotations

import itertools
import time
from array import array

import orjson

from distmap.batch.executions import Execution, Failed, Succeeded, TimedOut
from distmap.contract import ChunkResult, RunSpec
from distmap.dataflow.values import NOT_JSON, NotJson, check_finite
from distmap.records import RecordEncoder
from distmap.storage import redact

_dumps = orjson.dumps

SUCCEEDED, FAILED, TIMED_OUT = "succeeded", "failed", "timed_out"


class ChunkEncoder:
    """Encodes one map run's finished executions into SUCCEEDED / FAILED records."""

    def __init__(self, spec: RunSpec) -> None:
        writer = spec.job.result_writer
        self.transformation = writer.transformation if writer else "NONE"
        self.records = RecordEncoder(
            spec.identity, self.transformation, mask_cause=redact if spec.mask_causes else None
        )
        self.flatten = self.transformation == "FLATTEN"
        self.sep = spec.record_sep

    def encode(self, executions: list[Execution], res: ChunkResult) -> None:
        """Every execution's record(s) into ``res``, with the item counts."""
        ok: list[bytes] = []
        bad: list[bytes] = []
        now = time.time()
        for ex in executions:
            kind = self.encode_one(ex, ok, bad, now)
            if kind == SUCCEEDED:
                res.items_succeeded += ex.items
            elif kind == TIMED_OUT:
                res.items_timed_out += ex.items
            else:
                res.items_failed += ex.items
            res.retries += ex.retries
        set_records(res, self.sep, ok, bad)

    def encode_one(self, ex: Execution, ok: list[bytes], bad: list[bytes], now: float) -> str:
        """Append one finished execution's record(s); return SUCCEEDED / FAILED / TIMED_OUT."""
        enc = self.records
        outcome = ex.outcome
        start = ex.start or now
        stop = ex.stop or now
        if outcome is None:  # cannot happen; never lose an item silently
            outcome = Failed("States.Runtime", "internal error: the item was not run")
        input_json = ex.input_json
        if input_json is None:
            input_json = _dumps(ex.input)
        if isinstance(outcome, Succeeded):
            output = outcome.output
            try:
                out_json = _dumps(output)
                check_finite(output, out_json)
            except (TypeError, orjson.JSONEncodeError, NotJson) as exc:
                outcome = Failed(NOT_JSON, not_json_cause(exc))
            else:
                if self.flatten and isinstance(output, list):
                    ok.extend(_dumps(v) for v in output)
                else:
                    ok.append(enc.succeeded(ex.index, input_json, out_json, start, stop))
                return SUCCEEDED
        timed_out = isinstance(outcome, TimedOut)
        bad.append(
            enc.failed(ex.index, input_json, outcome.error, outcome.cause, start, stop, timed_out=timed_out)
        )
        return TIMED_OUT if timed_out else FAILED

    def pending(self, executions: list[Execution]) -> tuple[bytes, int, bytes]:
        """PENDING records for executions that will not run: joined, their number, their ends."""
        recs = [self.records.pending(ex.index, ex.input_json or _dumps(ex.input)) for ex in executions]
        return self.sep.join(recs), len(recs), record_ends(recs, len(self.sep))


def not_json_cause(exc: Exception) -> str:
    if isinstance(exc, NotJson):
        return f"the function returned a value that is not JSON: {exc}"
    return f"the function returned a value that is not JSON-serializable: {exc}"


def compact_record(index: int, input_json: bytes, output_json: bytes, start: float, stop: float) -> bytes:
    """A COMPACT SUCCEEDED record: just the output."""
    return output_json


def record_ends(records: list[bytes], sep_len: int) -> bytes:
    """Where each record of ``sep.join(records)`` ends, plus ``sep_len`` (so: where the next one
    starts), as native uint32s. Lets the result writer split one chunk's records over several
    files at MaxFileBytes without parsing them."""
    return array("I", itertools.accumulate(map(sep_len.__add__, map(len, records)))).tobytes()  # C-level loops


def set_records(res: ChunkResult, sep: bytes, ok: list[bytes], bad: list[bytes]) -> None:
    res.succeeded = sep.join(ok)
    res.failed = sep.join(bad)
    res.succeeded_records = len(ok)
    res.failed_records = len(bad)
    res.succeeded_ends = record_ends(ok, len(sep))
    res.failed_ends = record_ends(bad, len(sep))
