"""Item sources, each on a local directory and on the moto S3 server (HTTP, the real boto3 path):
s3:listObjectsV2 items, LOAD_AND_FLATTEN, Parquet, several files (directory / prefix / glob),
compressed files, S3 Inventory and Athena manifests, VersionId and MaxItems.

Each source is tried empty, with one item, across the 1,000-key page boundary, with a huge row,
a malformed row and a missing object.
"""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import zstandard
from conftest import load_results
from sources_store import Store, inputs, jsonl, parquet_bytes, run

from distmap.readers.listing import java_seconds

LIST = "arn:aws:states:::s3:listObjectsV2"
ITEM_FIELDS = {"Etag", "Key", "LastModified", "Size", "StorageClass"}


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path) -> Store:
    if request.param == "s3":
        s3 = request.getfixturevalue("s3")
        bucket = request.getfixturevalue("s3_bucket")
        return Store("s3", tmp_path, s3, bucket)
    return Store("local", tmp_path)


def listing(store: Store, prefix: str, **config: Any) -> dict[str, Any]:
    reader: dict[str, Any] = {"Resource": LIST, "Source": store.listing_source(prefix)}
    if config:
        reader["ReaderConfig"] = config
    return reader


# ------------------------------------------------------------------ s3:listObjectsV2 items


def test_listing_of_an_empty_prefix_has_no_items(store, tmp_path):
    """A prefix (or directory) with no objects is a run of 0 items that SUCCEEDS."""
    store.put("other/x.txt", b"x")
    if store.kind == "local":
        (store.root / "in").mkdir()
    res = run(tmp_path, listing(store, "in/"))
    assert res.status == "SUCCEEDED", res.cause
    assert res.item_counts.total == 0


def test_listing_item_has_aws_fields_and_spellings(store, tmp_path):
    """One object gives one item with AWS's fields: Etag (so spelt), Key (the full key), LastModified
    (whole seconds since the epoch, written as a float the way AWS writes it: 1.7E9), Size (bytes)
    and StorageClass."""
    store.put("in/a.bin", b"hello")
    res = run(tmp_path, listing(store, "in/"))
    [item] = inputs(res)
    assert set(item) == ITEM_FIELDS
    assert item["Size"] == 5 and item["StorageClass"] == "STANDARD"
    assert item["Key"] == ("in/a.bin" if store.kind == "s3" else "a.bin")
    assert isinstance(item["LastModified"], float) and item["LastModified"] > 1_600_000_000
    assert item["LastModified"].is_integer()
    [record] = [r for recs in load_results(res).values() for r in recs]
    spelt = java_seconds(int(item["LastModified"])).decode()
    assert f'"LastModified":{spelt},' in record["Input"]
    assert item["Etag"].startswith('"') and item["Etag"].endswith('"')
    if store.kind == "s3":
        assert item["Etag"] == '"5d41402abc4b2a76b9719d911017c592"'  # the MD5 of "hello"


def test_last_modified_is_written_as_java_writes_a_double():
    """Whole seconds are spelt as Java's Double.toString spells them, as in AWS's child inputs:
    one digit before the point and an exponent from 10^7 up, trailing zeros dropped."""
    assert java_seconds(1789180622) == b"1.789180622E9"
    assert java_seconds(1700000000) == b"1.7E9"
    assert java_seconds(1000000000) == b"1.0E9"
    assert java_seconds(10_000_000) == b"1.0E7"
    assert java_seconds(9_999_999) == b"9999999.0"
    assert java_seconds(0) == b"0.0"


def test_listing_and_load_and_flatten_cross_the_1000_key_page_boundary(store, tmp_path):
    """1,001 objects (two S3 pages) are 1,001 listing items, each once, in key order, and with
    LOAD_AND_FLATTEN 1,001 items read from them in key order; MaxItems stops exactly at 1,000.
    On S3 the second page is requested only once the first is used up."""
    for i in range(1001):
        store.put(f"in/{i:05d}", b'{"i": %d}\n' % i)
    res = run(tmp_path, listing(store, "in/"))
    keys = [it["Key"].rsplit("/", 1)[-1] for it in inputs(res)]
    assert keys == [f"{i:05d}" for i in range(1001)]
    limited = run(tmp_path / "m", listing(store, "in/", MaxItems=1000))
    assert limited.item_counts.total == 1000
    flat = run(tmp_path / "f", flatten(store, "in/", "JSONL"))
    assert [it["i"] for it in inputs(flat)] == list(range(1001))
    if store.kind == "s3":
        assert _list_calls_while_reading(store.listing_source("in/")) == [1, 1, 2]


