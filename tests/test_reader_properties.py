"""Property tests: the readers never lose or invent an item, whatever the input and the chunking.

For generated CSV / JSONL / JSON-array inputs (well-formed and malformed; CRLF, CR, BOM, quotes,
escapes, empty and whitespace lines), the items a run sees are exactly those of a reference parse:
Python's ``csv`` module (``strict=True``, ``escapechar='\\'``, AWS's header and padding rules) or
``json``, for any block size and read size. When the reference fails, the reader fails too, with
``States.ItemReaderFailed``, after exactly the items before the bad record.

Examples per test: ``DISTMAP_PROPERTY_EXAMPLES`` (CI default 60; the full run uses 2000).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_settings import EXAMPLES

from distmap.config.model import ItemReaderConfig
from distmap.errors import ItemReaderFailed
from distmap.readers import base
from distmap.readers.base import DecodeSpec, decode_block, open_reader, split_block

PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BOM = b"\xef\xbb\xbf"

# ---------------------------------------------------------------- what we read


def read_ours(
    path: Path, input_type: str, block_items: int, block_bytes: int, read_size: int, **kw
) -> tuple[list[tuple[int, object]], str | None]:
    """Every (line, item) of one file, as ``read_with_sources`` reads them."""
    cfg = ItemReaderConfig(source=str(path), input_type=input_type, **kw)
    items, error = read_with_sources(cfg, block_items, block_bytes, read_size)
    return [(line, value) for _source, line, value in items], error


def read_with_sources(cfg: ItemReaderConfig, block_items: int, block_bytes: int, read_size: int):
    """(file, line, item) for every item read through small blocks, decoded like a worker, and
    the reader failure's cause if the run would fail. Each block is also split in two (crash
    bisection) and must decode to the same items, from the same file."""
    items: list[tuple[str, int, object]] = []
    with mock.patch.object(base, "READ_SIZE", read_size):
        try:
            reader = open_reader(cfg)
        except ItemReaderFailed as exc:
            return items, exc.cause
        spec = DecodeSpec(cfg.input_type, cfg.source, tuple(reader.header), cfg.csv_delimiter)
        try:
            while (block := reader.read_block(block_items, block_bytes)) is not None:
                assert 0 < block.count <= block_items
                decoded = []
                try:
                    for line, value, _raw in decode_block(spec, block):
                        decoded.append((block.source, line, value))
                except ItemReaderFailed as exc:
                    return items + decoded, exc.cause
                assert len(decoded) == block.count, "the splitter's count and the worker's parse must agree"
                if block.count > 1:
                    head, tail = split_block(spec, block, block.count // 2)
                    halves = [(p.source, ln, v) for p in (head, tail) for ln, v, _ in decode_block(spec, p)]
                    assert halves == decoded, "a split block decodes to the same items, same file"
                items.extend(decoded)
        except ItemReaderFailed as exc:
            return items, exc.cause
        finally:
            reader.close()
    return items, None


# ---------------------------------------------------------------- the references


def reference_csv(
    data: bytes, location: str, headers: tuple[str, ...], delimiter: str
) -> tuple[list[tuple[int, dict[str, str]]], bool]:
    """Python's csv module plus AWS's rules: (line, item) pairs and whether reading fails."""
    text = data.removeprefix(BOM).decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True, escapechar="\\")
    header = headers if location == "GIVEN" else None
    items: list[tuple[int, dict[str, str]]] = []
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row:
                continue
            if header is None:
                header = tuple(row)
                continue
            if len(set(header)) != len(header):
                return items, True
            width = len(header)
            padded = row[:width] + [""] * (width - len(row))
            items.append((start, dict(zip(header, padded, strict=True))))
    except csv.Error:
        return items, True
    if header is None or len(set(header)) != len(header):
        return items, True
    return items, False


def _is_blank(line: bytes) -> bool:
    return not line.strip()


def reference_jsonl(data: bytes) -> tuple[list[tuple[int, object]], bool]:
    items: list[tuple[int, object]] = []
    for n, line in enumerate(data.removeprefix(BOM).split(b"\n"), 1):
        if _is_blank(line):
            continue
        try:
            items.append((n, _strict_json(line)))
        except ValueError:
            return items, True
    return items, False


def _strict_json(text: bytes) -> object:
    def no_constants(name: str) -> object:
        raise ValueError(name)

    value = json.loads(text.decode("utf-8"), parse_constant=no_constants)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates are not text
    return value


# ---------------------------------------------------------------- generators

_text = st.text(
    alphabet=st.sampled_from(list('ab ,;|\t"\\\r\n\x85\u2028é')) | st.characters(codec="utf-8"), max_size=12
)


@st.composite
def csv_fields(draw) -> str:
    kind = draw(st.sampled_from(["plain", "plain", "quoted", "raw", "empty", "spaces", "escaped"]))
    if kind == "plain":
        return draw(st.text(alphabet="abc123 é-", max_size=6))
    if kind == "quoted":
        inner = draw(_text)
        return '"' + inner.replace('"', draw(st.sampled_from(['""', '\\"']))) + '"'
    if kind == "escaped":
        return draw(st.text(alphabet="ab", max_size=3)) + "\\" + draw(st.sampled_from(list(',"\\\nxr\r')))
    if kind == "spaces":
        return " " * draw(st.integers(1, 3))
    if kind == "empty":
        return ""
    return draw(_text)  # anything: stray quotes, bare terminators, backslashes


@st.composite
def csv_documents(draw) -> tuple[bytes, str, tuple[str, ...], str]:
    delimiter = draw(st.sampled_from([",", ",", "|", ";", "\t", " "]))
    terminators = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=1, max_size=3))
    rows = draw(st.lists(st.lists(csv_fields(), min_size=0, max_size=4), max_size=12))
    parts = []
    for i, row in enumerate(rows):
        parts.append(delimiter.join(row) + terminators[i % len(terminators)])
    text = "".join(parts)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # last record without a terminator
    location = draw(st.sampled_from(["FIRST_ROW", "FIRST_ROW", "GIVEN"]))
    headers = tuple(draw(st.lists(st.text(alphabet="hkx", min_size=1, max_size=2), min_size=1, max_size=3)))
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = BOM + data
    return data, location, headers, delimiter


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
_broken = st.sampled_from(
    ['{"a": tru}', "{", '"unterminated', "[1,]", "nul", "1 2", '{"a":1}}', "NaN", "\x0b1"]
)


@st.composite
def jsonl_documents(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["value"] * 6 + ["blank", "spaces", "broken"]))
        if kind == "value":
            lines.append(json.dumps(draw(_json_values), indent=None))
        elif kind == "blank":
            lines.append("")
        elif kind == "spaces":
            lines.append(draw(st.sampled_from([" ", "\t", " \r", "\r", "\x0c"])))
        else:
            lines.append(draw(_broken))
    crlf = draw(st.booleans())
    text = ("\r\n" if crlf else "\n").join(lines)
    if lines and draw(st.booleans()):
        text += "\n"
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = BOM + data
    return data


chunking = st.tuples(st.integers(1, 7), st.integers(1, 80), st.sampled_from([1, 2, 3, 7, 64, 1 << 20]))


# ---------------------------------------------------------------- properties


@PROPS
@given(doc=csv_documents(), sizes=chunking)
def test_csv_reader_agrees_with_python_csv(tmp_path: Path, doc, sizes):
    """CSV: for any input and any block / read size, the items (and the lines they start on) are
    exactly the reference's; when the reference fails, the run fails after the same items."""
    data, location, headers, delimiter = doc
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    kw = {"csv_header_location": location, "csv_delimiter": delimiter}
    if location == "GIVEN":
        kw["csv_headers"] = headers
    got, error = read_ours(path, "CSV", *sizes, **kw)
    want, want_error = reference_csv(data, location, headers, delimiter)
    assert got == want
    assert (error is not None) == want_error, error


