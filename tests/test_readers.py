"""Readers: record boundaries, item counts, AWS CSV rules, malformed input naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distmap.config.model import ItemReaderConfig
from distmap.errors import ItemReaderFailed
from distmap.readers.base import DecodeSpec, decode_block, open_reader, split_block


def read_all(path: Path, input_type: str, *, block_items: int = 3, block_bytes: int = 64, **kw) -> list:
    """Read every item via small blocks (exercising boundaries), decoding like a worker."""
    cfg = ItemReaderConfig(source=str(path), input_type=input_type, **kw)
    reader = open_reader(cfg)
    spec = DecodeSpec(input_type, str(path), tuple(reader.header), cfg.csv_delimiter)
    items = []
    while (block := reader.read_block(block_items, block_bytes)) is not None:
        decoded = list(decode_block(spec, block))
        assert len(decoded) == block.count, "coordinator count and worker decode must agree"
        items.extend(v for _, v, _ in decoded)
    reader.close()
    return items


@pytest.mark.parametrize("block_items,block_bytes", [(1, 1), (2, 10), (3, 64), (1000, 1 << 20)])
def test_jsonl_keeps_types_and_skips_blank_lines(tmp_path: Path, block_items, block_bytes):
    """JSONL keeps JSON types, skips whitespace-only lines, and reads a last line without newline."""
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a": 1}\n\n  \n[1, 2]\r\n"s"\n\t\n3.5\nnull\ntrue')
    assert read_all(p, "JSONL", block_items=block_items, block_bytes=block_bytes) == [
        {"a": 1},
        [1, 2],
        "s",
        3.5,
        None,
        True,
    ]


def test_jsonl_trailing_newline_adds_no_item(tmp_path: Path):
    """A trailing newline does not create an extra (empty) item; a BOM is ignored."""
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"a":1}\n{"a":2}\n')
    assert read_all(p, "JSONL") == [{"a": 1}, {"a": 2}]


def test_jsonl_malformed_line_names_file_and_line(tmp_path: Path):
    """A malformed JSONL line fails with States.ItemReaderFailed naming the file and the line number."""
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a":1}\n\n{"a":2}\n{"a": tru}\n')
    with pytest.raises(ItemReaderFailed) as info:
        read_all(p, "JSONL")
    assert info.value.error == "States.ItemReaderFailed"
    assert f"{p} line 4" in info.value.cause


def test_max_items_cuts_exactly(tmp_path: Path):
    """The reader never returns more items than asked for, whatever the byte budget."""
    p = tmp_path / "a.jsonl"
    p.write_text("".join(f'{{"i":{i}}}\n' for i in range(50)))
    reader = open_reader(ItemReaderConfig(source=str(p), input_type="JSONL"))
    counts = []
    while (b := reader.read_block(7, 1 << 20)) is not None:
        counts.append(b.count)
    assert counts == [7] * 7 + [1]


def test_csv_aws_rules(tmp_path: Path):
    """CSV: values are strings, literal header names, extra fields dropped, short rows padded, no extra item for trailing newline."""
    p = tmp_path / "a.csv"
    p.write_text(
        ' id ,Name,value\n1,a,1.5\n2,b\n3,c,3,extra,more\n4,"quoted, with comma","multi\nline"\n\n5,e,5'
    )
    items = read_all(p, "CSV", csv_header_location="FIRST_ROW")
    assert items == [
        {" id ": "1", "Name": "a", "value": "1.5"},
        {" id ": "2", "Name": "b", "value": ""},
        {" id ": "3", "Name": "c", "value": "3"},
        {" id ": "4", "Name": "quoted, with comma", "value": "multi\nline"},
        {" id ": "5", "Name": "e", "value": "5"},
    ]


@pytest.mark.parametrize("block_items,block_bytes", [(1, 1), (2, 16), (100, 1 << 20)])
def test_csv_quoted_newlines_across_block_boundaries(tmp_path: Path, block_items, block_bytes):
    """Records with quoted newlines and doubled quotes are never split, whatever the block size."""
    p = tmp_path / "a.csv"
    rows = [f'{i},"line one\nline ""two"" {i}"\n' for i in range(20)]
    p.write_text("id,text\n" + "".join(rows))
    items = read_all(p, "CSV", block_items=block_items, block_bytes=block_bytes)
    assert [it["id"] for it in items] == [str(i) for i in range(20)]
    assert items[3]["text"] == 'line one\nline "two" 3'


def test_csv_given_headers_and_delimiter(tmp_path: Path):
    """CSVHeaderLocation GIVEN uses CSVHeaders and treats the first row as data; CSVDelimiter is honoured."""
    p = tmp_path / "a.psv"
    p.write_text("1|x\n2|y\n")
    items = read_all(p, "CSV", csv_header_location="GIVEN", csv_headers=("n", "s"), csv_delimiter="|")
    assert items == [{"n": "1", "s": "x"}, {"n": "2", "s": "y"}]


def test_csv_duplicate_headers_fail(tmp_path: Path):
    """Duplicate header names fail with ItemReaderFailed naming them."""
    p = tmp_path / "a.csv"
    p.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(
        ItemReaderFailed,
        match=r"^States.ItemReaderFailed: CSV headers cannot contain duplicates\. \(.*a\.csv line 1: duplicate header names 'a'\)",
    ):
        read_all(p, "CSV")


def test_csv_empty_file_fails(tmp_path: Path):
    """An empty CSV file with FIRST_ROW headers is a reader failure, not a silent empty run."""
    p = tmp_path / "a.csv"
    p.write_text("")
    with pytest.raises(ItemReaderFailed, match="empty"):
        read_all(p, "CSV")


@pytest.mark.parametrize("block_items,block_bytes", [(1, 1), (2, 8), (100, 1 << 20)])
def test_json_array_streams_elements(tmp_path: Path, block_items, block_bytes):
    """A JSON array is streamed element by element, strings with brackets/commas/escapes included."""
    data = [{"a": 'x,]}"[{'}, [1, [2, 3]], 's\\"', 4, None, {"nested": {"k": [{}]}}]
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data, indent=2))
    assert read_all(p, "JSON", block_items=block_items, block_bytes=block_bytes) == data


def test_json_non_array_fails(tmp_path: Path):
    """A JSON file that is not an array fails with ItemReaderFailed."""
    p = tmp_path / "a.json"
    p.write_text('{"a": 1}')
    with pytest.raises(ItemReaderFailed, match="expected a JSON array"):
        read_all(p, "JSON")


def test_json_malformed_element_names_line(tmp_path: Path):
    """A malformed array element is reported with the line it starts on."""
    p = tmp_path / "a.json"
    p.write_text('[\n  {"a": 1},\n  {"a": tru},\n  3\n]')
    with pytest.raises(ItemReaderFailed, match=r"line 3"):
        read_all(p, "JSON")


def test_json_truncated_array_fails(tmp_path: Path):
    """A JSON array without its closing bracket fails instead of silently dropping items."""
    p = tmp_path / "a.json"
    p.write_text('[1, 2, {"a": 3}')
    with pytest.raises(ItemReaderFailed, match="missing"):
        read_all(p, "JSON")


def test_missing_source_fails_with_path(tmp_path: Path):
    """A source that does not exist fails with ItemReaderFailed naming it."""
    with pytest.raises(ItemReaderFailed, match=r"nope\.jsonl"):
        open_reader(ItemReaderConfig(source=str(tmp_path / "nope.jsonl"), input_type="JSONL"))


@pytest.mark.parametrize("input_type", ["JSONL", "CSV", "JSON"])
def test_split_block_partitions_items(tmp_path: Path, input_type):
    """Splitting a block (used to bisect a block that kills workers) keeps every item exactly once."""
    rows = [{"id": str(i), "t": f"x\n{i}" if input_type == "CSV" else i} for i in range(9)]
    if input_type == "JSONL":
        p = tmp_path / "a.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif input_type == "CSV":
        p = tmp_path / "a.csv"
        p.write_text("id,t\n" + "".join(f'{r["id"]},"{r["t"]}"\n' for r in rows))
    else:
        p = tmp_path / "a.json"
        p.write_text(json.dumps(rows))
    reader = open_reader(ItemReaderConfig(source=str(p), input_type=input_type))
    spec = DecodeSpec(input_type, str(p), tuple(reader.header))
    block = reader.read_block(100, 1 << 20)
    head, tail = split_block(spec, block, 4)
    got = [v for _, v, _ in decode_block(spec, head)] + [v for _, v, _ in decode_block(spec, tail)]
    assert (head.count, tail.count) == (4, 5)
    assert [g["id"] for g in got] == [r["id"] for r in rows]
