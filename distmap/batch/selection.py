"""Item selection and batching: a chunk's raw bytes -> items -> ItemSelector -> executions.

Malformed data ends a chunk where it is: the items before it become executions, and a
``ReadError`` says how many of the chunk's items were not read.
"""

from __future__ import annotations

from typing import Any

import orjson

from distmap.batch.executions import Execution, Failed
from distmap.contract import Chunk, ReadError, RunSpec
from distmap.dataflow.selectors import compile_batch_input, compile_selector
from distmap.errors import ItemReaderFailed, StatesError
from distmap.readers.base import block_spec, decode_block

_dumps = orjson.dumps


class ItemSelection:
    """Builds the executions of a chunk for one map run."""

    def __init__(self, spec: RunSpec) -> None:
        job = spec.job
        self.spec = spec
        self.selector = (
            compile_selector(job.item_selector, job.query_language, where="ItemSelector", variables=job.variables)
            if job.item_selector is not None
            else None
        )
        self.batcher = job.item_batcher
        self.batch_input = compile_batch_input(
            job.item_batcher.batch_input if job.item_batcher else None, job.query_language
        )

    def executions(self, chunk: Chunk) -> tuple[list[Execution], ReadError | None]:
        """Decode a chunk into executions. Malformed data ends the list: the items before it
        are returned with a ``ReadError`` saying how many of the chunk's items were not read."""
        spec = self.spec
        selector = self.selector
        state_input = spec.job.input
        base_ctx = spec.context
        out: list[Execution] = []
        index = chunk.first_index
        error: ReadError | None = None
        try:
            for _line, value, raw in decode_block(spec.decode, chunk.block):
                if selector is not None:
                    ctx = dict(base_ctx)
                    ctx["Map"] = {"Item": {"Index": index, "Value": value}}
                    try:
                        child = selector(state_input, ctx)
                    except StatesError as exc:
                        out.append(Execution(index, 1, value, outcome=Failed(exc.error, exc.cause)))
                        index += 1
                        continue
                    out.append(Execution(index, 1, child))
                else:
                    out.append(Execution(index, 1, value, raw.strip() if raw is not None else None))
                index += 1
        except ItemReaderFailed as exc:
            error = ReadError(exc.cause, chunk.block.count - len(out))
        if error is None and len(out) != chunk.block.count:  # the splitter and the parser disagree
            error = count_mismatch(block_spec(spec.decode, chunk.block).source, chunk, len(out))
            del out[chunk.block.count :]
        if self.batcher is None:
            return out, error
        return self._batch(out), error

    def _batch(self, singles: list[Execution]) -> list[Execution]:
        b = self.batcher
        assert b is not None
        max_n = b.max_items_per_batch or len(singles) or 1
        max_bytes = b.max_input_bytes_per_batch
        failed: Failed | None = None
        try:
            batch_input = self.batch_input(self.spec.job.input, self.spec.context)
        except StatesError as exc:  # a JSONata BatchInput that cannot be evaluated fails its batches
            batch_input, failed = None, Failed(exc.error, exc.cause)
        overhead = len(
            _dumps({"Items": [], "BatchInput": batch_input} if batch_input is not None else {"Items": []})
        )
        batches: list[Execution] = []
        cur: list[Any] = []
        cur_first = 0
        cur_bytes = overhead

        def flush() -> None:
            nonlocal cur, cur_bytes
            if cur:
                payload: dict[str, Any] = {"Items": cur}
                if batch_input is not None:
                    payload["BatchInput"] = batch_input
                batches.append(Execution(cur_first, len(cur), payload, outcome=failed))
            cur = []
            cur_bytes = overhead

        for ex in singles:
            if ex.outcome is not None:  # ItemSelector failed for this item
                flush()
                batches.append(ex)
                continue
            size = len(_dumps(ex.input)) + 1 if max_bytes else 0
            if cur and (len(cur) >= max_n or (max_bytes and cur_bytes + size > max_bytes)):
                flush()
            if not cur:
                cur_first = ex.index
            cur.append(ex.input)
            cur_bytes += size
        flush()
        return batches


def count_mismatch(source: str, chunk: Chunk, decoded: int) -> ReadError:
    """The splitter counted the chunk's records and the parser found another number: a bug, reported
    as a reader failure (the chunk's items past those decoded are not read)."""
    count = chunk.block.count
    return ReadError(
        f"{source} lines {chunk.block.first_line}+: internal error: {decoded} records decoded where "
        f"{count} were counted",
        max(0, count - decoded),
    )


def bad_line_cause(source: str, chunk: Chunk, good: int, exc: Exception) -> str:
    """The cause for the malformed line that follows the chunk's first ``good`` items."""
    block = chunk.block
    line_no = block.first_line
    seen = 0
    for line in block.payload.split(b"\n"):  # type: ignore[union-attr]
        if line and not line.isspace():
            if seen == good:
                break
            seen += 1
        line_no += 1
    return f"{source} line {line_no}: invalid JSON: {exc}"
