"""The executor contract: what a backend moves between the coordinator and the batch executor.

``RunSpec`` goes to every worker once; ``Chunk`` objects go in and ``ChunkResult`` objects come
out. Nothing here runs anything, so the coordinator, every executor and the batch executor can
depend on these types without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distmap.config.model import MapJob
from distmap.readers.base import DecodeSpec, RawBlock
from distmap.records import RecordIdentity


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a worker needs to process chunks of one map run. Picklable."""

    job: MapJob
    decode: DecodeSpec
    identity: RecordIdentity
    lanes: int
    """Items in flight inside one worker."""
    record_sep: bytes
    context: dict[str, Any] = field(default_factory=dict)
    """The context object (``$$``) minus ``Map.Item``."""
    workdir: str | None = None
    """The coordinator's working directory: item functions' modules are loaded from there."""
    mask_causes: bool = True
    """Mask credentials in the ``Cause`` of FAILED records (``distmap.storage.redact``)."""


@dataclass(slots=True)
class Chunk:
    """The unit of dispatch: consecutive items, as raw bytes."""

    seq: int
    first_index: int
    block: RawBlock
    crashes: int = 0
    reruns: int = 0
    """Times re-run after its worker was lost while it was only queued (not to blame)."""
    suspect: bool = False
    """It may hold an item that kills its worker (it was running when a worker died). A worker
    that runs several chunks at once runs a suspect chunk alone, so a death is blamed exactly."""


@dataclass(slots=True)
class ChunkResult:
    seq: int
    items: int = 0
    succeeded: bytes = b""
    failed: bytes = b""
    succeeded_records: int = 0
    failed_records: int = 0
    succeeded_ends: bytes = b""
    """End offset of each record in ``succeeded`` (``record_ends``)."""
    failed_ends: bytes = b""
    items_succeeded: int = 0
    items_failed: int = 0
    items_timed_out: int = 0
    retries: int = 0
    reader_error: str | None = None
    """The cause of ``States.ItemReaderFailed`` when the block held malformed data: the items
    before it were run as usual, the rest of the block (``unread``) was not read."""
    unread: int = 0
    busy_seconds: float = 0.0
    """Seconds from the chunk's start to its last item's end, in the worker."""


@dataclass(frozen=True, slots=True)
class ReadError:
    """Malformed data inside a block: ``unread`` of its items (the bad one on) could not be read."""

    cause: str
    unread: int


#: The most items one chunk holds (the coordinator's chunk sizer stays at or below it).
MAX_CHUNK_ITEMS = 8192


def chunks_per_worker(lanes: int, base: int = 2) -> int:
    """How many chunks a worker with ``lanes`` lanes is given at once.

    One lane runs one chunk at a time: ``base`` (one running, one ready). With lanes, chunks run
    side by side and a chunk holds at least ``min(lanes, MAX_CHUNK_ITEMS)`` items, so this keeps
    twice the lanes' worth of items in the worker plus one chunk: when a chunk finishes, the
    lanes still have a full round of work while its replacement is on its way."""
    if lanes <= 1:
        return base
    chunk = min(lanes, MAX_CHUNK_ITEMS)
    return max(base, -(-2 * lanes // chunk) + 1)
