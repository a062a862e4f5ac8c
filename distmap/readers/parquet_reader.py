"""Parquet: one item per row, read a row group at a time with pyarrow (``pip install 'distmap[parquet]'``).

The coordinator never builds Python objects from the file: it reads one row group (columnar,
in C), slices it into chunks and ships each slice as Arrow IPC bytes. A worker turns its slice
into JSON lines and runs them like JSONL (the fast path applies).

Arrow types become JSON values this way. Timestamps follow AWS, which gives them as whole
milliseconds since the epoch (recorded from AWS by another emulator's authors); AWS documents no
other part of the mapping, so the rest is distmap's choice, the one that keeps every value exact
and JSON-typed:

* integers, floats, booleans, strings: as they are; NaN and infinities: ``null`` (JSON has none);
* null: ``null``; lists and fixed-size lists: arrays; structs: objects; maps: objects (keys as
  text; a later duplicate key wins);
* timestamps (any unit, with or without a time zone, also inside lists and structs): whole
  milliseconds since the epoch, rounded down (``1714566600250``);
* dates: ``2024-05-01``; times of day: ``12:30:00``;
* decimals: text with every digit (``"12345.6700"``): a JSON number would lose precision;
* binary: base64 text; durations: seconds, as a number.

Line numbers in messages are row numbers (1-based) in the file.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import orjson

from distmap.errors import ItemReaderFailed
from distmap.readers.base import RawBlock
from distmap.storage import describe_os_error


def _pyarrow(parquet: bool = False) -> Any:
    """pyarrow, with its IPC module (workers) and its Parquet module (the coordinator)."""
    try:
        import pyarrow as pa
        import pyarrow.ipc

        if parquet:  # the coordinator: with the kernels workers use, so forked workers have them
            import pyarrow.compute
            import pyarrow.parquet
    except ImportError:
        raise ItemReaderFailed(
            cause="reading Parquet needs pyarrow: pip install 'distmap[parquet]'"
        ) from None
    return pa


class ParquetReader:
    header: tuple[str, ...] = ()

    def __init__(self, uri: str) -> None:
        from distmap.readers.sources import open_raw

        pa = self.pa = _pyarrow(parquet=True)
        self.uri = uri
        try:
            self.fh = open_raw(uri)
        except ItemReaderFailed:
            raise
        except Exception as exc:
            raise ItemReaderFailed(cause=f"cannot open {uri}: {describe_os_error(exc)}") from None
        try:
            self.file = pa.parquet.ParquetFile(self.fh)
        except Exception as exc:
            self.fh.close()
            raise ItemReaderFailed(cause=f"{uri}: not a readable Parquet file ({exc})") from None
        self.group = 0
        self.table: Any = None
        self.pos = 0
        self.row = 1
        self.per_row = 64.0
        self.bytes_read = 0

    def _next_group(self) -> bool:
        meta = self.file.metadata
        while self.group < meta.num_row_groups:
            index = self.group
            self.group += 1
            try:
                table = self.file.read_row_group(index, use_threads=False)
            except Exception as exc:
                raise ItemReaderFailed(
                    cause=f"{self.uri} row {self.row}: cannot read row group {index} ({exc})"
                ) from None
            group = meta.row_group(index)
            self.bytes_read += sum(group.column(i).total_compressed_size for i in range(group.num_columns))
            if table.num_rows:
                self.table, self.pos = table, 0
                self.per_row = max(1.0, table.nbytes / table.num_rows)
                return True
        self.table = None
        return False

    def read_block(self, max_items: int, target_bytes: int) -> RawBlock | None:
        if (self.table is None or self.pos >= self.table.num_rows) and not self._next_group():
            return None
        n = min(max_items, self.table.num_rows - self.pos, max(1, int(target_bytes / self.per_row)))
        payload = to_ipc(self.pa, self.table.slice(self.pos, n))
        self.pos += n
        first = self.row
        self.row += n
        return RawBlock(payload, n, first)

    def close(self) -> None:
        self.table = None
        with contextlib.suppress(Exception):
            self.fh.close()


def to_ipc(pa: Any, table: Any) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(payload: bytes) -> Any:
    pa = _pyarrow()
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
_PER_MS = {"s": None, "ms": 1, "us": 1000, "ns": 1_000_000}


def _millis(table: Any) -> Any:
    """The table with every timestamp (also inside lists and structs) as whole milliseconds since
    the epoch (int64, rounded down), as AWS gives timestamps: ``1714566600250``."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if _has_timestamp(field.type):
            column = pa.chunked_array([_ms_array(c) for c in table.column(i).chunks])
            table = table.set_column(i, pa.field(field.name, column.type, field.nullable), column)
    return table


def _has_timestamp(typ: Any) -> bool:
    import pyarrow.types as t

    if t.is_timestamp(typ):
        return True
    return any(_has_timestamp(typ.field(k).type) for k in range(typ.num_fields))