def _list_calls_while_reading(source: str) -> list[int]:
    """ListObjectsV2 requests made: after opening a listing reader, after its first block of 10
    items, and at its end (pages are fetched as they are consumed)."""
    from distmap.readers.listing import ListingReader
    from distmap.storage import s3_client

    calls: list[str] = []
    hook = lambda **_kw: calls.append("list")  # noqa: E731
    events = s3_client().meta.events
    events.register("before-call.s3.ListObjectsV2", hook)
    try:
        seen = []
        reader = ListingReader(source)
        seen.append(len(calls))
        assert reader.read_block(10, 1 << 20) is not None
        seen.append(len(calls))
        while reader.read_block(1000, 1 << 20) is not None:
            pass
        seen.append(len(calls))
        reader.close()
    finally:
        events.unregister("before-call.s3.ListObjectsV2", hook)
    return seen


def test_local_listing_is_recursive_in_s3_key_order(tmp_path):
    """A directory lists recursively, in the byte order S3 uses for whole keys ('a-b' before 'a/x')."""
    store = Store("local", tmp_path)
    for key in ("a/x", "a-b", "a0", "b/c/d", "a/y"):
        store.put(key, b"1")
    res = run(tmp_path, listing(store, ""))
    assert [it["Key"] for it in inputs(res)] == sorted(["a/x", "a-b", "a0", "b/c/d", "a/y"])


def test_listing_of_a_missing_bucket_or_directory_fails_naming_it(store, tmp_path):
    """A listing that cannot be made fails before any work with States.ItemReaderFailed naming the source."""
    from distmap.errors import ItemReaderFailed

    source = "s3://no-such-bucket-distmap/in/" if store.kind == "s3" else str(tmp_path / "missing")
    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path, {"Resource": LIST, "Source": source})
    assert source.rstrip("/").split("/")[-2 if store.kind == "s3" else -1] in exc.value.cause


# ------------------------------------------------------------------ LOAD_AND_FLATTEN


def flatten(store: Store, prefix: str, input_type: str, **config: Any) -> dict[str, Any]:
    return listing(store, prefix, InputType=input_type, Transformation="LOAD_AND_FLATTEN", **config)


def test_load_and_flatten_reads_every_object_in_key_order(store, tmp_path):
    """LOAD_AND_FLATTEN yields the items inside each listed object, file after file, in key order;
    an empty object and a folder marker add nothing."""
    store.put("in/b.jsonl", jsonl([{"id": 2}, {"id": 3}]))
    store.put("in/a.jsonl", jsonl([{"id": 0}, {"id": 1}]))
    store.put("in/c.jsonl", b"")
    if store.kind == "s3":
        store.put("in/sub/", b"")
    store.put("in/sub/d.jsonl", jsonl([{"id": 4}]))
    res = run(tmp_path, flatten(store, "in/", "JSONL"))
    assert res.status == "SUCCEEDED", res.cause
    assert inputs(res) == [{"id": i} for i in range(5)]


def test_load_and_flatten_csv_uses_each_files_header(store, tmp_path):
    """CSV files of a prefix are read with their own FIRST_ROW header each."""
    store.put("in/1.csv", b"id,name\n1,a\n")
    store.put("in/2.csv", b"name,id\nb,2\n")
    res = run(tmp_path, flatten(store, "in/", "CSV"))
    assert inputs(res) == [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]


def test_load_and_flatten_malformed_row_names_the_file_and_its_line(store, tmp_path):
    """A malformed line in the second file fails the run with a cause naming that file and its own
    line number; the items before it ran and every item is accounted for."""
    store.put("in/a.jsonl", jsonl([{"id": 0}, {"id": 1}]))
    store.put("in/b.jsonl", b'{"id": 2}\n{"id": 3}\n{"id": \n{"id": 5}\n')
    res = run(tmp_path, flatten(store, "in/", "JSONL"))
    assert res.status == "FAILED" and res.error == "States.ItemReaderFailed"
    assert "b.jsonl line 3" in res.cause
    assert [it["id"] for it in inputs(res)][:4] == [0, 1, 2, 3]


def test_load_and_flatten_json_arrays_and_a_huge_row(store, tmp_path):
    """JSON array files are flattened too; a 3 MiB element comes through whole."""
    big = "x" * (3 << 20)
    store.put("in/a.json", json.dumps([{"id": 0}, {"id": 1, "big": big}]).encode())
    store.put("in/b.json", b'[{"id": 2}]')
    res = run(tmp_path, flatten(store, "in/", "JSON"))
    got = inputs(res)
    assert [it["id"] for it in got] == [0, 1, 2] and got[1]["big"] == big


