"""Property tests: every item is accounted for exactly once, whatever the run's outcome.

Runs go through the real coordinator, readers, batch executor and result writer on the inline
executor (no fork), so hundreds of runs take seconds. For generated JSONL and CSV inputs with
malformed records, blank lines, failing items, MaxItems, tolerances and chunk sizes, whether the run
SUCCEEDS, FAILS by threshold or FAILS on a reader error:

* succeeded + failed + timedOut + pending == total == the records in the result files;
* each file's records match its counter (SUCCEEDED / FAILED / PENDING);
* no item appears twice, and only items of the input appear;
* every item before the first malformed record (and within MaxItems) appears.

Examples: ``DISTMAP_PROPERTY_EXAMPLES`` (CI default 60).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_settings import EXAMPLES

from distmap.config.parse import parse_job
from distmap.coordinator import Coordinator
from distmap.executors.inline import InlineExecutor

PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BAD = {"JSONL": '{"i": oops}', "CSV": '"broken"x,1'}


@st.composite
def inputs(draw) -> tuple[str, list[tuple[str, int | None, bool]]]:
    """An input type and its lines: (kind, item number, fails) with kind item | blank | bad."""
    input_type = draw(st.sampled_from(["JSONL", "CSV"]))
    lines: list[tuple[str, int | None, bool]] = []
    n = 0
    for _ in range(draw(st.integers(0, 120))):
        kind = draw(st.sampled_from(["item"] * 20 + ["blank", "bad"]))
        if kind == "item":
            lines.append(("item", n, draw(st.integers(0, 9)) == 0))
            n += 1
        else:
            lines.append((kind, None, False))
    return input_type, lines


def write_input(path: Path, input_type: str, lines: list[tuple[str, int | None, bool]]) -> None:
    out = ["i,fail"] if input_type == "CSV" else []
    for kind, i, fails in lines:
        if kind == "blank":
            out.append("")
        elif kind == "bad":
            out.append(BAD[input_type])
        elif input_type == "CSV":
            out.append(f"{i},{int(fails)}")
        else:
            out.append(json.dumps({"i": i, "fail": fails}))
    path.write_text("\n".join(out) + "\n")


def read_files(manifest_path: str) -> dict[str, list[dict[str, Any]]]:
    manifest = json.loads(Path(manifest_path).read_text())
    root = Path(manifest["DestinationBucket"])
    out: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status, files in manifest["ResultFiles"].items():
        for f in files:
            path = root / f["Key"]
            assert path.stat().st_size == f["Size"], "the manifest vouches only for bytes that are there"
            out[status].extend(json.loads(path.read_text()))
    return out


@PROPS
@given(
    doc=inputs(),
    max_items=st.sampled_from([0, 0, 1, 7, 40]),
    tolerance=st.sampled_from([{}, {"ToleratedFailureCount": 3}, {"ToleratedFailurePercentage": 15},
                               {"ToleratedFailurePercentage": 100}]),
    chunk_items=st.integers(1, 40),
    window=st.integers(1, 4),
    concurrency=st.sampled_from([1, 1, 3]),
)  # fmt: skip
def test_every_item_accounted_exactly_once(tmp_path_factory, doc, max_items, tolerance, chunk_items, window,
                                           concurrency):  # fmt: skip
    input_type, lines = doc
    tmp = tmp_path_factory.mktemp("run")
    src = tmp / ("in.csv" if input_type == "CSV" else "in.jsonl")
    write_input(src, input_type, lines)
    spec: dict[str, Any] = {
        "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": input_type, "MaxItems": max_items}},
        "ItemProcessor": {"Function": "itemfns:fail_flagged"},
        "ResultWriter": {"Destination": str(tmp / "out")},
        "MaxConcurrency": concurrency,
        **tolerance,
    }
    job = parse_job(spec, base_dir=str(tmp))
    res = Coordinator(
        job, InlineExecutor(window=window), handle_signals=False, max_chunk_items=chunk_items
    ).run()

    c = res.item_counts
    assert res.manifest is not None
    files = read_files(res.manifest)
    assert c.succeeded + c.failed + c.timed_out + c.pending == c.total
    assert len(files["SUCCEEDED"]) == c.succeeded
    assert len(files["FAILED"]) == c.failed + c.timed_out
    assert len(files["PENDING"]) == c.pending
    assert c.results_written == c.succeeded + c.failed + c.timed_out
    seen = [int(json.loads(r["Input"])["i"]) for recs in files.values() for r in recs]
    assert len(seen) == len(set(seen)) == c.total, "no item twice"

    records = [(kind, i) for kind, i, _ in lines if kind != "blank"]  # what the splitter counts
    limit = max_items or len(records)
    in_range = records[:limit]
    first_bad = next((k for k, (kind, _) in enumerate(in_range) if kind == "bad"), None)
    valid = {i for kind, i in in_range if kind == "item"}
    assert set(seen) <= valid, "only items of the input, within MaxItems"
    must = {i for kind, i in in_range[: first_bad if first_bad is not None else limit] if kind == "item"}
    assert must <= set(seen), "every item before the first malformed record is in a result file"
    if first_bad is None:
        assert set(seen) == valid
        assert res.error in (None, "States.ExceedToleratedFailureThreshold")
    if res.status == "SUCCEEDED":
        assert first_bad is None and c.pending == 0
    else:
        assert res.error in ("States.ItemReaderFailed", "States.ExceedToleratedFailureThreshold")
    if res.error == "States.ItemReaderFailed":
        assert "line " in (res.cause or "")
