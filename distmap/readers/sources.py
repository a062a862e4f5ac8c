"""Where input bytes come from: one object, or the objects of a listing, opened as byte streams.

* ``ObjectUri`` names one object (a local path, ``s3://bucket/key`` with an optional VersionId,
  or a ``gs://`` / ``az://`` / ``https://`` URI read through smart_open).
* ``open_object`` opens it for streaming reads and decompresses ``.gz``, ``.bz2`` and ``.zst``
  incrementally (by the name's suffix), never holding the whole object.
* ``list_objects`` lists a prefix or a directory lazily, page by page, in key order;
  ``expand`` turns a source (a file, a directory, a glob, a prefix) into the objects it names.
"""

from __future__ import annotations

import bz2
import contextlib
import fnmatch
import gzip
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from distmap.errors import ItemReaderFailed
from distmap.storage import describe_os_error, is_s3, s3_client, split_s3

#: smart_open scheme -> the distmap extra that installs its client library
EXTRAS = {"gs": "gcs", "az": "azure", "http": "http", "https": "http"}
GLOB_CHARS = "*?["
PAGE_SIZE = 1000  # S3's largest ListObjectsV2 page


class ObjectUri(str):
    """An object's URI (what error messages show), with the S3 VersionId to read, if any."""

    version_id: str | None
    size: int | None
    """Its size when a listing told it."""

    def __new__(cls, uri: str, version_id: str | None = None, size: int | None = None) -> ObjectUri:
        obj = super().__new__(cls, uri)
        obj.version_id = version_id
        obj.size = size
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (ObjectUri, (str(self), self.version_id, self.size))


@dataclass(frozen=True, slots=True)
class Listed:
    """One object of a listing, with the fields ListObjectsV2 reports."""

    key: str
    size: int
    last_modified: int
    """Seconds since the epoch (AWS's items carry a number here)."""
    etag: str
    storage_class: str
    uri: str


class _Counting:
    """Counts the bytes read from the raw (compressed) stream, for progress."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()


class _Zstd:
    def __init__(self, raw: Any) -> None:
        import zstandard

        self._reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)

    def read(self, n: int = -1) -> bytes:
        return self._reader.read(n)

    def close(self) -> None:
        self._reader.close()


def compression_of(uri: str) -> str | None:
    name = uri.lower()
    for suffix in (".gz", ".bz2", ".zst"):
        if name.endswith(suffix):
            return suffix
    return None


def open_object(uri: str) -> tuple[IO[bytes], _Counting]:
    """A binary stream of the object's (decompressed) bytes and the counter of raw bytes read."""
    raw = _Counting(open_raw(uri))
    kind = compression_of(uri)
    if kind == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[arg-type]
    if kind == ".bz2":
        return bz2.BZ2File(raw, "rb"), raw  # type: ignore[arg-type]
    if kind == ".zst":
        try:
            return _Zstd(raw), raw  # type: ignore[return-value]
        except BaseException:
            raw.close()
            raise
    return raw, raw  # type: ignore[return-value]


def open_raw(uri: str) -> IO[bytes]:
    """Open the object itself (seekable for local files and S3)."""
    version = getattr(uri, "version_id", None)
    if is_s3(uri):
        import smart_open

        params: dict[str, Any] = {"client": s3_client()}
        if version:
            params["version_id"] = version
        return smart_open.open(str(uri), "rb", compression="disable", transport_params=params)
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme:
        return _open_smart(uri, scheme)
    return open(uri, "rb", buffering=0)


def _open_smart(uri: str, scheme: str) -> IO[bytes]:
    extra = EXTRAS.get(scheme)
    if extra is None:
        raise ItemReaderFailed(cause=f"cannot open {uri}: unsupported scheme {scheme}://")
    import smart_open

    try:
        return smart_open.open(str(uri), "rb", compression="disable")
    except (ImportError, NotImplementedError):
        raise ItemReaderFailed(
            cause=f"cannot open {uri}: reading {scheme}:// needs its client library: "
            f"pip install 'distmap[{extra}]'"
        ) from None


# ---------------------------------------------------------------------------- listings


def list_objects(source: str, params: tuple[tuple[str, str], ...] = ()) -> Iterator[Listed]:
    """Every object under an ``s3://bucket/prefix`` or in a local directory (recursively), in
    key order. S3 pages are fetched one at a time, as they are consumed."""
    if is_s3(source):
        return _list_s3(source, dict(params))
    return _list_local(source)


