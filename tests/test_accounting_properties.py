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

import gzip
import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_settings import EXAMPLES

from distmap.config.parse import parse_job
from distmap.coordinator import Coordinator
from distmap.executors.inline import CoordinatorDied, InlineExecutor

PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BAD = {"JSONL": '{"i": oops}', "CSV": '"broken"x,1'}
#: the input's shape: one file, several files of a directory (CSV ones gzip-compressed), one Parquet
#: file in row groups, a directory listing (s3:listObjectsV2 items, one per file), the listed files'
#: items (LOAD_AND_FLATTEN), an S3 Inventory (gzip CSV data files) or an Athena data manifest
SHAPES = ["JSONL", "CSV", "JSONL_DIR", "CSV_DIR_GZ", "PARQUET", "LISTING", "FLATTEN_DIR", "INVENTORY", "ATHENA"]


@st.composite
def inputs(draw) -> tuple[str, list[tuple[str, int | None, bool]], list[int]]:
    """A shape, its lines: (kind, item number, fails) with kind item | blank | bad, and where the
    lines are cut into files (directory shapes) or row groups (Parquet)."""
    shape = draw(st.sampled_from(SHAPES))
    lines: list[tuple[str, int | None, bool]] = []
    n = 0
    structured = shape in ("PARQUET", "LISTING")  # no blank or malformed rows there
    for _ in range(draw(st.integers(0, 120))):
        kind = "item" if structured else draw(st.sampled_from(["item"] * 20 + ["blank", "bad"]))
        if kind == "item":
            lines.append(("item", n, shape != "LISTING" and draw(st.integers(0, 9)) == 0))
            n += 1
        else:
            lines.append((kind, None, False))
    cuts = sorted(draw(st.lists(st.integers(0, len(lines)), max_size=4)))
    return shape, lines, cuts


def _pieces(lines: list[Any], cuts: list[int]) -> list[list[Any]]:
    bounds = [0, *cuts, len(lines)]
    return [lines[a:b] for a, b in itertools.pairwise(bounds)]


def write_shape(
    tmp: Path, shape: str, lines: list[tuple[str, int | None, bool]], cuts: list[int]
) -> dict[str, Any]:
    """Write the input; returns the job's ItemReader (without MaxItems)."""
    if shape in ("JSONL", "CSV"):
        src = tmp / ("in.csv" if shape == "CSV" else "in.jsonl")
        write_input(src, shape, lines)
        return {"Source": str(src), "ReaderConfig": {"InputType": shape}}
    if shape == "PARQUET":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"i": [i for _, i, _ in lines], "fail": [f for _, _, f in lines]})
        pq.write_table(table, tmp / "in.parquet", row_group_size=max(1, (cuts or [7])[0] or 1))
        return {"Source": str(tmp / "in.parquet"), "ReaderConfig": {"InputType": "PARQUET"}}
    directory = tmp / "in"
    directory.mkdir()
    if shape == "LISTING":
        for _, i, _ in lines:
            (directory / f"{i:05d}").write_bytes(b"")
        return {"Resource": "arn:aws:states:::s3:listObjectsV2", "Source": str(directory)}
    input_type = "CSV" if shape in ("CSV_DIR_GZ", "INVENTORY") else "JSONL"
    files = []
    for j, piece in enumerate(_pieces(lines, cuts)):
        path = directory / f"{j:02d}.{input_type.lower()}"
        write_input(path, input_type, piece, header=shape != "INVENTORY")
        if input_type == "CSV":
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
            path = path.with_name(path.name + ".gz")
        files.append(path)
    if shape == "FLATTEN_DIR":
        flatten = {"InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN"}
        return {"Resource": "arn:aws:states:::s3:listObjectsV2", "Source": str(directory), "ReaderConfig": flatten}
    if shape == "INVENTORY":  # data files named by their keys, found under the manifest's directory
        keys = [{"key": str(f.relative_to(tmp))} for f in files]
        manifest = {"fileFormat": "CSV", "fileSchema": "i, fail", "files": keys}
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        return {"Source": str(tmp / "manifest.json"), "ReaderConfig": {"InputType": "MANIFEST"}}
    if shape == "ATHENA":
        (tmp / "athena-manifest.csv").write_text("".join(f"{f}\n" for f in files))
        return {
            "Source": str(tmp / "athena-manifest.csv"),
            "ReaderConfig": {"InputType": "JSONL", "ManifestType": "ATHENA_DATA"},
        }
    return {"Source": str(directory), "ReaderConfig": {"InputType": input_type}}


