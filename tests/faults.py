"""Helpers for the fault tests: run ``distmap run`` as a real subprocess, watch its log lines, and
check what a run left behind in a local destination."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def trials(default: int) -> int:
    """How many trials a fault test runs: ``DISTMAP_FAULT_TRIALS`` (e.g. 50) or a CI-sized default."""
    return int(os.environ.get("DISTMAP_FAULT_TRIALS", default))


@dataclass
class Run:
    """A running ``distmap run`` whose stdout and stderr are collected by threads."""

    proc: subprocess.Popen
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def wait_started(self, timeout: float = 30) -> None:
        assert self.started.wait(timeout), "".join(self.err)[-3000:]

    def finish(self, timeout: float) -> tuple[int | None, str, str]:
        """Wait up to ``timeout`` s; kill it if it is still running (returncode None then)."""
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            kill_tree(self.proc.pid)
            self.proc.wait(10)
        for t in self.threads:
            t.join(10)
        return code, "".join(self.out), "".join(self.err)

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(x) for x in path.read_text().split()]
        except OSError:
            return []


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(x) for x in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def kill_tree(pid: int) -> None:
    for p in [*children_of(pid), pid]:
        with contextlib.suppress(OSError):
            os.kill(p, 9)


def start(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, unset: tuple[str, ...] = (), **popen: Any
) -> Run:
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", **(env or {})}
    for key in unset:
        e.pop(key, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "distmap", "run", *args],
        cwd=cwd,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    run = Run(proc)

    def pump(stream: Any, sink: list[str], watch: bool) -> None:
        for line in stream:
            sink.append(line)
            if watch and "map_run.started" in line:
                run.started.set()

    run.threads = [
        threading.Thread(target=pump, args=(proc.stdout, run.out, False), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, run.err, True), daemon=True),
    ]
    for t in run.threads:
        t.start()
    return run


def write_job(tmp_path: Path, fn: str, rows: list[dict[str, Any]], extra: str = "") -> Path:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    job = tmp_path / "job.yaml"
    job.write_text(
        "ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}\n"
        f"ItemProcessor: {{Function: '{fn}'}}\nResultWriter: {{Destination: out}}\n{extra}"
    )
    return job


def read_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    if path.name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line]
    return json.loads(text)


def record_ids(records: list[dict[str, Any]]) -> list[int]:
    return [json.loads(r["Input"])["id"] for r in records]


JOURNAL_FILES = {"run.json", "journal.jsonl", "update.json"}


def check_run_dir(run_dir: Path, n: int) -> dict[str, Any]:
    """The invariants of a run directory, whatever way the run ended:

    * no unfinished (``.part``) file, except under a run journal (``journal.jsonl``: the parts a
      resume continues, cut back to what the journal committed); every result file is complete JSON;
    * with a manifest: it lists exactly the result files there, with their sizes, and every item
      index appears exactly once across them;
    * without one: no item index appears twice in what was left.

    Returns {"manifest": bool, "by_status": {status: [ids]}}.
    """
    files = sorted(p for p in run_dir.iterdir()) if run_dir.is_dir() else []
    journaled = (run_dir / "journal.jsonl").exists()
    assert not [p.name for p in files if p.name.startswith(".tmp-") or (p.name.endswith(".part") and not journaled)]
    files = [p for p in files if p.name not in JOURNAL_FILES and not p.name.startswith(".")]
    by_status: dict[str, list[int]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    result_files = [p for p in files if p.name != "manifest.json"]
    for p in result_files:
        by_status[p.name.split("_")[0]] += record_ids(read_records(p))  # parses: the file is complete
    every = [i for ids in by_status.values() for i in ids]
    assert len(every) == len(set(every)), "an item appears twice"
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        listed = {Path(f["Key"]).name: f["Size"] for fs in m["ResultFiles"].values() for f in fs}
        assert listed == {p.name: p.stat().st_size for p in result_files}
        assert sorted(every) == list(range(n)), "the manifest does not account for every item once"
    return {"manifest": manifest.exists(), "by_status": by_status}


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of ``pids`` is alive (zombies count as gone); return the survivors."""
    deadline = time.time() + timeout
    alive = pids
    while True:
        alive = [p for p in alive if _alive(p)]
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status
