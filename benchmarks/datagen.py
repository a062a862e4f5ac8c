"""Generate benchmark inputs: rows like {"id":0,"name":"item-0","value":0.0,"tag":"a"}.

Files are cached in ``benchmarks/data/`` (git-ignored) and generated on first use, through a
temporary file so that an interrupted run never leaves a truncated input behind.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
TAGS = ("a", "b", "c", "d")


def jsonl_path(n: int, create: bool = True) -> Path:
    """Path of an n-row JSONL file, generated on first use (unless ``create`` is false)."""
    path = DATA_DIR / f"rows_{n}.jsonl"
    if create and not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", buffering=1 << 20) as fh:
            for i in range(n):
                fh.write(f'{{"id":{i},"name":"item-{i}","value":{i * 0.5},"tag":"{TAGS[i % 4]}"}}\n')
        os.replace(tmp, path)
    return path


def csv_path(n: int, create: bool = True) -> Path:
    """Path of the same n rows as CSV with a header row, generated on first use (unless ``create``
    is false)."""
    path = DATA_DIR / f"rows_{n}.csv"
    if create and not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csvtmp")
        with open(tmp, "w", buffering=1 << 20) as fh:
            fh.write("id,name,value,tag\n")
            for i in range(n):
                fh.write(f"{i},item-{i},{i * 0.5},{TAGS[i % 4]}\n")
        os.replace(tmp, path)
    return path


def ensure(path: Path) -> Path:
    """Generate ``path`` (a ``rows_<n>.jsonl`` / ``rows_<n>.csv`` path from this module) if missing."""
    stem, suffix = path.stem, path.suffix
    n = int(stem.removeprefix("rows_"))
    return jsonl_path(n) if suffix == ".jsonl" else csv_path(n)