def test_load_and_flatten_max_items_spans_files(store, tmp_path):
    """MaxItems counts items across files and stops exactly there."""
    for f in range(3):
        store.put(f"in/{f}.jsonl", jsonl([{"id": f * 10 + i} for i in range(4)]))
    res = run(tmp_path, flatten(store, "in/", "JSONL", MaxItems=6))
    assert [it["id"] for it in inputs(res)] == [0, 1, 2, 3, 10, 11]


def test_load_and_flatten_needs_an_input_type(tmp_path):
    """LOAD_AND_FLATTEN without InputType is a config error naming the field."""
    from distmap.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        run(
            tmp_path,
            {
                "Resource": LIST,
                "Source": str(tmp_path),
                "ReaderConfig": {"Transformation": "LOAD_AND_FLATTEN"},
            },
        )
    assert "InputType" in str(exc.value)


# ------------------------------------------------------------------ Parquet


def _types_table() -> Any:
    import datetime as dt
    import decimal

    import pyarrow as pa

    return pa.table(
        {
            "i": pa.array([1, None], pa.int64()),
            "f": pa.array([1.5, float("nan")]),
            "s": pa.array(["a", None]),
            "ts": pa.array([dt.datetime(2024, 5, 1, 12, 30, 0, 250000), None], pa.timestamp("us", tz="UTC")),
            "naive": pa.array([dt.datetime(2024, 5, 1, 12, 30), None], pa.timestamp("ms")),
            "d": pa.array([dt.date(2024, 5, 1), None], pa.date32()),
            "dec": pa.array([decimal.Decimal("12345.6700"), None], pa.decimal128(9, 4)),
            "bin": pa.array([b"\x00\xff", None], pa.binary()),
            "lst": pa.array([[1, 2], []], pa.list_(pa.int32())),
            "st": pa.array([{"a": 1, "b": "x"}, None], pa.struct([("a", pa.int8()), ("b", pa.string())])),
            "m": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())),
            "tss": pa.array(
                [[dt.datetime(2024, 5, 1, 12, 30, 0, 250000), dt.datetime(1969, 12, 31, 23, 59, 59, 998500)], None],
                pa.list_(pa.timestamp("us")),
            ),
            "nst": pa.array(
                [{"at": 1714566600250123456}, {"at": None}], pa.struct([("at", pa.timestamp("ns", tz="UTC"))])
            ),
        }
    )


def test_parquet_types_map_to_json_values(store, tmp_path):
    """Arrow types become JSON values as the README documents: timestamps as whole milliseconds
    since the epoch (AWS's shape; any unit, with or without a time zone, also inside a list), ISO
    dates, decimals as exact text, binary as base64, lists, structs and maps as arrays and objects,
    NaN and nulls as null."""
    store.put("t.parquet", parquet_bytes(_types_table()))
    res = run(tmp_path, {"Source": store.uri("t.parquet"), "ReaderConfig": {"InputType": "PARQUET"}})
    first, second = inputs(res)
    assert first == {
        "i": 1, "f": 1.5, "s": "a", "ts": 1714566600250, "naive": 1714566600000,
        "d": "2024-05-01", "dec": "12345.6700", "bin": "AP8=", "lst": [1, 2], "st": {"a": 1, "b": "x"},
        "m": {"k": 1}, "tss": [1714566600250, -2], "nst": {"at": 1714566600250},
    }  # fmt: skip
    assert second == {
        "i": None, "f": None, "s": None, "ts": None, "naive": None, "d": None, "dec": None, "bin": None,
        "lst": [], "st": None, "m": None, "tss": None, "nst": {"at": None},
    }  # fmt: skip


def test_parquet_row_groups_stream_in_order_with_max_items(store, tmp_path):
    """Rows of many row groups come in file order with exact indexes; MaxItems stops mid-group."""
    import pyarrow as pa

    table = pa.table({"id": list(range(2500))})
    store.put("t.parquet", parquet_bytes(table, row_group_size=300))
    res = run(tmp_path, {"Source": store.uri("t.parquet"), "ReaderConfig": {"InputType": "PARQUET"}})
    assert [r["id"] for r in inputs(res)] == list(range(2500))
    res = run(
        tmp_path / "m",
        {"Source": store.uri("t.parquet"), "ReaderConfig": {"InputType": "PARQUET", "MaxItems": 301}},
    )
    assert [r["id"] for r in inputs(res)] == list(range(301))


