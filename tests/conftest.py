"""Shared fixtures. ``tests/`` and the repository root are importable, so item functions can be
given as ``itemfns:name`` (tests/itemfns.py) or ``jobs.examples:name``.

Backends: tests taking the ``backend`` fixture run once per backend (the contract suite). The
Ray cluster is real (``ray.init(num_cpus=2)``, no dashboard), started once per session, and
every test marked ``ray`` runs after all the others, so no local-backend test forks a process
that has Ray's threads running.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

pytest_plugins = ["fixtures_s3"]

# runs without a ResultWriter keep their journal under the state directory: the tests' go to a
# directory of their own (subprocesses inherit it), never to the user's ~/.local/state
if "DISTMAP_STATE_DIR" not in os.environ:
    os.environ["DISTMAP_STATE_DIR"] = tempfile.mkdtemp(prefix="distmap-test-state-")
    atexit.register(shutil.rmtree, os.environ["DISTMAP_STATE_DIR"], True)


def pytest_collection_modifyitems(config, items):
    """Run the Ray tests last (stable sort keeps the order inside each group)."""
    items.sort(key=lambda item: item.get_closest_marker("ray") is not None)


@pytest.fixture(scope="session")
def ray_cluster():
    """One real local Ray cluster for the whole session: 2 CPUs, no dashboard. The test item
    functions (tests/itemfns.py) reach the workers the way a user's module does: uploaded with
    the job (runtime_env py_modules)."""
    import logging

    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={
            "py_modules": [str(Path(__file__).resolve().parent / m) for m in ("itemfns.py", "aslfns.py")]
        },
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def backend(request) -> str:
    """The backend name; the contract tests run once on each."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return request.param


@pytest.fixture(name="write_jsonl")
def _write_jsonl(tmp_path: Path):
    """Factory: write rows as JSON Lines and return the path."""

    def write(rows: list[Any], name: str = "in.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    return write


@pytest.fixture(name="job")
def _job(tmp_path: Path, write_jsonl):
    """Factory: an ASL-shaped job mapping over ``n`` rows {"id": i, ...} with a local ResultWriter."""

    def make(fn: str, n: int = 100, rows: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
        data = (
            rows if rows is not None else [{"id": i, "name": f"item-{i}", "value": i * 0.5} for i in range(n)]
        )
        src = write_jsonl(data)
        job: dict[str, Any] = {
            "ItemReader": {"Source": str(src), "ReaderConfig": {"InputType": "JSONL"}},
            "ItemProcessor": {"Function": fn},
            "ResultWriter": {"Destination": str(tmp_path / "out")},
        }
        processor_keys = {"Retry", "Catch", "TimeoutSeconds"}
        for key, val in extra.items():
            if key in processor_keys:
                job["ItemProcessor"][key] = val
            else:
                job[key] = val
        return job

    return make


def load_results(result) -> dict[str, list[dict[str, Any]]]:
    """Read every result file listed in a run's manifest (local destination)."""
    manifest = json.loads(Path(result.manifest).read_text())
    root = Path(manifest["DestinationBucket"])
    out: dict[str, list[dict[str, Any]]] = {}
    for status, files in manifest["ResultFiles"].items():
        recs: list[dict[str, Any]] = []
        for f in files:
            text = (root / f["Key"]).read_text()
            assert (root / f["Key"]).stat().st_size == f["Size"]
            if f["Key"].endswith(".jsonl"):
                recs.extend(json.loads(line) for line in text.splitlines() if line)
            else:
                recs.extend(json.loads(text))
        out[status] = recs
    return out


def ids(records: list[dict[str, Any]]) -> list[int]:
    """The ``id`` of each record's input item, sorted."""
    return sorted(json.loads(r["Input"])["id"] for r in records)
