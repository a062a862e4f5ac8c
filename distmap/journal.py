"""The run journal: what a map run has durably done, next to its results.

A run directory (``<Destination>/<run-id>/``, or ``<state dir>/<run-id>/`` for a run without a
ResultWriter) holds, besides the result files and the manifest:

* ``run.json`` - the run's header, rewritten atomically when it changes: the config snapshot,
  the input's identity, the status (RUNNING | SUCCEEDED | FAILED | ABORTED), dates, limits,
  final counts, the coordinator's pid and host, redrive count and date;
* ``journal.jsonl`` - append-only, one JSON line per commit. A commit line lists the chunks
  (item ranges, with reader positions) whose records were handed to the OS, together with the
  result files' state at that moment (the open files' committed sizes and the files closed
  since the last line) and the running counts. A line is written only after the result bytes
  it covers were flushed, so after a crash a chunk is either wholly in the results (up to a
  committed size) or wholly redone. A torn last line (the coordinator died while writing it) is
  ignored. While nothing commits, a heartbeat line refreshes the counts about once a second;
* ``update.json`` - limit changes asked for by ``distmap update``, read by the running
  coordinator within about a second.

Replaying the journal keeps only a watermark (every item below it is done), one reader position
at or below it, and the committed ranges above it: O(window) memory whatever the run's size.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from distmap.errors import ResultWriterFailed
from distmap.storage import describe_os_error, is_s3

HEADER = "run.json"
JOURNAL = "journal.jsonl"
UPDATE = "update.json"
HEARTBEAT_SECONDS = 1.0
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "ABORTED")


def state_dir() -> Path:
    """Where runs without a ResultWriter keep their journal: ``$DISTMAP_STATE_DIR``, else
    ``$XDG_STATE_HOME/distmap/runs``, else ``~/.local/state/distmap/runs``."""
    if os.environ.get("DISTMAP_STATE_DIR"):
        return Path(os.environ["DISTMAP_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "distmap" / "runs"


def run_dir_for(destination: str | None, run_id: str) -> Path | None:
    """The journal directory of a run: next to its local results; None for S3 results (their
    files are multipart uploads that another process cannot continue: not journaled)."""
    if destination is None:
        return state_dir() / run_id
    if is_s3(destination):
        return None
    return Path(destination).resolve() / run_id


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_header(run_dir: Path) -> dict[str, Any]:
    return orjson.loads((run_dir / HEADER).read_bytes())


def is_run_dir(path: Path) -> bool:
    return (path / HEADER).is_file()


class RunJournal:
    """Writes one run's journal (the coordinator is its only writer)."""

    def __init__(self, run_dir: Path, header: dict[str, Any]) -> None:
        self.dir = run_dir
        self.header = header
        self._fh: Any = None
        self.last_line = 0.0
        self._update_mtime: int | None = None

    def _fail(self, what: str, exc: BaseException) -> ResultWriterFailed:
        return ResultWriterFailed(
            cause=f"cannot write the run journal {self.dir / what}: {describe_os_error(exc)}"
        )

    def open(self, *, resume: bool = False) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = self.dir / JOURNAL
            if resume and path.exists():
                _cut_torn_tail(path)
            self._fh = open(path, "ab")  # noqa: SIM115
            self.write_header()
            update = self.dir / UPDATE
            self._update_mtime = update.stat().st_mtime_ns if update.exists() else None
        except OSError as exc:
            raise self._fail(HEADER, exc) from None

    def write_header(self, **changes: Any) -> None:
        self.header.update(changes)
        try:
            atomic_write(self.dir / HEADER, orjson.dumps(self.header, option=orjson.OPT_INDENT_2))
        except OSError as exc:
            raise self._fail(HEADER, exc) from None

    def append(self, line: dict[str, Any]) -> None:
        """Append one line and hand it to the OS (a killed coordinator loses nothing appended).
        Nothing is fsynced while the run goes: on ext4 an fsync of the journal also writes out
        the result files' new data, and on a busy disk that stalled runs for seconds. After a
        power loss, ``replay`` stops at the first line that claims bytes the files do not hold."""
        now = time.monotonic()
        line["at"] = round(time.time(), 3)
        try:
            self._fh.write(orjson.dumps(line) + b"\n")
            self._fh.flush()
        except OSError as exc:
            raise self._fail(JOURNAL, exc) from None
        self.last_line = now

    def read_update(self) -> dict[str, Any] | None:
        """The limits ``distmap update`` asked for since the last call, or None."""
        path = self.dir / UPDATE
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        if mtime == self._update_mtime:
            return None
        self._update_mtime = mtime
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def sync(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError, ValueError):
                self._fh.flush()
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def new_header(
    run_id: str, map_run_arn: str, execution_arn: str, job: dict[str, Any], identity: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "version": 1,
        "runId": run_id,
        "mapRunArn": map_run_arn,
        "executionArn": execution_arn,
        "status": "RUNNING",
        "startDate": None,
        "stopDate": None,
        "job": job,
        "input": identity,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "redriveCount": 0,
        "redriveDate": None,
    }


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line the coordinator did not finish writing."""
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        back = min(size, 1 << 20)
        fh.seek(size - back)
        tail = fh.read(back)
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        fh.truncate(size - back + cut + 1 if cut >= 0 else size - back)


def lines(run_dir: Path) -> Iterator[dict[str, Any]]:
    """The journal's complete lines, in order."""
    for _, line in _lines_at(run_dir):
        yield line