def test_parquet_empty_one_row_and_huge_row(store, tmp_path):
    """A Parquet file with no rows is 0 items; one row is one item; a 5 MiB string value comes whole."""
    import pyarrow as pa

    store.put("e.parquet", parquet_bytes(pa.table({"id": pa.array([], pa.int64())})))
    store.put("one.parquet", parquet_bytes(pa.table({"id": [7], "big": ["y" * (5 << 20)]})))
    res = run(tmp_path, {"Source": store.uri("e.parquet"), "ReaderConfig": {"InputType": "PARQUET"}})
    assert res.status == "SUCCEEDED" and res.item_counts.total == 0
    res = run(tmp_path / "1", {"Source": store.uri("one.parquet"), "ReaderConfig": {"InputType": "PARQUET"}})
    [row] = inputs(res)
    assert row["id"] == 7 and len(row["big"]) == 5 << 20


def test_parquet_malformed_or_missing_file_fails_naming_it(store, tmp_path):
    """A file that is not Parquet, and a missing object, fail with States.ItemReaderFailed naming it."""
    from distmap.errors import ItemReaderFailed

    store.put("bad.parquet", b"PAR1 this is not parquet")
    for key, words in (("bad.parquet", "not a readable Parquet file"), ("missing.parquet", "cannot open")):
        with pytest.raises(ItemReaderFailed) as exc:
            run(tmp_path, {"Source": store.uri(key), "ReaderConfig": {"InputType": "PARQUET"}})
        assert key in exc.value.cause and words in exc.value.cause


def test_parquet_load_and_flatten(store, tmp_path):
    """LOAD_AND_FLATTEN reads each listed Parquet file's rows in turn."""
    import pyarrow as pa

    store.put("in/1.parquet", parquet_bytes(pa.table({"id": [0, 1]})))
    store.put("in/2.parquet", parquet_bytes(pa.table({"id": [2]})))
    res = run(tmp_path, flatten(store, "in/", "PARQUET"))
    assert [r["id"] for r in inputs(res)] == [0, 1, 2]


# ------------------------------------------------------------------ several files, compression


COMPRESSORS = {"gz": gzip.compress, "bz2": bz2.compress, "zst": zstandard.ZstdCompressor().compress}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compressed_file_is_decompressed_with_exact_line_numbers(store, tmp_path, suffix):
    """A .gz / .bz2 / .zst file is read decompressed; a malformed line is named by its line number
    in the decompressed text, after the items before it ran."""
    big = "z" * (3 << 20)  # a huge line, decompressed across many reads
    body = jsonl([{"id": 0}, {"id": 1, "big": big}, {"id": 2}]) + b"{oops\n"
    store.put(f"in.jsonl.{suffix}", COMPRESSORS[suffix](body))
    store.put(f"empty.jsonl.{suffix}", COMPRESSORS[suffix](b""))
    res = run(tmp_path, {"Source": store.uri(f"in.jsonl.{suffix}"), "ReaderConfig": {"InputType": "JSONL"}})
    assert res.error == "States.ItemReaderFailed" and f"in.jsonl.{suffix} line 4" in res.cause
    got = inputs(res)
    assert [it["id"] for it in got] == [0, 1, 2] and got[1]["big"] == big
    res = run(
        tmp_path / "e", {"Source": store.uri(f"empty.jsonl.{suffix}"), "ReaderConfig": {"InputType": "JSONL"}}
    )
    assert res.status == "SUCCEEDED" and res.item_counts.total == 0


def test_directory_or_prefix_and_glob_sources_read_as_one_stream(store, tmp_path):
    """A Source naming a directory (or an s3:// prefix ending in /) reads every file under it, in key
    order, as one stream with running item indexes; a glob reads only the files it matches
    (``*`` within one path segment, ``**`` across)."""
    store.put("d/1.jsonl", jsonl([{"id": 0}]))
    store.put("d/2.jsonl.gz", gzip.compress(jsonl([{"id": 1}, {"id": 2}])))
    store.put("d/x/3.jsonl", jsonl([{"id": 3}]))
    store.put("d/skip.txt", b"not json")
    src = store.listing_source("d/")
    res = run(tmp_path, {"Source": src + "**.jsonl*", "ReaderConfig": {"InputType": "JSONL"}})
    assert [it["id"] for it in inputs(res)] == [0, 1, 2, 3]
    res = run(
        tmp_path / "g", {"Source": src.rstrip("/") + "/*.jsonl*", "ReaderConfig": {"InputType": "JSONL"}}
    )
    assert [it["id"] for it in inputs(res)] == [0, 1, 2]
    store.put("e/1.jsonl", jsonl([{"id": 9}]))
    res = run(tmp_path / "d", {"Source": store.listing_source("e/"), "ReaderConfig": {"InputType": "JSONL"}})
    assert [it["id"] for it in inputs(res)] == [9]


