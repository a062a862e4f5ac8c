"""Result files and the manifest, local or on S3, in the layout of AWS Distributed Map::

    <destination>/<run-id>/SUCCEEDED_0.json, SUCCEEDED_1.json, ...
    <destination>/<run-id>/FAILED_0.json ...
    <destination>/<run-id>/PENDING_0.json ...
    <destination>/<run-id>/manifest.json      (written last, atomically)

Lifecycle (like a Ray datasink): ``open`` checks the destination before any item runs,
``write`` streams encoded records into the current file of a status (rotating once a file
reaches ``MaxFileBytes``), ``commit`` closes the files and writes the manifest, ``abort``
closes the files and writes no manifest. A crashed run therefore never leaves a manifest.
"""

from __future__ import annotations

import bisect
import os
import secrets
from pathlib import Path
from typing import IO, Any

import orjson

from distmap.config.model import ResultWriterConfig
from distmap.errors import ResultWriterFailed
from distmap.storage import describe_os_error, is_s3, redact, s3_client, split_s3

STATUSES = ("SUCCEEDED", "FAILED", "PENDING")


class _LocalStore:
    def __init__(self, root: str, run_id: str) -> None:
        self.root = Path(root).resolve()
        self.bucket = str(self.root)
        self.run_prefix = run_id

    def key(self, name: str) -> str:
        return f"{self.run_prefix}/{name}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root != path and self.root not in path.parents:
            raise ResultWriterFailed(cause=f"refusing to write outside the destination: {key}")
        return path

    def check(self) -> None:
        run_dir = self._path(self.run_prefix)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(run_dir, os.W_OK):
            raise PermissionError(13, "Permission denied", str(run_dir))

    def open_write(self, key: str) -> IO[bytes]:
        return open(self._path(key), "wb", buffering=1 << 20)

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

    def uri(self, key: str) -> str:
        return str(self.root / key)


class _S3Store:
    def __init__(self, dest: str, run_id: str) -> None:
        self.bucket, prefix = split_s3(dest)
        prefix = prefix.strip("/")
        self.run_prefix = f"{prefix}/{run_id}" if prefix else run_id

    def key(self, name: str) -> str:
        return f"{self.run_prefix}/{name}"

    def check(self) -> None:
        s3_client().head_bucket(Bucket=self.bucket)

    def open_write(self, key: str) -> IO[bytes]:
        import smart_open

        return smart_open.open(
            f"s3://{self.bucket}/{key}", "wb", compression="disable", transport_params={"client": s3_client()}
        )

    def put_atomic(self, key: str, data: bytes) -> None:
        s3_client().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class _OpenFile:
    __slots__ = ("fh", "key", "records", "size")

    def __init__(self, fh: IO[bytes], key: str) -> None:
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
        self.results_written = 0
        self.closed = False

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

    def open(self) -> None:
        """Check that the destination is writable, before any item runs."""
        try:
            self.store.check()
        except ResultWriterFailed:
            raise
        except Exception as exc:
            raise self._fail(f"cannot write to {self.cfg.destination}", exc) from None

    def write(self, status: str, data: bytes, records: int, bounds: bytes = b"") -> None:
        """Append ``records`` encoded records (joined by ``record_sep``) to the status' files.

        ``bounds`` (``processor.record_ends``) lets a write be split over files so that no file
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
            raise self._fail(f"cannot write {status} results", exc) from None

    def _append(self, status: str, data: memoryview, records: int) -> None:
        cur = self._open.get(status)
        if cur is None:
            key = self.store.key(f"{status}_{self._next[status]}.{self.ext}")
            self._next[status] += 1
            cur = _OpenFile(self.store.open_write(key), key)
            self._open[status] = cur
            if not self.jsonl:
                cur.fh.write(b"[")
                cur.size += 1
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
        if status != "PENDING":
            self.results_written += records

    def _close(self, status: str) -> None:
        cur = self._open.pop(status)
        if not self.jsonl:
            cur.fh.write(b"]")
            cur.size += 1
        cur.fh.close()
        self._done[status].append({"Key": cur.key, "Size": cur.size})

    def manifest(self) -> dict[str, Any]:
        return {
            "DestinationBucket": self.store.bucket,
            "MapRunArn": self.map_run_arn,
            "ResultFiles": {s: list(self._done[s]) for s in ("FAILED", "PENDING", "SUCCEEDED")},
        }

    def commit(self) -> dict[str, Any]:
        """Close every result file, then write ``manifest.json`` atomically (last)."""
        try:
            for status in list(self._open):
                self._close(status)
            manifest = self.manifest()
            self.store.put_atomic(self.manifest_key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        except ResultWriterFailed:
            raise
        except Exception as exc:
            raise self._fail("cannot write the manifest", exc) from None
        self.closed = True
        return manifest

    def abort(self) -> None:
        """Close what is open without writing a manifest (best effort)."""
        for status in list(self._open):
            cur = self._open.pop(status)
            try:
                fh: Any = cur.fh
                if hasattr(fh, "terminate"):  # smart_open S3 writer: drop the multipart upload
                    fh.terminate()
                else:
                    fh.close()
            except Exception:
                pass
        self.closed = True