def _ms_array(arr: Any) -> Any:
    """One array with its timestamps as milliseconds (lists and structs rebuilt around them)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    typ = arr.type
    if t.is_timestamp(typ):
        raw = pc.cast(arr, pa.int64())
        per = _PER_MS[typ.unit]
        if per is None:
            return pc.multiply(raw, 1000)
        if per == 1:
            return raw
        q = pc.divide(raw, per)  # rounds toward zero; 1969's instants must round down too
        return pc.if_else(pc.greater(pc.multiply(q, per), raw), pc.subtract(q, 1), q)
    if not _has_timestamp(typ):
        return arr
    mask = arr.is_null() if arr.null_count else None
    if t.is_list(typ) or t.is_large_list(typ):
        cls = pa.LargeListArray if t.is_large_list(typ) else pa.ListArray
        return cls.from_arrays(arr.offsets, _ms_array(arr.values), mask=mask)
    if t.is_struct(typ):
        fields = [typ.field(k) for k in range(typ.num_fields)]
        children = [_ms_array(arr.field(k)) for k in range(typ.num_fields)]
        named = [pa.field(f.name, c.type, f.nullable) for f, c in zip(fields, children, strict=True)]
        return pa.StructArray.from_arrays(children, fields=named, mask=mask)
    return arr  # a map or fixed-size list of timestamps: left to the row-by-row path below


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):  # nested in a list or struct
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // _MS
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME


# ---------------------------------------------------------------- the format's entry points


def open_file(uri: str, cfg: Any) -> ParquetReader:
    return ParquetReader(uri)


def json_lines(block: RawBlock) -> bytes:
    """The block's rows as JSON lines (worker side): built column-wise by Arrow kernels when every
    column is an integer, boolean, float64 or string without control characters, else row by row."""
    table = _millis(from_ipc(block.payload))  # type: ignore[arg-type]
    fast = _vectorized(table)
    if fast is not None:
        return fast
    rows = table.to_pylist(maps_as_pydicts="lossy")
    dumps = orjson.dumps
    return b"\n".join(dumps(r, default=_default, option=_OPTIONS) for r in rows)


_CONTROL = bytes(range(0x20))
_TO_ESCAPE = _CONTROL + b'"\\'


def _has_any(data: bytes, chars: bytes) -> bool:
    return len(data.translate(None, chars)) != len(data)


_PLAIN_INTEGRAL = 1e10
"""Arrow writes a whole float below this as digits only (``123.0`` -> ``123``), at and above it with
an exponent (``1e+10``): the integral values below it get ``.0`` so they stay floats."""


def _string_data(column: Any) -> bytes:
    """The UTF-8 bytes of a string column's values (every chunk), to scan for characters to escape."""
    import pyarrow.types as t

    out = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()[:3]
        if data is None:
            continue
        bounds = memoryview(offsets).cast("q" if t.is_large_string(chunk.type) else "i")
        out.append(memoryview(data)[bounds[chunk.offset] : bounds[chunk.offset + len(chunk)]].tobytes())
    return b"".join(out)


def _vectorized(table: Any) -> bytes | None:
    """``{"a":1,"b":"x"}`` lines joined by newlines, or None when a column needs the slow path.
    Same bytes as ``orjson.dumps`` of each row (but for the spelling of floats, which parse to the
    same numbers). One Arrow join builds every line; a string column without nulls needs no pass of
    its own (its quotes are part of the text around it)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if table.num_rows == 0 or table.num_columns == 0:
        return None
    parts: list[Any] = []
    text_before = "{"
    for field, column in zip(table.schema, table.columns, strict=True):
        typ = field.type
        key = orjson.dumps(field.name).decode()
        quoted = False
        suffix = None
        if t.is_integer(typ) or t.is_boolean(typ):
            text = pc.cast(column, pa.string())
        elif t.is_float64(typ):  # shortest round-trip text; 1.0 stays a float; NaN and inf -> null
            text = pc.cast(column, pa.string())
            integral = pc.and_(pc.equal(pc.trunc(column), column), pc.less(pc.abs(column), _PLAIN_INTEGRAL))
            if pc.any(integral).as_py():  # ".0" after those, as one more piece of the join below
                suffix = pc.fill_null(pc.if_else(integral, ".0", ""), "")
            finite = pc.is_finite(column)
            if not pc.all(finite).as_py():
                text = pc.if_else(finite, text, pa.scalar(None, pa.string()))
        elif t.is_string(typ) or t.is_large_string(typ):
            data = _string_data(column)
            text = column
            if _has_any(data, _TO_ESCAPE):
                if _has_any(data, _CONTROL):
                    return None
                text = pc.replace_substring(text, "\\", "\\\\")
                text = pc.replace_substring(text, '"', '\\"')
            if column.null_count:
                text = pc.binary_join_element_wise('"', text, '"', "")
            else:
                quoted = True
        else:
            return None
        parts.append(text_before + key + (':"' if quoted else ":"))
        parts.append(pc.fill_null(text, "null") if text.null_count else text)
        if suffix is not None:
            parts.append(suffix)
        text_before = '",' if quoted else ","
    parts.append(text_before[:-1] + "}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("i")
    start, end = bounds[lines.offset], bounds[lines.offset + len(lines)]
    return memoryview(data)[start : end - 1].tobytes()  # without the last newline


def json_values(block: RawBlock) -> tuple[bytes, list[Any]]:
    """The block's rows as JSON lines and, parsed in one call, their values in order (the lines are
    built valid, one per row, none blank, so no line needs parsing on its own)."""
    lines = json_lines(block)
    return lines, orjson.loads(b"[" + lines.replace(b"\n", b",") + b"]")


def decode(spec: Any, block: RawBlock) -> Iterator[tuple[int, Any, bytes]]:
    from distmap.readers.jsonl_reader import decode_jsonl

    return decode_jsonl(json_lines(block), block.first_line, spec.source)


def split(spec: Any, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    pa = _pyarrow()
    table = from_ipc(block.payload)  # type: ignore[arg-type]
    head = RawBlock(to_ipc(pa, table.slice(0, n)), n, block.first_line)
    tail = RawBlock(to_ipc(pa, table.slice(n)), block.count - n, block.first_line + n)
    return head, tail