def _lines_at(run_dir: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(offset of the line's start, line)`` for each complete line."""
    path = run_dir / JOURNAL
    if not path.exists():
        return
    with open(path, "rb") as fh:
        at = 0
        for raw in fh:
            if not raw.endswith(b"\n"):
                return  # torn
            try:
                yield at, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return
            at += len(raw)


def last_line(run_dir: Path) -> dict[str, Any] | None:
    """The journal's last complete line, reading only its end (for ``describe``)."""
    path = run_dir / JOURNAL
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            back = min(size, 1 << 16)
            fh.seek(size - back)
            tail = fh.read(back)
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")[:-1]):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(raw)
    return None


@dataclass
class Replay:
    """What a run's journal says is done."""

    watermark: int = 0
    """Every item below this index is committed."""
    anchor: tuple[int, Any] = (0, None)
    """A reader position at or below the watermark: ``(item index, reader token)``."""
    above: dict[int, tuple[int, Any]] = field(default_factory=dict)
    """Committed ranges above the watermark: first index -> (count, reader token at its end)."""
    counts: dict[str, int] = field(default_factory=dict)
    writer: dict[str, Any] = field(default_factory=dict)
    closed: list[list[Any]] = field(default_factory=list)
    total: int | None = None
    """The input's item count, once a run found it."""
    stats: dict[str, Any] = field(default_factory=dict)

    def commit(self, first: int, count: int, start: Any, end: Any) -> None:
        if first == self.watermark and start is not None:
            self.anchor = (first, start)
        self.above[first] = (count, end)
        while self.watermark in self.above:
            n, end_token = self.above.pop(self.watermark)
            self.watermark += n
            if end_token is not None:
                self.anchor = (self.watermark, end_token)

    @property
    def done_items(self) -> int:
        return self.watermark + sum(n for n, _ in self.above.values())


def redrive_state(line: dict[str, Any]) -> Replay:
    """The state a redrive starts from: everything but the items it reruns is done."""
    state = Replay(
        counts=dict(line["c"]), writer=dict(line["w"]), closed=list(line["f"]), total=line.get("total")
    )
    for first, count in line["done"]:
        state.commit(first, count, None, None)
    return state


class _Files:
    """The sizes of a run directory's result files, to check journal lines against."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.sizes: dict[str, int] = {}

    def size(self, key: str) -> int:
        name = key.rsplit("/", 1)[-1]
        if name not in self.sizes:
            best = -1
            for candidate in (name, f".{name}.part"):
                with contextlib.suppress(OSError):
                    best = max(best, (self.dir / candidate).stat().st_size)
            self.sizes[name] = best
        return self.sizes[name]

    def holds(self, line: dict[str, Any]) -> bool:
        """Whether the files hold every byte the commit line claims."""
        for _status, key, size, _records in line.get("f") or ():
            if self.size(key) < size:
                return False
        opened = (line.get("w") or {}).get("open") or {}
        return all(self.size(key) >= size for key, size, _records in opened.values())


def replay(run_dir: Path, *, repair: bool = False) -> Replay:
    """Fold the journal into what is done. A commit line that claims result bytes the files do
    not hold (the journal reached the disk before its data, across a power loss) ends the replay
    there; with ``repair`` the journal is cut back to before it, so the resumed run continues
    from a consistent state."""
    state = Replay()
    files = _Files(run_dir)
    # a redrive replaced the FAILED / PENDING files: only the lines after it describe the files
    checked_from = max((at for at, line in _lines_at(run_dir) if line.get("t") == "redrive"), default=0)
    for at, line in _lines_at(run_dir):
        kind = line.get("t")
        if kind == "c" and at >= checked_from and not files.holds(line):
            if repair:
                with open(run_dir / JOURNAL, "r+b") as fh:
                    fh.truncate(at)
            break
        if kind == "redrive":
            state = redrive_state(line)
        if kind == "c":
            for first, count, start, end in line["r"]:
                state.commit(first, count, start, end)
            state.writer = line.get("w") or state.writer
            state.closed.extend(line.get("f") or ())
            state.counts = line.get("c") or state.counts
            state.stats = line.get("s") or state.stats
        if line.get("total") is not None:
            state.total = line["total"]
    return state
