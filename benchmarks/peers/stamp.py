"""An item function for the time-to-first-result measurement: a no-op that, the first time it
returns in a process, writes ``time.time()`` into ``$DISTMAP_BENCH_STAMP_DIR/<pid>``."""

from __future__ import annotations

import os
import time
from typing import Any

STAMP_DIR_ENV = "DISTMAP_BENCH_STAMP_DIR"
_stamped = False


def first_return_stamp(item: Any) -> Any:
    """Return the item unchanged; stamp the wall clock on this process's first call."""
    global _stamped
    if not _stamped:
        _stamped = True
        now = time.time()
        directory = os.environ.get(STAMP_DIR_ENV)
        if directory:
            with open(os.path.join(directory, str(os.getpid())), "w") as fh:
                fh.write(repr(now))
    return item
