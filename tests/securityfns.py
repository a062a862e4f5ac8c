"""Item functions for tests/test_security.py (kept apart from itemfns.py)."""

from __future__ import annotations

from typing import Any

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
URL_PASSWORD = "hunter2-url-pass"
BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig-value"


def leak_secrets(item: Any) -> Any:
    """Fails with a message carrying three kinds of credentials, as careless code does."""
    raise RuntimeError(
        f"upload failed: aws_secret_access_key={AWS_SECRET} "
        f"db=postgresql://app:{URL_PASSWORD}@db.internal:5432/orders "
        f"headers={{'Authorization': 'Bearer {BEARER}'}}"
    )


def slow(item: Any) -> Any:
    """Takes 20 ms: long enough runs to interrupt."""
    import time

    time.sleep(0.02)
    return item
