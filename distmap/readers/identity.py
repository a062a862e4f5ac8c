"""The identity of a run's input, as a run journal records it: a resume on changed input is
refused rather than mixing two inputs' items in one run.

* one local file: its size and modification time (nanoseconds);
* one S3 object: its size, ETag and VersionId (``HeadObject``);
* several files (a directory, a prefix, a glob, a listing): a digest of every object's name and
  size (and a local file's modification time), with their number;
* anything else (``gs://``, ``az://``, ``https://``): its URI only (it is not checked).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from distmap.errors import ItemReaderFailed
from distmap.readers import sources
from distmap.storage import describe_os_error, is_s3, s3_client, split_s3


def _one(uri: str, version_id: str | None = None) -> dict[str, Any]:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        head = s3_client().head_object(**kwargs)
        return {
            "uri": uri,
            "size": int(head["ContentLength"]),
            "etag": head.get("ETag"),
            "versionId": head.get("VersionId"),
        }
    if "://" in uri:
        return {"uri": uri}
    st = os.stat(uri)
    return {"uri": uri, "size": st.st_size, "mtime": st.st_mtime_ns}


def _many(names: Any) -> dict[str, Any]:
    digest = hashlib.sha256()
    count = 0
    for name, size, stamp in names:
        digest.update(f"{name}\0{size}\0{stamp}\n".encode())
        count += 1
    return {"objects": count, "digest": digest.hexdigest()}


def input_identity(cfg: Any) -> dict[str, Any]:
    """What identifies the input of an ``ItemReaderConfig`` now."""
    src = cfg.source
    try:
        if cfg.resource == "listObjectsV2":
            listed = sources.list_objects(src, cfg.list_params)
            return {"uri": src, **_many((o.key, o.size, o.etag) for o in listed)}
        if cfg.input_type == "MANIFEST" or cfg.manifest_type is not None:
            return _one(src, cfg.version_id)
        if cfg.expand and (sources.has_glob(src) or sources.is_directory(src)):
            objs = sources.expand(src, cfg.list_params)
            return {"uri": src, **_many((o, o.size, _mtime(o)) for o in objs)}
        return _one(src, cfg.version_id)
    except ItemReaderFailed:
        raise
    except Exception as exc:
        raise ItemReaderFailed(cause=f"cannot read {src}: {describe_os_error(exc)}") from None


def _mtime(uri: str) -> int | None:
    if "://" in uri:
        return None
    return os.stat(uri).st_mtime_ns


def identity_change(before: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Why ``now`` is not the input ``before`` described, or None when it is the same."""
    for key in ("size", "mtime", "etag", "versionId", "objects", "digest"):
        if before.get(key) != now.get(key):
            what = {"mtime": "modification time", "objects": "number of objects", "digest": "objects"}.get(
                key, key
            )
            return f"its {what} changed ({before.get(key)!r} then, {now.get(key)!r} now)"
    return None
