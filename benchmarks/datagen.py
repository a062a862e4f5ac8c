"""Generate benchmark inputs: rows like {"id":0,"name":"item-0","value":0.0,"tag":"a"}."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
TAGS = ("a", "b", "c", "d")


def jsonl_path(n: int) -> Path:
    """Path of an n-row JSONL file, generated on first use."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"rows_{n}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", buffering=1 << 20) as fh:
            for i in range(n):
                fh.write(f'{{"id":{i},"name":"item-{i}","value":{i * 0.5},"tag":"{TAGS[i % 4]}"}}\n')
        os.replace(tmp, path)
    return path


def csv_path(n: int) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"rows_{n}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", buffering=1 << 20) as fh:
            fh.write("id,name,value,tag\n")
            for i in range(n):
                fh.write(f"{i},item-{i},{i * 0.5},{TAGS[i % 4]}\n")
        os.replace(tmp, path)
    return path
