"""Result files and the manifest, local or on S3, in the layout of AWS Distributed Map::

    <destination>/<run-id>/SUCCEEDED_0.json, SUCCEEDED_1.json, ...
    <destination>/<run-id>/FAILED_0.json ...
    <destination>/<run-id>/PENDING_0.json ...
    <destination>/<run-id>/manifest.json      (written last, atomically)

Lifecycle (like a Ray datasink): ``open`` checks the destination before any item runs (and
refuses a run id that is already there), ``write`` streams encoded records into the current file
of a status (rotating once a file reaches ``MaxFileBytes``), ``commit`` closes the files and
writes the manifest, ``abort`` writes none.

A result file only ever appears complete under its name: a local file is written under a hidden
``.<name>.part`` name and renamed when it is closed, an S3 file is a multipart upload that is
completed when it is closed. ``abort`` (and a failed write) removes unfinished files: the part
file is deleted, the multipart upload aborted. Files already closed stay, and
``results_written`` counts exactly the records in them.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

from distmap.config.model import ResultWriterConfig
from distmap.errors import ResultWriterFailed
from distmap.storage import describe_os_error, is_s3, redact, s3_client, split_s3

STATUSES = ("SUCCEEDED", "FAILED", "PENDING")

log = structlog.get_logger("distmap")


class _LocalFile:
    """A result file written under a hidden part name and renamed to its own name on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(f".{path.name}.part")
        self.fh: IO[bytes] = open(self.part, "wb", buffering=1 << 20)  # noqa: SIM115

    def write(self, data: Any) -> None:
        self.fh.write(data)

    def close(self) -> None:
        self.fh.close()  # flushes: a full disk shows up here at the latest
        os.replace(self.part, self.path)

    def discard(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.fh.close()
        self.part.unlink(missing_ok=True)

    def keep(self) -> None:
        """Close without renaming: the part file stays for a resume (which cuts it back to the
        bytes its journal committed)."""
        with contextlib.suppress(OSError, ValueError):
            self.fh.close()

    def flush(self) -> None:
        self.fh.flush()

    @classmethod
    def reopen(cls, path: Path, size: int) -> _LocalFile:
        """Continue a result file at ``size``, the bytes a run journal committed: its part file
        (or the file itself, closed after the last commit) is cut back to that size."""
        part = path.with_name(f".{path.name}.part")
        if not part.exists() and path.exists():
            os.replace(path, part)
        have = part.stat().st_size if part.exists() else -1
        if have < size:
            raise ResultWriterFailed(
                cause=f"cannot resume {path}: it holds {max(have, 0)} bytes, the run journal committed {size}"
            )
        self = cls.__new__(cls)
        self.path, self.part = path, part
        fh = open(part, "r+b", buffering=1 << 20)  # noqa: SIM115
        fh.truncate(size)
        fh.seek(size)
        self.fh = fh
        return self


class _S3File:
    """A result file written as an S3 multipart upload (smart_open), completed on close."""

    def __init__(self, bucket: str, key: str) -> None:
        import smart_open

        self.bucket, self.key = bucket, key
        self.fh: Any = smart_open.open(
            f"s3://{bucket}/{key}", "wb", compression="disable", transport_params={"client": s3_client()}
        )

    def write(self, data: Any) -> None:
        self.fh.write(data)

    def close(self) -> None:
        self.fh.close()

    def keep(self) -> None:
        self.discard()  # an unfinished upload cannot be continued by another process

    def flush(self) -> None:
        pass  # bytes reach S3 a part at a time

    def discard(self) -> None:
        """Abort the multipart upload, so no unfinished upload stays behind (raises if S3 refuses)."""
        self.upload_id = getattr(self.fh, "_upload_id", None)
        try:
            self.fh.terminate()
        finally:
            # io.IOBase.__del__ calls close(), which would complete the upload with the partial data
            # once S3 answers again: a truncated file that looks valid. Disarm it whatever happened.
            with contextlib.suppress(AttributeError):
                self.fh._upload_id = None


class _LocalStore:
    def __init__(self, root: str, run_id: str) -> None:
        self.root = Path(root).resolve()
        self.bucket = str(self.root)
        self.run_prefix = run_id
        self._created: list[Path] = []

    def key(self, name: str) -> str:
        return f"{self.run_prefix}/{name}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root != path and self.root not in path.parents:
            raise ResultWriterFailed(cause=f"refusing to write outside the destination: {key}")
        return path

    def existing(self) -> list[str]:
        """A few of the files already under this run's prefix."""
        run_dir = self._path(self.run_prefix)
        if not run_dir.is_dir():
            return []
        return sorted(p.name for p in run_dir.iterdir())[:3]

    def check(self) -> None:
        run_dir = self._path(self.run_prefix)
        missing = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # deepest first
        run_dir.mkdir(parents=True, exist_ok=True)
        self._created = missing  # removed again if the run writes nothing
        if not os.access(run_dir, os.W_OK):
            raise PermissionError(13, "Permission denied", str(run_dir))

    def open_write(self, key: str) -> _LocalFile:
        return _LocalFile(self._path(key))

    def reopen(self, key: str, size: int) -> _LocalFile:
        return _LocalFile.reopen(self._path(key), size)

    def remove(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        path.with_name(f".{path.name}.part").unlink(missing_ok=True)

    def names(self) -> list[str]:
        """Every file in this run's directory (hidden part files included)."""
        run_dir = self._path(self.run_prefix)
        return sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []

    def put_atomic(self, key: str, data: bytes) -> None:
        path = self._path(key)
        # mode 0666 minus the umask, like the result files (mkstemp would make it 0600)
        tmp = str(path.parent / f".tmp-{secrets.token_hex(8)}.json")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove_empty_run(self) -> None:
        for path in self._created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty

    def uri(self, key: str) -> str:
        return str(self.root / key)


class _S3Store:
    def __init__(self, dest: str, run_id: str) -> None:
        self.bucket, prefix = split_s3(dest)
        prefix = prefix.strip("/")
        self.run_prefix = f"{prefix}/{run_id}" if prefix else run_id

    def key(self, name: str) -> str:
        return f"{self.run_prefix}/{name}"

    def existing(self) -> list[str]:
        page = s3_client().list_objects_v2(Bucket=self.bucket, Prefix=f"{self.run_prefix}/", MaxKeys=3)
        return [o["Key"].rsplit("/", 1)[-1] for o in page.get("Contents", [])]

    def check(self) -> None:
        s3_client().head_bucket(Bucket=self.bucket)

    def open_write(self, key: str) -> _S3File:
        return _S3File(self.bucket, key)

    def reopen(self, key: str, size: int) -> _S3File:
        raise ResultWriterFailed(
            cause=f"cannot continue s3://{self.bucket}/{key}: S3 result files are not journaled"
        )

    def remove(self, key: str) -> None:
        s3_client().delete_object(Bucket=self.bucket, Key=key)

    def names(self) -> list[str]:
        names: list[str] = []
        for page in (
            s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=f"{self.run_prefix}/")
        ):
            names.extend(o["Key"][len(self.run_prefix) + 1 :] for o in page.get("Contents", []))
        return names

    def put_atomic(self, key: str, data: bytes) -> None:
        s3_client().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")

    def remove_empty_run(self) -> None:
        pass  # S3 has no directories

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class _OpenFile:
    __slots__ = ("fh", "key", "records", "size")

    def __init__(self, fh: Any, key: str) -> None:
        self.fh = fh
        self.key = key
        self.size = 0
        self.records = 0


class ResultWriter:
    """Streams records of one map run into result files and commits the manifest."""

    def __init__(self, cfg: ResultWriterConfig, run_id: str, map_run_arn: str) -> None:
        self.cfg = cfg
        self.map_run_arn = map_run_arn
        self.store: Any = (
            _S3Store(cfg.destination, run_id)
            if is_s3(cfg.destination)
            else _LocalStore(cfg.destination, run_id)
        )
        self.jsonl = cfg.output_type == "JSONL"
        self.ext = "jsonl" if self.jsonl else "json"
        self._open: dict[str, _OpenFile] = {}
        self._done: dict[str, list[dict[str, Any]]] = {s: [] for s in STATUSES}
        self._next: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self._stored = 0  # SUCCEEDED / FAILED records in closed (complete) files
        self._key: str | None = None  # the file being written, for error messages
        self.run_id = run_id
        self.log = log.bind(map_run_id=run_id)
        self.closed = False
        self.keep_parts = False
        """A run journal covers the open files: on abort or failure their part files stay."""
        self.closed_files: list[list[Any]] = []
        """``[status, key, size, records]`` of each file closed since the journal last took them."""

    @property
    def results_written(self) -> int:
        """SUCCEEDED and FAILED records in complete files, plus those in files still open (until
        ``abort`` removes them)."""
        return self._stored + sum(f.records for s, f in self._open.items() if s != "PENDING")

    @property
    def record_sep(self) -> bytes:
        return b"\n" if self.jsonl else b","

    @property
    def manifest_key(self) -> str:
        return self.store.key("manifest.json")

    @property
    def manifest_uri(self) -> str:
        return self.store.uri(self.manifest_key)

    def _fail(self, what: str, exc: BaseException) -> ResultWriterFailed:
        return ResultWriterFailed(cause=redact(f"{what}: {describe_os_error(exc)}"))

    def open(self, *, resume: bool = False) -> None:
        """Check that the destination is writable and holds no run of this id (unless ``resume``),
        before any item runs."""
        run_uri = self.store.uri(self.store.run_prefix)
        try:
            existing = [] if resume else self.store.existing()
        except Exception as exc:
            raise self._fail(f"cannot write to {self.cfg.destination}", exc) from None
        if existing:
            raise ResultWriterFailed(
                cause=redact(
                    f"{run_uri} already holds map run {self.run_id!r} ({', '.join(existing)}"
                    f"{', ...' if len(existing) >= 3 else ''}); refusing to mix two runs' results: "
                    "choose another --run-id, or remove it first"
                )
            )
        try:
            self.store.check()
        except ResultWriterFailed:
            raise
        except Exception as exc:
            raise self._fail(f"cannot write to {self.cfg.destination}", exc) from None

    def write(self, status: str, data: bytes, records: int, bounds: bytes = b"") -> None:
        """Append ``records`` encoded records (joined by ``record_sep``) to the status' files.

        ``bounds`` (``batch.encoding.record_ends``) lets a write be split over files so that no file
        grows past MaxFileBytes; without it the records of one write stay together. A single
        record larger than MaxFileBytes gets a file of its own.
        """
        if not records:
            return
        marks = memoryview(bounds).cast("I") if bounds else None
        if marks is not None and len(marks) != records:
            marks = None
        limit = self.cfg.max_file_bytes
        sep = len(self.record_sep)
        done, offset = 0, 0
        try:
            while done < records:
                cur = self._open.get(status)
                framing = 1 + (1 if cur is not None and cur.records and not self.jsonl else 0)
                size = cur.size if cur is not None else 1  # a new JSON file starts with "["
                if size + (len(data) - offset) + framing <= limit:
                    self._append(status, memoryview(data)[offset:], records - done)
                    break
                if marks is None:
                    if cur is not None and cur.records:
                        self._close(status)
                    self._append(status, memoryview(data)[offset:], records - done)
                    break
                budget = limit - size - framing
                k = bisect.bisect_right(marks, offset + budget + sep, lo=done)
                if k == done:  # not even the next record fits
                    if cur is not None and cur.records:
                        self._close(status)
                        continue
                    k = done + 1
                self._append(status, memoryview(data)[offset : marks[k - 1] - sep], k - done)
                self._close(status)
                done, offset = k, marks[k - 1]
        except ResultWriterFailed:
            raise
        except Exception as exc:
            raise self._failed_write(status, exc) from None

    def _failed_write(self, status: str, exc: BaseException) -> ResultWriterFailed:
        """Drop the file that failed (it is incomplete) and name it in the error."""
        key = self._key or self.store.key(f"{status}_{self._next[status]}.{self.ext}")
        cur = self._open.pop(status, None)
        if cur is not None:
            self._discard(cur)
        return self._fail(f"cannot write {self.store.uri(key)}", exc)

    def _discard(self, cur: _OpenFile) -> None:
        if self.keep_parts and cur.key.rsplit("/", 1)[-1].split("_", 1)[0] != "PENDING":
            cur.fh.keep()
            return
        try:
            cur.fh.discard()
        except Exception as exc:
            self.log.warning(
                "result_writer.upload_not_aborted",
                uri=self.store.uri(cur.key),
                upload_id=getattr(cur.fh, "upload_id", None),
                cause=describe_os_error(exc),
                hint="abort it with `aws s3api abort-multipart-upload`, or let a lifecycle rule do it",
            )

    def _append(self, status: str, data: memoryview, records: int) -> None:
        cur = self._open.get(status)
        if cur is None:
            key = self.store.key(f"{status}_{self._next[status]}.{self.ext}")
            self._key = key
            self._next[status] += 1
            cur = _OpenFile(self.store.open_write(key), key)
            self._open[status] = cur
            if not self.jsonl:
                cur.fh.write(b"[")
                cur.size += 1
        self._key = cur.key
        fh = cur.fh
        if cur.records and not self.jsonl:
            fh.write(b",")
            cur.size += 1
        fh.write(data)
        cur.size += len(data)
        if self.jsonl:
            fh.write(b"\n")
            cur.size += 1
        cur.records += records

    def _close(self, status: str) -> None:
        cur = self._open[status]
        self._key = cur.key
        if not self.jsonl:
            cur.fh.write(b"]")
            cur.size += 1
        cur.fh.close()  # raises when the data cannot be stored: the file stays open, to be discarded
        del self._open[status]
        self._done[status].append({"Key": cur.key, "Size": cur.size})
        if status != "PENDING":
            self._stored += cur.records
            self.closed_files.append([status, cur.key, cur.size, cur.records])

    # ------------------------------------------------------------------ run journal
    def flush(self) -> None:
        """Hand the open files' bytes to the OS (a coordinator killed from now on loses none)."""
        for status, cur in list(self._open.items()):
            try:
                cur.fh.flush()
            except Exception as exc:
                raise self._failed_write(status, exc) from None

    def state(self) -> dict[str, Any]:
        """The open SUCCEEDED / FAILED files as a run journal records them."""
        return {
            "next": {s: self._next[s] for s in ("SUCCEEDED", "FAILED")},
            "open": {s: [f.key, f.size, f.records] for s, f in self._open.items() if s != "PENDING"},
        }

    def restore(self, state: dict[str, Any], closed: list[list[Any]], *, pending_from: int = 0) -> None:
        """Continue from a journal's ``state`` and the files it saw closed: open files are cut back
        to their committed size, files written after the last commit and every PENDING file (the
        unfinished items are read again) are removed. ``pending_from`` numbers new PENDING files."""
        self.store.remove(self.manifest_key)  # first: a manifest never lists a file that is gone
        keep: set[str] = set()
        for status, key, size, records in closed:
            self._done[status].append({"Key": key, "Size": size})
            self._stored += records
            keep.add(key.rsplit("/", 1)[-1])
        for status, n in state.get("next", {}).items():
            self._next[status] = n
        self._next["PENDING"] = pending_from
        reopened = []
        for status, (key, size, records) in state.get("open", {}).items():
            cur = _OpenFile(self.store.reopen(key, size), key)
            cur.size, cur.records = size, records
            self._open[status] = cur
            reopened.append(key.rsplit("/", 1)[-1])
        keep.update(reopened)
        keep.update(f".{name}.part" for name in reopened)
        for name in self.store.names():
            base = name[1:-5] if name.startswith(".") and name.endswith(".part") else name
            if base.split("_", 1)[0] in STATUSES and name not in keep:
                self.store.remove(self.store.key(base))

    def manifest(self) -> dict[str, Any]:
        return {
            "DestinationBucket": self.store.bucket,
            "MapRunArn": self.map_run_arn,
            "ResultFiles": {s: list(self._done[s]) for s in ("FAILED", "PENDING", "SUCCEEDED")},
        }

    def commit(self) -> dict[str, Any]:
        """Close every result file, then write ``manifest.json`` atomically (last)."""
        for status in list(self._open):
            try:
                self._close(status)
            except Exception as exc:
                raise self._failed_write(status, exc) from None
        manifest = self.manifest()
        try:
            self.store.put_atomic(self.manifest_key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        except ResultWriterFailed:
            raise
        except Exception as exc:
            raise self._fail(f"cannot write {self.manifest_uri}", exc) from None
        self.closed = True
        return manifest

    def abort(self) -> None:
        """Write no manifest: remove the files still open (unfinished part files, unfinished
        multipart uploads). Complete files stay; ``results_written`` counts their records."""
        for status in list(self._open):
            self._discard(self._open.pop(status))
        if not any(self._done.values()):
            self.store.remove_empty_run()
        self.closed = True
