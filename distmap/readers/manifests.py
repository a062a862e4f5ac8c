"""Manifests: a small file that lists the data files holding the items.

* **S3 Inventory** (``InputType: MANIFEST``): the inventory's ``manifest.json``. Its ``files[].key``
  are keys in ``destinationBucket``; each data file is read in turn (gzip CSV without a header
  row), and each row is an item whose fields are named by ``fileSchema``
  (``"Bucket, Key, Size, ..."``), every value a string, as AWS gives them. A ``fileFormat: Parquet``
  inventory's data files are read by the Parquet reader: each row is an item with the file's own
  column names (``bucket``, ``key``, ``size``, ...) and JSON values (AWS documents no shape for
  these; distmap's choice). ORC inventories are refused with a clear error.
* **Athena data manifest** (``ManifestType: ATHENA_DATA``, ``InputType`` the data files' format:
  CSV, JSONL or PARQUET): a text file with one data file URI per line, as Athena's UNLOAD writes
  next to its results. The files are read in order as one stream.

A local manifest may name data files by their S3 key or URI: the key is looked up under each
directory above the manifest (a local copy of the bucket) and the first that exists is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson

from distmap.errors import ItemReaderFailed
from distmap.readers.base import BlockReader
from distmap.readers.sources import ObjectUri, open_object
from distmap.storage import describe_os_error, is_s3, split_s3

MAX_MANIFEST_BYTES = 64 << 20


def _read_small(uri: str) -> bytes:
    try:
        fh, _ = open_object(uri)
    except ItemReaderFailed:
        raise
    except Exception as exc:
        raise ItemReaderFailed(cause=f"cannot open {uri}: {describe_os_error(exc)}") from None
    try:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    except Exception as exc:
        raise ItemReaderFailed(cause=f"cannot read {uri}: {describe_os_error(exc)}") from None
    finally:
        fh.close()
    if len(data) > MAX_MANIFEST_BYTES:
        raise ItemReaderFailed(cause=f"{uri}: the manifest is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
    return data


def _locate(manifest: str, key: str, bucket: str | None) -> ObjectUri:
    """The data file ``key`` (or URI) names, relative to where the manifest is."""
    if "://" in key:
        return ObjectUri(key)
    if is_s3(manifest):
        return ObjectUri(f"s3://{bucket or split_s3(manifest)[0]}/{key}")
    directory = os.path.dirname(os.path.abspath(manifest))
    while True:
        candidate = os.path.join(directory, key)
        if os.path.exists(candidate):
            return ObjectUri(candidate)
        parent = os.path.dirname(directory)
        if parent == directory:
            raise ItemReaderFailed(
                cause=f"{manifest}: data file {key} not found under any directory above it"
            )
        directory = parent


def inventory_files(uri: str) -> tuple[str, tuple[str, ...], list[ObjectUri]]:
    """The data files' format (``CSV`` or ``PARQUET``), the field names (CSV) and the data files of
    an S3 Inventory manifest.json."""
    try:
        doc = orjson.loads(_read_small(uri))
    except orjson.JSONDecodeError as exc:
        raise ItemReaderFailed(cause=f"{uri}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
        raise ItemReaderFailed(cause=f"{uri}: not an S3 Inventory manifest (no 'files' list)")
    fmt = str(doc.get("fileFormat", "CSV")).upper()
    if fmt not in ("CSV", "PARQUET"):
        raise ItemReaderFailed(
            cause=f"{uri}: S3 Inventory fileFormat {doc.get('fileFormat')} is not supported; "
            "configure the inventory as CSV or Parquet"
        )
    fields: tuple[str, ...] = ()
    if fmt == "CSV":
        schema = doc.get("fileSchema")
        if not isinstance(schema, str) or not schema.strip():
            raise ItemReaderFailed(cause=f"{uri}: the manifest has no fileSchema")
        fields = tuple(name.strip() for name in schema.split(","))
    dest = doc.get("destinationBucket")
    bucket = dest.rsplit(":", 1)[-1] if isinstance(dest, str) and dest else None
    files = []
    for i, entry in enumerate(doc["files"]):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key:
            raise ItemReaderFailed(cause=f"{uri}: files[{i}] has no key")
        files.append(_locate(uri, key, bucket))
    return fmt, fields, files


def athena_files(uri: str) -> Iterator[ObjectUri]:
    """The data files an Athena data manifest lists, one URI per line."""
    text = _read_small(uri)
    for line in text.splitlines():
        entry = line.strip().decode("utf-8", "replace")
        if entry:
            yield _locate(uri, entry, None)


def open_manifest(cfg: Any) -> BlockReader:
    from distmap.readers.csv_reader import CsvReader
    from distmap.readers.formats import decode_format, format_of
    from distmap.readers.multi_reader import MultiReader

    source = ObjectUri(cfg.source, cfg.version_id)
    if cfg.manifest_type == "ATHENA_DATA":
        fmt = format_of(decode_format(cfg))
        return MultiReader(athena_files(source), lambda u: fmt.open_file(u, cfg))
    fmt, fields, files = inventory_files(source)
    if fmt == "PARQUET":
        parquet = format_of("PARQUET")
        reader = MultiReader(iter(files), lambda u: parquet.open_file(u, cfg))
        reader.decode_type = "PARQUET"
        return reader
    return MultiReader(iter(files), lambda u: CsvReader(u, "GIVEN", fields, ","))