def _list_s3(source: str, params: dict[str, str]) -> Iterator[Listed]:
    bucket, prefix = split_s3(source)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": PAGE_SIZE, **params}
    client = s3_client()
    while True:
        try:
            page = client.list_objects_v2(**kwargs)
        except Exception as exc:
            raise ItemReaderFailed(
                cause=f"cannot list s3://{bucket}/{prefix}: {describe_os_error(exc)}"
            ) from None
        for obj in page.get("Contents", ()):
            key = obj["Key"]
            yield Listed(
                key=key,
                size=int(obj.get("Size", 0)),
                last_modified=int(obj["LastModified"].timestamp()),
                etag=obj.get("ETag", ""),
                storage_class=obj.get("StorageClass", "STANDARD"),
                uri=f"s3://{bucket}/{key}",
            )
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return
        kwargs["ContinuationToken"] = token
        kwargs.pop("StartAfter", None)


def _list_local(directory: str) -> Iterator[Listed]:
    if not os.path.isdir(directory):
        raise ItemReaderFailed(cause=f"cannot list {directory}: No such directory")
    yield from _walk(directory, "")


def _walk(root: str, rel: str) -> Iterator[Listed]:
    """Keys in S3's order (UTF-8 byte order of the whole key): a directory ``d`` sorts as
    ``d/``, so its keys come exactly where S3 would put them. One directory's names are held
    (sorting needs them), nothing more."""
    path = os.path.join(root, rel) if rel else root
    try:
        with os.scandir(path) as it:
            names = [e.name + "/" if e.is_dir() else e.name for e in it]
    except OSError as exc:
        raise ItemReaderFailed(cause=f"cannot list {path}: {describe_os_error(exc)}") from None
    names.sort(key=lambda n: n.encode("utf-8", "surrogateescape"))
    for name in names:
        key = rel + name
        if name.endswith("/"):
            yield from _walk(root, key)
            continue
        full = os.path.join(path, name)
        try:
            st = os.stat(full)
        except OSError:
            continue  # removed since it was listed: S3 would not list it either
        tag = hashlib.md5(f"{key}\0{st.st_size}\0{st.st_mtime_ns}".encode(errors="surrogateescape"))
        yield Listed(
            key=key,
            size=st.st_size,
            last_modified=int(st.st_mtime),
            etag=f'"{tag.hexdigest()}"',
            storage_class="STANDARD",
            uri=full,
        )


def is_folder_marker(obj: Listed) -> bool:
    """The zero-byte ``dir/`` keys consoles create: not data files."""
    return obj.key.endswith("/") and obj.size == 0


def is_directory(source: str) -> bool:
    """A local directory, or an S3 source ending with ``/`` (a prefix)."""
    return source.endswith("/") if is_s3(source) else os.path.isdir(source)


def has_glob(source: str) -> bool:
    path = split_s3(source)[1] if is_s3(source) else source
    return any(c in path for c in GLOB_CHARS)


def expand(source: str, params: tuple[tuple[str, str], ...] = ()) -> Iterator[ObjectUri]:
    """The data files a source names: itself, every file under a directory or prefix (``/`` at
    the end of an S3 source), or the matches of a glob (``*``, ``?``, ``[...]``; ``*`` does not
    cross ``/``, ``**`` does), all in key order."""
    if has_glob(source):
        yield from _glob(source)
        return
    if is_directory(source):
        for obj in list_objects(source, params):
            if not is_folder_marker(obj):
                yield ObjectUri(obj.uri, size=obj.size)
        return
    yield source if isinstance(source, ObjectUri) else ObjectUri(source)


def _glob(source: str) -> Iterator[ObjectUri]:
    if is_s3(source):
        bucket, pattern = split_s3(source)
        base = f"s3://{bucket}/"
    else:
        base, pattern = "", os.path.abspath(source)
    cut = min(i for i, c in enumerate(pattern) if c in GLOB_CHARS)
    slash = pattern.rfind("/", 0, cut)
    root, rest = pattern[: slash + 1], pattern[slash + 1 :]
    regex = _glob_regex(rest)
    listing = list_objects(base + root) if is_s3(source) else _list_local(root or "/")
    matched = False
    for obj in listing:
        rel = obj.key[len(root) :] if is_s3(source) else obj.key
        if regex.fullmatch(rel) and not is_folder_marker(obj):
            matched = True
            yield ObjectUri(obj.uri, size=obj.size)
    if not matched:
        raise ItemReaderFailed(cause=f"no object matches {source}")


def _glob_regex(pattern: str) -> Any:
    import re

    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def close_quietly(fh: Any) -> None:
    with contextlib.suppress(Exception):
        fh.close()
