"""The registry of formats and the one place a reader configuration becomes a reader.

A format is one module with three functions:

* ``open_file(uri, cfg) -> BlockReader``: the coordinator's splitter over one object;
* ``decode(spec, block)``: the worker's parser, yielding ``(line, value, raw_json_or_None)``;
* ``split(spec, block, n)``: cut a block after ``n`` items (crash bisection).

A format whose blocks are JSON lines (``json_lines``) may also define ``json_lines(block)`` to
turn a block into JSON lines, so workers run it on the JSONL fast path, and ``json_values(block)``
to give the lines and their values at once (``fast_block``).

Sources are not formats: ``open_reader`` chooses the object(s) to read (``sources``) and the
shape of the items (``listing`` for ``s3:listObjectsV2`` without a transformation, ``manifests``
for S3 Inventory and Athena manifests), then reads each object with its format's splitter.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import orjson

from distmap.readers.base import BlockReader, RawBlock


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    module_name: str
    json_lines: bool = False
    """Blocks are (or transcode cheaply to) one JSON value per line: the worker's fast path."""

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    def decode(self, spec: Any, block: RawBlock) -> Iterator[tuple[int, Any, bytes | None]]:
        return self.module.decode(spec, block)

    def split(self, spec: Any, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
        return self.module.split(spec, block, n)

    def open_file(self, uri: str, cfg: Any) -> BlockReader:
        return self.module.open_file(uri, cfg)


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> None:
    FORMATS[fmt.name] = fmt


register(Format("JSONL", "distmap.readers.jsonl_reader", json_lines=True))
register(Format("CSV", "distmap.readers.csv_reader"))
register(Format("JSON", "distmap.readers.json_reader"))
register(Format("PARQUET", "distmap.readers.parquet_reader", json_lines=True))


def format_of(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown InputType {name}") from None


def fast_lines(spec: Any) -> bool:
    """Whether the worker may run this run's blocks on the JSON-lines fast path."""
    return format_of(spec.input_type).json_lines


def json_lines(spec: Any, block: RawBlock) -> bytes:
    """A block of a ``json_lines`` format as JSON lines (the JSONL payload as it is)."""
    module = format_of(spec.input_type).module
    convert = getattr(module, "json_lines", None)
    return convert(block) if convert is not None else block.payload  # type: ignore[return-value]


def fast_block(spec: Any, block: RawBlock) -> tuple[bytes, Callable[[bytes], Any]]:
    """A block of a ``json_lines`` format as JSON lines, with the function that gives each line's
    value, called once per line in order. JSONL parses each line (``orjson.loads``). A format that
    builds its lines valid and defines ``json_values(block)`` (Parquet) parses them all in one call,
    and the function hands the values out in turn (``next(values, line)``)."""
    convert = getattr(format_of(spec.input_type).module, "json_values", None)
    if convert is None:
        return json_lines(spec, block), orjson.loads
    payload, values = convert(block)
    return payload, functools.partial(next, iter(values))


def decode_format(cfg: Any, reader: Any = None) -> str:
    """The format of the blocks a configuration produces (what workers decode): the one its open
    reader declares (``decode_type``: an S3 Inventory's data files are CSV or Parquet as its
    manifest says), else the one the configuration names."""
    declared = getattr(reader, "decode_type", None)
    if declared is not None:
        return str(declared)
    if cfg.resource == "listObjectsV2" and cfg.transformation == "NONE":
        return "JSONL"  # the listing's items, encoded as JSON lines
    if cfg.input_type == "MANIFEST":
        return "CSV"  # S3 Inventory CSV data files
    return cfg.input_type


def open_reader(cfg: Any) -> BlockReader:
    """The splitter for a whole ``ItemReaderConfig``: one object, or a stream of many."""
    from distmap.readers import sources
    from distmap.readers.multi_reader import MultiReader

    fmt = format_of(decode_format(cfg))
    if cfg.resource == "listObjectsV2":
        if cfg.transformation == "NONE":
            from distmap.readers.listing import ListingReader

            return ListingReader(cfg.source, cfg.list_params)
        objects = (
            sources.ObjectUri(o.uri, size=o.size)
            for o in sources.list_objects(cfg.source, cfg.list_params)
            if not sources.is_folder_marker(o)
        )
        return MultiReader(objects, lambda uri: fmt.open_file(uri, cfg))
    if cfg.input_type == "MANIFEST" or cfg.manifest_type is not None:
        from distmap.readers import manifests

        return manifests.open_manifest(cfg)
    source = sources.ObjectUri(cfg.source, cfg.version_id)
    if cfg.expand and (sources.has_glob(source) or sources.is_directory(source)):
        return MultiReader(sources.expand(source, cfg.list_params), lambda uri: fmt.open_file(uri, cfg))
    return fmt.open_file(source, cfg)


def total_bytes(cfg: Any) -> int | None:
    """The input's size for the progress estimate, when one object holds it (else None)."""
    from distmap.readers import sources
    from distmap.storage import size_of

    if cfg.resource == "listObjectsV2" or cfg.manifest_type is not None:
        return None
    if cfg.expand and (sources.has_glob(cfg.source) or sources.is_directory(cfg.source)):
        return None
    return size_of(cfg.source)