@PROPS
@given(data=jsonl_documents(), sizes=chunking)
def test_jsonl_reader_agrees_with_json(tmp_path: Path, data, sizes):
    """JSONL: every non-blank line is one item, in order, with its line number; the first
    malformed line fails the run after exactly the items before it."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    got, error = read_ours(path, "JSONL", *sizes)
    want, want_error = reference_jsonl(data)
    assert [v for _, v in got] == [v for _, v in want]
    assert [n for n, _ in got] == [n for n, _ in want]
    assert (error is not None) == want_error, error


@st.composite
def json_array_documents(draw) -> tuple[bytes, bool]:
    values = draw(st.lists(_json_values, max_size=10))
    indent = draw(st.sampled_from([None, 1, "\t"]))
    text = json.dumps(values, indent=indent)
    mutation = draw(st.sampled_from(["none"] * 4 + ["drop_char", "insert", "truncate", "object"]))
    if mutation == "drop_char" and len(text) > 2:
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + text[i + 1 :]
    elif mutation == "insert":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.sampled_from([",", "]", "[", '"', "x", "{", "}"])) + text[i:]
    elif mutation == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif mutation == "object":
        text = json.dumps({"items": values})
    data = text.encode("utf-8")
    try:
        parsed = _strict_json(data)
        valid = isinstance(parsed, list) and all(_finite(v) for v in parsed)
    except ValueError:
        valid = False
    return data, valid


def _finite(v: object) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    return True


@PROPS
@given(doc=json_array_documents(), sizes=chunking)
def test_json_array_reader_agrees_with_json(tmp_path: Path, doc, sizes):
    """JSON array: a valid array yields exactly its elements, in order; anything else fails the
    run with States.ItemReaderFailed and never yields an item that is not an element."""
    data, valid = doc
    path = tmp_path / "in.json"
    path.write_bytes(data)
    got, error = read_ours(path, "JSON", *sizes)
    if valid:
        assert error is None
        assert [v for _, v in got] == json.loads(data)
    else:
        assert error is not None


# ---------------------------------------------------------------- several files, compressed, Parquet

_COMPRESS = {
    "": lambda b: b,
    ".gz": lambda b: __import__("gzip").compress(b),
    ".bz2": lambda b: __import__("bz2").compress(b),
    ".zst": lambda b: __import__("zstandard").ZstdCompressor().compress(b),
}


@PROPS
@given(
    docs=st.lists(jsonl_documents(), max_size=4),
    compressions=st.lists(st.sampled_from(sorted(_COMPRESS)), min_size=4, max_size=4),
    sizes=chunking,
)
def test_directory_of_compressed_jsonl_reads_like_its_files_one_after_another(
    tmp_path: Path, docs, compressions, sizes
):
    """A directory of JSONL files (plain, .gz, .bz2, .zst) is the items of each file in key order,
    each with its own file's name and line number; the first malformed line fails the read after
    exactly the items before it (earlier files included)."""
    root = Path(tempfile.mkdtemp(dir=tmp_path))  # one directory per example
    want: list[tuple[str, int, object]] = []
    want_error = False
    for j, data in enumerate(docs):
        path = root / f"{j:02d}.jsonl{compressions[j]}"
        path.write_bytes(_COMPRESS[compressions[j]](data))
        if not want_error:
            ref, bad = reference_jsonl(data)
            want.extend((str(path), line, v) for line, v in ref)
            want_error = bad
    cfg = ItemReaderConfig(source=str(root), input_type="JSONL")
    got, error = read_with_sources(cfg, *sizes)
    assert [(s, n) for s, n, _ in got] == [(s, n) for s, n, _ in want]
    assert [v for _, _, v in got] == [v for _, _, v in want]
    assert (error is not None) == want_error, error


@PROPS
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "n": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
                "s": st.one_of(st.none(), st.text(max_size=20)),
            }
        ),
        max_size=60,
    ),
    group=st.integers(1, 20),
    sizes=chunking,
)
def test_parquet_reader_yields_every_row_once_in_order(tmp_path: Path, rows, group, sizes):
    """Parquet: every row, in file order, numbered from 1, whatever the row groups and block sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "n": pa.array([r["n"] for r in rows], pa.int64()),
            "s": pa.array([r["s"] for r in rows], pa.string()),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=group)
    got, error = read_ours(tmp_path / "t.parquet", "PARQUET", *sizes)
    assert error is None
    assert [v for _, v in got] == rows
    assert [n for n, _ in got] == list(range(1, len(rows) + 1))