def test_glob_matching_nothing_fails_naming_it(store, tmp_path):
    from distmap.errors import ItemReaderFailed

    store.put("d/1.jsonl", b"{}\n")
    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path, {"Source": store.listing_source("d/") + "*.csv", "ReaderConfig": {"InputType": "CSV"}})
    assert "no object matches" in exc.value.cause


def test_missing_object_fails_before_any_work(store, tmp_path):
    """A single missing object fails with States.ItemReaderFailed naming it."""
    from distmap.errors import ItemReaderFailed

    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path, {"Source": store.uri("nope.jsonl"), "ReaderConfig": {"InputType": "JSONL"}})
    assert "nope.jsonl" in exc.value.cause


def test_gs_without_its_extra_says_what_to_install(tmp_path):
    """gs:// needs google-cloud-storage; without it the error says pip install 'distmap[gcs]'."""
    pytest.importorskip("smart_open")
    try:
        import google.cloud.storage  # noqa: F401

        pytest.skip("google-cloud-storage is installed")
    except ImportError:
        pass
    from distmap.errors import ItemReaderFailed

    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path, {"Source": "gs://bucket/rows.jsonl", "ReaderConfig": {"InputType": "JSONL"}})
    assert "pip install 'distmap[gcs]'" in exc.value.cause


# ------------------------------------------------------------------ manifests


def _inventory(store: Store, rows: list[list[str]], files: int = 2) -> str:
    keys = []
    per = max(1, -(-len(rows) // files))
    for f in range(files):
        part = rows[f * per : (f + 1) * per]
        body = "".join(",".join(f'"{v}"' for v in r) + "\n" for r in part).encode()
        key = f"inv/src/cfg/data/{f}.csv.gz"
        store.put(key, gzip.compress(body))
        keys.append({"key": key, "size": 1, "MD5checksum": "x"})
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": f"arn:aws:s3:::{store.bucket or 'local'}",
        "version": "2016-11-30",
        "creationTimestamp": "1514944800000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": keys,
    }
    store.put("inv/src/cfg/2024-01-01T00-00Z/manifest.json", json.dumps(manifest).encode())
    return store.uri("inv/src/cfg/2024-01-01T00-00Z/manifest.json")


def test_s3_inventory_manifest_items_have_the_file_schema_fields(store, tmp_path):
    """An S3 Inventory manifest.json gives one item per inventory row, across its gzip CSV data
    files, with the fileSchema's field names and string values."""
    rows = [["src", f"k{i}", str(i), "2024-01-01T00:00:00.000Z"] for i in range(5)]
    src = _inventory(store, rows)
    res = run(tmp_path, {"Source": src, "ReaderConfig": {"InputType": "MANIFEST"}})
    assert inputs(res) == [
        {"Bucket": "src", "Key": f"k{i}", "Size": str(i), "LastModifiedDate": "2024-01-01T00:00:00.000Z"}
        for i in range(5)
    ]


def test_s3_inventory_manifest_malformed_or_missing(store, tmp_path):
    """A manifest that is not JSON, or names a missing data file, fails naming the file."""
    from distmap.errors import ItemReaderFailed

    store.put("m/manifest.json", b"{not json")

    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path, {"Source": store.uri("m/manifest.json"), "ReaderConfig": {"InputType": "MANIFEST"}})
    assert "manifest.json" in exc.value.cause and "not valid JSON" in exc.value.cause
    manifest = {"fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": [{"key": "m/gone.csv.gz"}]}
    store.put("m/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(ItemReaderFailed) as exc:
        run(
            tmp_path / "2",
            {"Source": store.uri("m/manifest.json"), "ReaderConfig": {"InputType": "MANIFEST"}},
        )
    assert "gone.csv.gz" in exc.value.cause


def test_s3_inventory_parquet_data_files_give_their_rows(store, tmp_path):
    """A fileFormat Parquet inventory: each row of its Parquet data files is an item with the
    files' own column names and JSON values, across files, in order; an ORC inventory is refused
    with a message naming the manifest and the format."""
    import pyarrow as pa

    from distmap.errors import ItemReaderFailed

    keys = []
    for f, ids in enumerate(([0, 1], [2])):
        key = f"pinv/data/{f}.parquet"
        table = pa.table({"bucket": ["src"] * len(ids), "key": [f"k{i}" for i in ids], "size": ids})
        store.put(key, parquet_bytes(table))
        keys.append({"key": key, "size": 1, "MD5checksum": "x"})
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": f"arn:aws:s3:::{store.bucket or 'local'}",
        "fileFormat": "Parquet",
        "fileSchema": "message s3.inventory { required binary bucket (STRING); required binary key (STRING); }",
        "files": keys,
    }
    store.put("pinv/manifest.json", json.dumps(manifest).encode())
    reader = {"Source": store.uri("pinv/manifest.json"), "ReaderConfig": {"InputType": "MANIFEST"}}
    res = run(tmp_path, reader)
    assert res.status == "SUCCEEDED", res.cause
    assert inputs(res) == [{"bucket": "src", "key": f"k{i}", "size": i} for i in range(3)]
    store.put("pinv/manifest.json", json.dumps({**manifest, "fileFormat": "ORC"}).encode())
    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path / "orc", reader)
    assert "manifest.json" in exc.value.cause and "fileFormat ORC is not supported" in exc.value.cause

