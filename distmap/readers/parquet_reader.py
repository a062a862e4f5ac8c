"""Parquet: one item per row, read a row group at a time with pyarrow (``pip install 'distmap[parquet]'``).

The coordinator never builds Python objects from the file: it reads one row group (columnar,
in C), slices it into chunks and ships each slice as Arrow IPC bytes. A worker turns its slice
into JSON lines and runs them like JSONL (the fast path applies).

Arrow types become JSON values this way (AWS documents no mapping; this is distmap's choice,
the one that keeps every value exact and JSON-typed):

* integers, floats, booleans, strings: as they are; NaN and infinities: ``null`` (JSON has none);
* null: ``null``; lists and fixed-size lists: arrays; structs: objects; maps: objects (keys as
  text; a later duplicate key wins);
* timestamps: RFC 3339 text, ``2024-05-01T12:30:00.250000Z`` when the column has a time zone
  (converted to UTC), without ``Z`` when it has none; dates ``2024-05-01``; times ``12:30:00``;
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

        if parquet:
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


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


_OPTIONS = orjson.OPT_UTC_Z


# ---------------------------------------------------------------- the format's entry points


def open_file(uri: str, cfg: Any) -> ParquetReader:
    return ParquetReader(uri)


def json_lines(block: RawBlock) -> bytes:
    """The block's rows as JSON lines (worker side): built column-wise by Arrow kernels when every
    column is an integer, boolean, float64 or string without control characters, else row by row."""
    table = from_ipc(block.payload)  # type: ignore[arg-type]
    fast = _vectorized(table)
    if fast is not None:
        return fast
    rows = table.to_pylist(maps_as_pydicts="lossy")
    dumps = orjson.dumps
    return b"\n".join(dumps(r, default=_default, option=_OPTIONS) for r in rows)


_CONTROL = "[\\x00-\\x1f]"


def _vectorized(table: Any) -> bytes | None:
    """``{"a":1,"b":"x"}`` lines joined by newlines, or None when a column needs the slow path.
    Same bytes as ``orjson.dumps`` of each row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if table.num_rows == 0 or table.num_columns == 0:
        return None
    parts: list[Any] = []
    for i, (field, column) in enumerate(zip(table.schema, table.columns, strict=True)):
        typ = field.type
        if t.is_integer(typ) or t.is_boolean(typ):
            text = pc.cast(column, pa.string())
        elif t.is_float64(typ):  # shortest round-trip text; 1.0 stays a float; NaN and inf -> null
            text = pc.cast(column, pa.string())
            integral = pc.invert(pc.match_substring_regex(text, "[.eE]"))
            text = pc.if_else(integral, pc.binary_join_element_wise(text, ".0", ""), text)
            text = pc.if_else(pc.is_finite(column), text, pa.scalar(None, pa.string()))
        elif t.is_string(typ) or t.is_large_string(typ):
            if pc.any(pc.match_substring_regex(column, _CONTROL)).as_py():
                return None
            text = pc.replace_substring(column, "\\", "\\\\")
            text = pc.replace_substring(text, '"', '\\"')
            text = pc.binary_join_element_wise('"', text, '"', "")
        else:
            return None
        key = orjson.dumps(field.name).decode()
        parts.append(("{" if i == 0 else ",") + key + ":")
        parts.append(pc.fill_null(text, "null"))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("i")
    start, end = bounds[lines.offset], bounds[lines.offset + len(lines)]
    return memoryview(data)[start : end - 1].tobytes()  # without the last newline


def decode(spec: Any, block: RawBlock) -> Iterator[tuple[int, Any, bytes]]:
    from distmap.readers.jsonl_reader import decode_jsonl

    return decode_jsonl(json_lines(block), block.first_line, spec.source)


def split(spec: Any, block: RawBlock, n: int) -> tuple[RawBlock, RawBlock]:
    pa = _pyarrow()
    table = from_ipc(block.payload)  # type: ignore[arg-type]
    head = RawBlock(to_ipc(pa, table.slice(0, n)), n, block.first_line)
    tail = RawBlock(to_ipc(pa, table.slice(n)), block.count - n, block.first_line + n)
    return head, tail
