"""Test helpers: one place to put objects, on a local directory or a bucket of the moto server,
and run a job over them. The source tests run the same cases on both."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from conftest import load_results

import distmap


class Store:
    """Objects under a root: ``uri(key)`` is how a job names them."""

    def __init__(self, kind: str, tmp_path: Path, s3: Any = None, bucket: str | None = None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.s3 = s3
        self.bucket = bucket
        self.root = tmp_path / "store"
        self.root.mkdir(exist_ok=True)

    def put(self, key: str, body: bytes) -> None:
        if self.kind == "s3":
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        else:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

    def uri(self, key: str) -> str:
        if self.kind == "s3":
            return f"s3://{self.bucket}/{key}"
        return str(self.root / key)

    def listing_source(self, prefix: str) -> str:
        """The source a listing of ``prefix`` (a directory: it ends with ``/``) takes."""
        if self.kind == "s3":
            return f"s3://{self.bucket}/{prefix}"
        return str(self.root / prefix)


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def parquet_bytes(table: Any, row_group_size: int | None = None) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size)
    return buf.getvalue()


def run(
    tmp_path: Path, reader: dict[str, Any], fn: str = "itemfns:echo", **extra: Any
) -> distmap.MapRunResult:
    job = {
        "ItemReader": reader,
        "ItemProcessor": {"Function": fn},
        "ResultWriter": {"Destination": str(tmp_path / "out")},
        **extra,
    }
    return distmap.run(job, handle_signals=False)


def inputs(res: distmap.MapRunResult) -> list[Any]:
    """Every record's input, in item order, after checking that the counts add up and match the files."""
    c = res.item_counts
    assert c.succeeded + c.failed + c.timed_out + c.pending == c.total
    files = load_results(res) if res.manifest else {}
    records = [r for recs in files.values() for r in recs]
    assert len(records) == c.total
    records.sort(key=lambda r: int(r["Name"].rsplit("-", 1)[1]) if "Name" in r else 0)
    return [json.loads(r["Input"]) for r in records]