@PROPS
@given(names=st.lists(st.text("ab-/._0", min_size=1, max_size=6), max_size=12))
def test_directory_listing_is_in_s3_key_order(tmp_path: Path, names):
    """A local directory lists every file once, recursively, in S3's order of whole keys (UTF-8 bytes)."""
    from distmap.readers.sources import list_objects

    root = Path(tempfile.mkdtemp(dir=tmp_path))  # one directory per example
    made: set[str] = set()
    for name in names:
        parts = [p for p in name.split("/") if p not in ("", ".", "..")]
        if not parts:
            continue
        key = "/".join(parts)
        path = root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                continue
            path.write_bytes(b"")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue  # a file where a directory is wanted (or the reverse): not this key
        made.add(key)
    assert [o.key for o in list_objects(str(root))] == sorted(made, key=lambda k: k.encode())



def test_parquet_whole_floats_stay_floats_around_arrows_exponent_threshold():
    """Whole floats on both sides of where Arrow's text switches to an exponent (1e10) come out as
    the same floats, never ints and never invalid JSON."""
    import orjson
    import pyarrow as pa

    from distmap.readers import parquet_reader as pr
    from distmap.readers.base import RawBlock

    values = [0.0, -0.0, 123.0, 999999999.0, 9999999999.0, 1e10, -1e10, 1e15, 2.0**53, 1e300, 0.5, -2.5e-7]
    table = pa.table({"f": pa.array(values, pa.float64())})
    got = [orjson.loads(line)["f"] for line in pr.json_lines(RawBlock(pr.to_ipc(pa, table), len(values), 1)).split(b"\n")]
    assert got == values
    assert all(type(g) is float for g in got)