def item_number(value: dict[str, Any]) -> int:
    return int(value["i"]) if "i" in value else int(value["Key"])


def write_input(
    path: Path, input_type: str, lines: list[tuple[str, int | None, bool]], header: bool = True
) -> None:
    out = ["i,fail"] if input_type == "CSV" and header else []
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
    shape, lines, cuts = doc
    tmp = tmp_path_factory.mktemp("run")
    reader = write_shape(tmp, shape, lines, cuts)
    reader.setdefault("ReaderConfig", {})["MaxItems"] = max_items
    spec: dict[str, Any] = {
        "ItemReader": reader,
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
    seen = [item_number(json.loads(r["Input"])) for recs in files.values() for r in recs]
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
        if shape.endswith(("_DIR", "_DIR_GZ")) or shape in ("INVENTORY", "ATHENA"):
            assert f"{tmp / 'in'}/" in (res.cause or ""), "the cause names the file of the directory"


@PROPS
@given(
    doc=inputs(),
    max_items=st.sampled_from([0, 0, 7, 40]),
    tolerance=st.sampled_from([{}, {"ToleratedFailureCount": 3}, {"ToleratedFailurePercentage": 100}]),
    chunk_items=st.integers(1, 20),
    window=st.integers(1, 4),
    per_poll=st.integers(1, 3),
    deaths=st.lists(st.integers(1, 8), max_size=3),
)  # fmt: skip
def test_every_item_accounted_exactly_once_across_deaths_and_resumes(
    tmp_path_factory, doc, max_items, tolerance, chunk_items, window, per_poll, deaths
):
    """The same invariants when the coordinator dies after a few chunks (scripted, inline) and the
    run is resumed from its journal, maybe several times: the final manifest's files hold each
    item once, with counts equal to the files."""
    from distmap.runs import resume, start_journal

    shape, lines, cuts = doc
    tmp = tmp_path_factory.mktemp("run")
    reader = write_shape(tmp, shape, lines, cuts)
    reader.setdefault("ReaderConfig", {})["MaxItems"] = max_items
    spec: dict[str, Any] = {
        "ItemReader": reader,
        "ItemProcessor": {"Function": "itemfns:fail_flagged"},
        "ResultWriter": {"Destination": str(tmp / "out")},
        **tolerance,
    }
    job = parse_job(spec, base_dir=str(tmp))
    opts: dict[str, Any] = {"window": window, "per_poll": per_poll}
    res = None
    for k, death in enumerate([*deaths, None]):
        die = (lambda n, d=death: n >= d) if death is not None else None
        try:
            if k == 0:
                executor = InlineExecutor(**opts, die=die)
                durable = start_journal(job, "r")
                res = Coordinator(job, executor, run_id="r", handle_signals=False, max_chunk_items=chunk_items,
                                  durable=durable).run()  # fmt: skip
            else:
                res = resume(tmp / "out" / "r", backend="inline", handle_signals=False,
                             max_chunk_items=chunk_items, **opts, die=die)  # fmt: skip
            break
        except CoordinatorDied:
            continue
    assert res is not None
    c = res.item_counts
    assert res.manifest is not None, (res.status, res.error, res.cause)
    files = read_files(res.manifest)
    assert c.succeeded + c.failed + c.timed_out + c.pending + c.aborted == c.total
    assert len(files["SUCCEEDED"]) == c.succeeded
    assert len(files["FAILED"]) == c.failed + c.timed_out
    assert len(files["PENDING"]) == c.pending + c.aborted
    seen = [item_number(json.loads(r["Input"])) for recs in files.values() for r in recs]
    assert len(seen) == len(set(seen)) == c.total, "no item twice"
    records = [(kind, i) for kind, i, _ in lines if kind != "blank"]
    in_range = records[: max_items or len(records)]
    first_bad = next((k for k, (kind, _) in enumerate(in_range) if kind == "bad"), None)
    valid = {i for kind, i in in_range if kind == "item"}
    assert set(seen) <= valid
    must = {i for kind, i in in_range[: first_bad if first_bad is not None else len(in_range)] if kind == "item"}
    assert must <= set(seen), "every item before the first malformed record is in a result file"
    if first_bad is None:
        assert set(seen) == valid
