"""Local workers read big blocks of a plain local input file themselves (``RawBlock.span``):
the coordinator sends the offset, not the bytes. The results are the same, every item once, and
a worker that cannot read its block again reports a reader error instead of running other bytes."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from conftest import ids, load_results

import distmap
from distmap.config import parse_job
from distmap.config.model import ItemReaderConfig
from distmap.contract import Chunk, RunSpec
from distmap.coordinator import map_run_identity
from distmap.executors.local import SPAN_MIN_BYTES, SpanReader, pack_chunk, unpack_chunk
from distmap.processor import BatchProcessor
from distmap.readers.base import DecodeSpec, RawBlock, open_reader


def _big_lines(path: Path, n: int, pad: int = 2000) -> None:
    path.write_text("".join(json.dumps({"id": i, "pad": "x" * pad}) + "\n" for i in range(n)))


def test_plain_local_jsonl_blocks_carry_their_offset_and_compressed_ones_do_not(tmp_path):
    """A block of a plain local JSONL file knows where it starts in the file (the bytes there are
    the block's); a block of a gzip file has no such offset (its bytes are not the file's)."""
    src = tmp_path / "in.jsonl"
    _big_lines(src, 50, pad=100)
    reader = open_reader(ItemReaderConfig(source=str(src), input_type="JSONL"))
    data = src.read_bytes()
    spans = []
    while (block := reader.read_block(7, 1 << 20)) is not None:
        assert data[block.span : block.span + len(block.payload)] == block.payload
        spans.append(block.span)
    assert spans[0] == 0 and len(spans) == 8
    gz = tmp_path / "in.jsonl.gz"
    gz.write_bytes(gzip.compress(data))
    block = open_reader(ItemReaderConfig(source=str(gz), input_type="JSONL")).read_block(7, 1 << 20)
    assert block is not None and block.span is None


def test_a_local_run_over_big_blocks_runs_every_item_once(tmp_path):
    """A local run whose chunks are read by the workers from the file gives every item exactly
    once, with its own input."""
    src = tmp_path / "in.jsonl"
    _big_lines(src, 3000)
    res = distmap.run(
        {"ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
         "ItemProcessor": {"Function": "itemfns:echo"}, "ResultWriter": {"Destination": str(tmp_path / "out")}},
        backend="local", handle_signals=False,
    )  # fmt: skip
    assert res.status == "SUCCEEDED"
    recs = load_results(res)["SUCCEEDED"]
    assert ids(recs) == list(range(3000))
    assert all(json.loads(r["Output"])["pad"] == "x" * 2000 for r in recs[:50])


def test_a_block_the_worker_cannot_read_again_is_a_reader_error_naming_the_file(tmp_path):
    """When the file shrank after it was split, the worker does not run other bytes: the chunk's
    items are reported unread, with a reader error that names the file and says it changed."""
    src = tmp_path / "in.jsonl"
    _big_lines(src, 200)
    reader = open_reader(ItemReaderConfig(source=str(src), input_type="JSONL"))
    block = reader.read_block(100, 1 << 22)
    assert block is not None and block.span == 0 and len(block.payload) >= SPAN_MIN_BYTES
    header, blobs = pack_chunk(Chunk(0, 0, block), tag=7)
    assert blobs == ()  # the bytes are not sent
    src.write_text("")  # the file changes before the worker reads its block
    chunk = unpack_chunk(header, [], SpanReader(str(src)))
    assert chunk.block.unreadable is not None and "changed while the run read it" in chunk.block.unreadable
    job = parse_job({"ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
                     "ItemProcessor": {"Function": "itemfns:echo"}})  # fmt: skip
    _, ident = map_run_identity(job, "span-run")
    spec = RunSpec(job=job, decode=DecodeSpec("JSONL", str(src)), identity=ident, lanes=1, record_sep=b"\n")
    res = BatchProcessor(spec).process(chunk)
    assert res.items_succeeded == 0 and res.unread == 100
    assert str(src) in res.reader_error


def test_small_blocks_travel_as_bytes():
    """A block under the span size is sent as bytes even when it has an offset."""
    block = RawBlock(b'{"id": 1}\n', 1, 1, span=0)
    header, blobs = pack_chunk(Chunk(0, 0, block), tag=1)
    assert blobs == (block.payload,)
    assert unpack_chunk(header, list(blobs), SpanReader("/nonexistent")).block.payload == block.payload


def test_a_worker_keeps_one_input_file_open_at_a_time(tmp_path):
    """Reading blocks of many files one after another keeps only the last file open, so a
    directory of thousands of files cannot use up a worker's file descriptors."""
    files = []
    for k in range(3):
        f = tmp_path / f"part-{k}.jsonl"
        f.write_bytes(b"%d\n" % k * 10)
        files.append(f)
    reader = SpanReader(str(files[0]))
    before = len(os.listdir("/proc/self/fd"))
    for f in files * 2:
        assert reader.read(str(f), 0, 4) == f.read_bytes()[:4]
        assert len(os.listdir("/proc/self/fd")) == before + 1
    reader.close()
    assert len(os.listdir("/proc/self/fd")) == before
