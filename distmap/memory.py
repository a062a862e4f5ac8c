"""Allocator tuning for engine processes (glibc only; a no-op elsewhere).

Result buffers are megabytes each and short-lived. With glibc's defaults each one is mmap'd
and unmapped, and every reuse page-faults again: on small VMs that costs more than the JSON
work itself. Keeping big blocks on the heap and trimming only above 256 MiB makes them reusable,
while peak memory stays bounded by the in-flight window. ``DISTMAP_MALLOC_TUNING=0`` disables it;
explicit ``MALLOC_*_`` environment variables are respected.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20
"""Blocks up to this size come from the heap (glibc's default is 128 KiB, adapting upwards)."""
TRIM_THRESHOLD = 256 << 20
"""Free memory at the top of the heap is returned to the system only above this."""
_done = False


def tune_allocator() -> bool:
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("DISTMAP_MALLOC_TUNING", "1") == "0":
        return False
    if any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        return False
    _done = bool(ok)
    return _done
