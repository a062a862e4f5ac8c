"""Opening local paths and ``s3://`` URIs, and keeping secrets out of messages.

S3 goes through smart_open with a boto3 client built from the standard AWS environment
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``, credentials chain), so a moto
server, MinIO, LocalStack or real S3 all work unchanged.
"""

from __future__ import annotations

import functools
import os
import re
from typing import IO, Any

_SECRET_PATTERNS = [
    (re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "***AWS-KEY-ID***"),
    (
        re.compile(
            r"(?i)(aws_secret_access_key|aws_session_token|secret|password|token)(\s*[=:]\s*)([^\s,;'\"&]+)"
        ),
        r"\1\2***",
    ),
    (re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token))=([^&\s]+)"), r"\1=***"),
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@"), r"\1\2:***@"),
    (re.compile(r"([^\s/:@\"']+):([^\s/@\"']+)@"), r"\1:***@"),  # user:password@host without a scheme
]


def redact(text: str) -> str:
    """Mask AWS key ids, secrets in ``key=value`` pairs, presigned-URL signatures, bearer / basic
    authorization values and URL passwords.

    Every pattern needs ``@``, ``AKIA`` / ``ASIA`` or one of the words checked below (in any
    case): text with none of them skips the regular expressions (FAILED records' causes pass
    through here, one per failed item)."""
    low = text.lower()
    if (
        "@" in text
        or "AKIA" in text
        or "ASIA" in text
        or "secret" in low
        or "password" in low
        or "token" in low
        or "x-amz-" in low
        or "bearer" in low
        or "basic" in low
    ):  # spelled out, not a loop: this runs once per failed item
        for pattern, repl in _SECRET_PATTERNS:
            text = pattern.sub(repl, text)
    for secret in _secret_values():
        if secret in text:
            text = text.replace(secret, "***")
    return text


_SECRET_KEYS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_SECRET_RAW_KEYS = tuple(os.fsencode(k) for k in _SECRET_KEYS)
_secret_cache: tuple[Any, tuple[str, ...]] = (None, ())


def _secret_values() -> tuple[str, ...]:
    """The secret values of the environment (8 characters or more), decoded again only when they
    change: the raw environment is read without decoding it."""
    global _secret_cache
    raw_env = getattr(os.environ, "_data", None)
    if raw_env is None:  # pragma: no cover - not POSIX
        vals = [os.environ.get(k, "") for k in _SECRET_KEYS]
        return tuple(v for v in vals if len(v) >= 8)
    raw = (raw_env.get(_SECRET_RAW_KEYS[0]), raw_env.get(_SECRET_RAW_KEYS[1]))
    if raw != _secret_cache[0]:
        vals = [os.environ.get(k, "") for k in _SECRET_KEYS]
        _secret_cache = (raw, tuple(v for v in vals if len(v) >= 8))
    return _secret_cache[1]


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


@functools.lru_cache(maxsize=4)
def s3_client() -> Any:
    """One boto3 S3 client per process, configured from the standard AWS environment."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or 5)  # the standard variable; 5 by default
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, config=Config(retries={"max_attempts": attempts, "mode": "standard"})
    )


def open_read(uri: str) -> IO[bytes]:
    """Open a local path or s3:// URI for binary streaming reads."""
    if is_s3(uri):
        import smart_open

        return smart_open.open(uri, "rb", compression="disable", transport_params={"client": s3_client()})
    return open(uri, "rb", buffering=0)


def size_of(uri: str) -> int | None:
    """Size in bytes, or None when it cannot be known cheaply."""
    try:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            return int(s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])
        return os.path.getsize(uri)
    except Exception:
        return None


def describe_os_error(exc: BaseException) -> str:
    """A short, secret-free description of an I/O error (local or boto)."""
    code = None
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        code = resp.get("Error", {}).get("Code")
    if code:
        return redact(f"{code}: {resp.get('Error', {}).get('Message', '')}".strip(": "))
    if isinstance(exc, OSError) and exc.strerror:
        return redact(exc.strerror)
    return redact(f"{type(exc).__name__}: {exc}")