def test_empty_manifests_have_no_items(store, tmp_path):
    """An S3 Inventory manifest with no data files, and an empty Athena manifest, are 0 items."""
    manifest = {"fileFormat": "CSV", "fileSchema": "Bucket, Key", "files": []}
    store.put("m/manifest.json", json.dumps(manifest).encode())
    store.put("m/athena.csv", b"")
    res = run(tmp_path, {"Source": store.uri("m/manifest.json"), "ReaderConfig": {"InputType": "MANIFEST"}})
    assert res.status == "SUCCEEDED" and res.item_counts.total == 0
    reader = {
        "Source": store.uri("m/athena.csv"),
        "ReaderConfig": {"InputType": "CSV", "ManifestType": "ATHENA_DATA"},
    }
    res = run(tmp_path / "a", reader)
    assert res.status == "SUCCEEDED" and res.item_counts.total == 0


def test_athena_data_manifest_reads_the_listed_files(store, tmp_path):
    """ManifestType ATHENA_DATA: the manifest lists data file URIs; InputType is their format."""
    store.put("athena/r/1.jsonl", jsonl([{"id": 0}, {"id": 1}]))
    store.put("athena/r/2.jsonl", jsonl([{"id": 2}]))
    store.put(
        "athena/q-manifest.csv",
        f"{store.uri('athena/r/1.jsonl')}\n{store.uri('athena/r/2.jsonl')}\n".encode(),
    )
    res = run(
        tmp_path,
        {
            "Source": store.uri("athena/q-manifest.csv"),
            "ReaderConfig": {"InputType": "JSONL", "ManifestType": "ATHENA_DATA"},
        },
    )
    assert [it["id"] for it in inputs(res)] == [0, 1, 2]



def test_athena_manifest_with_a_missing_data_file_fails_naming_it(store, tmp_path):
    """A data file the Athena manifest lists but that does not exist fails the run with
    States.ItemReaderFailed naming that file: before any work when it is the first file; after the
    items of the files before it when it comes later, and those items are all run and written."""
    from distmap.errors import ItemReaderFailed

    store.put("athena/r/1.jsonl", jsonl([{"id": 0}, {"id": 1}]))
    gone = store.uri("athena/r/gone.jsonl")
    reader = {
        "Source": store.uri("athena/m.csv"),
        "ReaderConfig": {"InputType": "JSONL", "ManifestType": "ATHENA_DATA"},
    }
    store.put("athena/m.csv", f"{gone}\n{store.uri('athena/r/1.jsonl')}\n".encode())
    with pytest.raises(ItemReaderFailed) as exc:
        run(tmp_path, reader)
    assert "gone.jsonl" in exc.value.cause
    store.put("athena/m.csv", f"{store.uri('athena/r/1.jsonl')}\n{gone}\n".encode())
    res = run(tmp_path / "2", reader)
    assert (res.status, res.error) == ("FAILED", "States.ItemReaderFailed")
    assert "gone.jsonl" in res.cause
    assert res.item_counts.succeeded == res.item_counts.total == 2
    assert inputs(res) == [{"id": 0}, {"id": 1}]

# ------------------------------------------------------------------ VersionId