@PROPS
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "f": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "s": st.one_of(st.none(), st.text(max_size=12)),
                "b": st.one_of(st.none(), st.booleans()),
                "i": st.one_of(st.none(), st.integers(0, 2**64 - 1)),
                "t": st.one_of(st.none(), st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))),
            }
        ),
        min_size=1,
        max_size=40,
    )
)
def test_parquet_json_lines_built_by_arrow_equal_orjson_of_each_row(rows):
    """The column-wise JSON lines (floats, strings with quotes / backslashes / control characters,
    booleans, unsigned ints, microsecond timestamps, nulls) parse to exactly what orjson makes of
    each row: NaN and infinities null, 1.0 a float, a timestamp whole milliseconds since the epoch
    (rounded down, before 1970 too)."""
    import orjson
    import pyarrow as pa

    from distmap.readers import parquet_reader as pr
    from distmap.readers.base import RawBlock

    table = pa.table(
        {
            "f": pa.array([r["f"] for r in rows], pa.float64()),
            "s": pa.array([r["s"] for r in rows], pa.string()),
            "b": pa.array([r["b"] for r in rows], pa.bool_()),
            "i": pa.array([r["i"] for r in rows], pa.uint64()),
            "t": pa.array([r["t"] for r in rows], pa.timestamp("us")),
        }
    )
    lines = pr.json_lines(RawBlock(pr.to_ipc(pa, table), len(rows), 1)).split(b"\n")
    got = [orjson.loads(line) for line in lines]
    epoch, ms = dt.datetime(1970, 1, 1), dt.timedelta(milliseconds=1)
    want = [
        orjson.loads(orjson.dumps({**r, "t": None if r["t"] is None else (r["t"] - epoch) // ms}))
        for r in table.to_pylist()
    ]
    assert got == want
    assert [type(g["f"]) for g in got] == [type(w["f"]) for w in want]


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=80),
    final_newline=st.booleans(),
    n=st.integers(min_value=1, max_value=90),
)
def test_jsonl_nth_end_matches_walking_the_lines(lengths, final_newline, n):
    """The JSONL splitter's cut after the n-th line (a guess from the average line length, then
    a few steps) is where walking the lines one by one puts it, for any mix of line lengths; with
    fewer than n lines it is the end of the block."""
    from distmap.readers.jsonl_reader import jsonl_nth_end

    block = b"\n".join(b"x" * k for k in lengths) + (b"\n" if final_newline else b"")
    pos = -1
    for _ in range(n):
        pos = block.find(b"\n", pos + 1)
        if pos == -1:
            pos = len(block) - 1
            break
    assert jsonl_nth_end(block, n) == pos + 1