@pytest.mark.s3
def test_get_object_version_id_reads_that_version(s3, s3_bucket, tmp_path):
    """Parameters.VersionId reads that version of the object, not the latest."""
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=s3_bucket, Key="v.jsonl", Body=jsonl([{"v": 1}]))["VersionId"]
    s3.put_object(Bucket=s3_bucket, Key="v.jsonl", Body=jsonl([{"v": 2}]))
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": s3_bucket, "Key": "v.jsonl", "VersionId": old},
        "ReaderConfig": {"InputType": "JSONL"},
    }
    assert inputs(run(tmp_path, reader)) == [{"v": 1}]
    reader["Parameters"].pop("VersionId")
    assert inputs(run(tmp_path / "latest", reader)) == [{"v": 2}]


# ------------------------------------------------------------------ through distmap execute (ASL Parameters)


def _execute(reader: dict[str, Any], data: Any = None) -> Any:
    from test_asl_execute import RESOURCES, machine, output, task

    import distmap

    processor = machine({"T": task("echo", End=True)})
    state = {
        "Type": "Map",
        "ItemReader": reader,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            **processor,
        },
        "End": True,
    }
    return output(
        distmap.execute(machine({"M": state}), data or {}, resources=RESOURCES, state_machine_name="sm")
    )


@pytest.mark.s3
def test_execute_list_objects_v2_with_parameters_paths_and_max_items_path(s3, s3_bucket):
    """An ASL ItemReader s3:listObjectsV2 with Parameters (Bucket.$ from the input, Prefix) gives one
    item per object with AWS's fields; MaxItemsPath limits it."""
    for i in range(3):
        s3.put_object(Bucket=s3_bucket, Key=f"logs/{i}.log", Body=b"x" * i)
    s3.put_object(Bucket=s3_bucket, Key="other/x", Body=b"")
    reader = {"Resource": LIST, "Parameters": {"Bucket.$": "$.bucket", "Prefix": "logs/"}}
    out = _execute(reader, {"bucket": s3_bucket})
    assert [(o["Key"], o["Size"]) for o in out] == [("logs/0.log", 0), ("logs/1.log", 1), ("logs/2.log", 2)]
    assert all(set(o) == ITEM_FIELDS for o in out)
    reader["ReaderConfig"] = {"MaxItemsPath": "$.n"}
    assert len(_execute(reader, {"bucket": s3_bucket, "n": 2})) == 2


@pytest.mark.s3
def test_execute_load_and_flatten_parquet_and_csv(s3, s3_bucket):
    """listObjectsV2 with ReaderConfig {InputType, Transformation: LOAD_AND_FLATTEN} runs each object's
    rows as items, for Parquet and CSV."""
    import pyarrow as pa

    s3.put_object(Bucket=s3_bucket, Key="pq/1.parquet", Body=parquet_bytes(pa.table({"id": [1, 2]})))
    s3.put_object(Bucket=s3_bucket, Key="pq/2.parquet", Body=parquet_bytes(pa.table({"id": [3]})))
    s3.put_object(Bucket=s3_bucket, Key="csv/1.csv", Body=b"id\n1\n")
    for prefix, input_type, want in (("pq/", "PARQUET", [1, 2, 3]), ("csv/", "CSV", ["1"])):
        reader = {
            "Resource": LIST,
            "Parameters": {"Bucket": s3_bucket, "Prefix": prefix},
            "ReaderConfig": {"InputType": input_type, "Transformation": "LOAD_AND_FLATTEN"},
        }
        assert [o["id"] for o in _execute(reader)] == want


@pytest.mark.s3
def test_execute_manifests_parquet_and_version_id(s3, s3_bucket, tmp_path):
    """s3:getObject with InputType MANIFEST (S3 Inventory, CSV and Parquet data files), ManifestType
    ATHENA_DATA, PARQUET and a VersionId all run through distmap execute."""
    import pyarrow as pa

    store = Store("s3", tmp_path, s3, s3_bucket)
    src = _inventory(store, [["b", "k1"], ["b", "k2"]], files=1).split("/", 3)[3]
    s3.put_object(Bucket=s3_bucket, Key="t.parquet", Body=parquet_bytes(pa.table({"id": [5]})))
    s3.put_object(Bucket=s3_bucket, Key="a/1.jsonl", Body=jsonl([{"id": 8}]))
    s3.put_object(Bucket=s3_bucket, Key="a/m.csv", Body=f"s3://{s3_bucket}/a/1.jsonl\n".encode())
    s3.put_object(Bucket=s3_bucket, Key="p/0.parquet", Body=parquet_bytes(pa.table({"key": ["k3"]})))
    pinv = {"fileFormat": "Parquet", "files": [{"key": "p/0.parquet"}]}
    s3.put_object(Bucket=s3_bucket, Key="p/manifest.json", Body=json.dumps(pinv).encode())

    def get(key: str, **config: Any) -> dict[str, Any]:
        return {
            "Resource": "arn:aws:states:::s3:getObject",
            "Parameters": {"Bucket": s3_bucket, "Key": key},
            "ReaderConfig": config,
        }

    assert [o["Key"] for o in _execute(get(src, InputType="MANIFEST"))] == ["k1", "k2"]
    assert _execute(get("p/manifest.json", InputType="MANIFEST")) == [{"key": "k3"}]
    assert _execute(get("t.parquet", InputType="PARQUET")) == [{"id": 5}]
    assert _execute(get("a/m.csv", InputType="JSONL", ManifestType="ATHENA_DATA")) == [{"id": 8}]


def test_execute_rejects_an_input_type_on_a_plain_listing():
    """A listing's items are the objects; InputType without LOAD_AND_FLATTEN is a definition error."""
    from distmap.errors import ConfigError

    reader = {"Resource": LIST, "Parameters": {"Bucket": "my-bucket"}, "ReaderConfig": {"InputType": "CSV"}}
    with pytest.raises(ConfigError) as exc:
        _execute(reader)
    assert "LOAD_AND_FLATTEN" in str(exc.value)


def test_http_source_is_read_through_smart_open(tmp_path):
    """An http:// source (a local HTTP server here) is read through smart_open like a file,
    gzip included; a missing URL fails naming it."""
    import functools
    import http.server
    import threading

    from distmap.errors import ItemReaderFailed

    pytest.importorskip("requests")
    root = tmp_path / "www"
    root.mkdir()
    (root / "rows.jsonl.gz").write_bytes(gzip.compress(jsonl([{"id": 1}, {"id": 2}])))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        res = run(tmp_path, {"Source": f"{base}/rows.jsonl.gz", "ReaderConfig": {"InputType": "JSONL"}})
        assert inputs(res) == [{"id": 1}, {"id": 2}]
        with pytest.raises(ItemReaderFailed) as exc:
            run(tmp_path / "m", {"Source": f"{base}/missing.jsonl", "ReaderConfig": {"InputType": "JSONL"}})
        assert "missing.jsonl" in exc.value.cause
    finally:
        server.shutdown()


@pytest.mark.s3
def test_execute_list_objects_v2_with_jsonata_arguments(s3, s3_bucket):
    """In a JSONata state the ItemReader takes Arguments: {% %} expressions name the bucket and
    prefix, and LOAD_AND_FLATTEN reads the listed objects."""
    for i in range(2):
        s3.put_object(Bucket=s3_bucket, Key=f"j/{i}.jsonl", Body=jsonl([{"id": i}]))
    reader = {
        "Resource": LIST,
        "Arguments": {"Bucket": "{% $states.input.bucket %}", "Prefix": "{% 'j' & '/' %}"},
        "ReaderConfig": {"InputType": "JSONL", "Transformation": "LOAD_AND_FLATTEN"},
    }
    from test_asl_execute import RESOURCES, machine, output, task

    import distmap

    state = {
        "Type": "Map",
        "QueryLanguage": "JSONata",
        "ItemReader": reader,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            **machine({"T": task("echo", End=True)}),
        },
        "End": True,
    }
    out = output(
        distmap.execute(machine({"M": state}), {"bucket": s3_bucket}, resources=RESOURCES, state_machine_name="sm")
    )
    assert [o["id"] for o in out] == [0, 1]


@pytest.mark.s3
def test_parameters_key_is_literal_while_source_may_be_a_glob(s3, s3_bucket, tmp_path):
    """Parameters {Bucket, Key} names one object even when its key holds glob characters (as on
    AWS); the same text as a Source is a glob."""
    s3.put_object(Bucket=s3_bucket, Key="odd/[a].jsonl", Body=jsonl([{"id": "literal"}]))
    s3.put_object(Bucket=s3_bucket, Key="odd/a.jsonl", Body=jsonl([{"id": "globbed"}]))
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "Parameters": {"Bucket": s3_bucket, "Key": "odd/[a].jsonl"},
        "ReaderConfig": {"InputType": "JSONL"},
    }
    assert inputs(run(tmp_path, reader)) == [{"id": "literal"}]
    source = {"Source": f"s3://{s3_bucket}/odd/[a].jsonl", "ReaderConfig": {"InputType": "JSONL"}}
    assert inputs(run(tmp_path / "g", source)) == [{"id": "globbed"}]
