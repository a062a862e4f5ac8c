"""Running one contender in a fresh process and measuring it: wall time and peak process-tree RSS.

Shared by ``benchmarks.core`` and ``python -m benchmarks run``.

* Wall time is ``time.perf_counter()`` around ``Popen`` .. ``wait``: interpreter start-up, imports
  and shutdown are included.
* Peak tree RSS: a thread sums VmRSS over the process and all its descendants (found by scanning
  /proc for PPid) every 0.05 s and keeps the largest sum. Pages shared by forked workers are
  counted once per process, and a spike shorter than the sampling interval can be missed. Each
  process's own high-water mark (VmHWM) is recorded too: the largest one is a lower bound of the
  tree peak, their sum an upper bound.
* The contender runs in a session (process group) of its own, so a timed-out run can be killed
  whole. A driver that has called :func:`become_subreaper` also adopts descendants that outlive
  their parent (e.g. daemons of a crashed Ray driver); :func:`reap_adopted` ends exactly those,
  by pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import os
import platform
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
SCRATCH_ROOT = "/tmp"
SAMPLE_INTERVAL = 0.05
TRIM_THRESHOLD = str(256 << 20)  # the trim threshold distmap itself picks
PR_SET_CHILD_SUBREAPER = 36


class BenchmarkError(Exception):
    """A contender failed or its output did not verify."""


def require(ok: bool, message: str) -> None:
    if not ok:
        raise BenchmarkError(message)


# --------------------------------------------------------------------------- process-tree RSS


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """``pid -> (ppid, VmRSS kB, VmHWM kB)`` for every process visible in /proc."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                status = fh.read()
        except OSError:  # exited meanwhile
            continue
        ppid = rss = hwm = 0
        for line in status.splitlines():
            if line.startswith(b"PPid:"):
                ppid = int(line.split()[1])
            elif line.startswith(b"VmRSS:"):  # Vm* lines are absent for zombies and kernel threads
                rss = int(line.split()[1])
            elif line.startswith(b"VmHWM:"):
                hwm = int(line.split()[1])
        table[int(entry.name)] = (ppid, rss, hwm)
    return table


def process_tree(root: int) -> dict[int, tuple[int, int]]:
    """``pid -> (VmRSS kB, VmHWM kB)`` of ``root`` and all its descendants."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, tuple[int, int]] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            tree[pid] = table[pid][1:]
            stack.extend(children.get(pid, ()))
    return tree


class TreeRssSampler:
    """Samples the RSS of one process tree in a background thread."""

    def __init__(self, root: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.root, self.interval = root, interval
        self.peak_kb = 0
        """The largest sum of VmRSS over the tree seen in one sample."""
        self.hwm_kb: dict[int, int] = {}
        """Each process's VmHWM, as last seen."""
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while True:
            tree = process_tree(self.root)
            self.peak_kb = max(self.peak_kb, sum(rss for rss, _ in tree.values()))
            for pid, (_, hwm) in tree.items():
                self.hwm_kb[pid] = max(hwm, self.hwm_kb.get(pid, 0))
            self.samples += 1
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    """One finished subprocess."""

    wall_s: float
    cpu_s: float
    """User + system CPU of the contender and the descendants it waited for (not Ray's daemons)."""
    peak_tree_rss_mb: float
    max_process_hwm_mb: float
    sum_process_hwm_mb: float
    rss_samples: int
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    """What the contender's check extracted (engine-reported seconds, counts...)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "peak_tree_rss_mb": round(self.peak_tree_rss_mb, 1),
            "max_process_hwm_mb": round(self.max_process_hwm_mb, 1),
            "sum_process_hwm_mb": round(self.sum_process_hwm_mb, 1),
            "rss_samples": self.rss_samples,
            "exit_code": self.exit_code,
            **({"timed_out": True} if self.timed_out else {}),
            **self.info,
        }


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the contender's own process group (it was started in a new session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _children_cpu() -> float:
    """User + system CPU of this process's waited-for children so far (a reaped process brings
    its own reaped children's CPU with it, so a contender's workers are counted)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_process(argv: list[str], env: dict[str, str], scratch: Path, timeout: float | None = None) -> Run:
    """Run ``argv`` from the repository root, timing it and sampling its tree's RSS.

    After ``timeout`` seconds the contender's process group is killed and the run is marked
    ``timed_out``.
    """
    out_path, err_path = scratch / "stdout.txt", scratch / "stderr.txt"
    timed_out = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        cpu0 = _children_cpu()
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
        )
        try:
            with TreeRssSampler(proc.pid) as sampler:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _kill_group(proc)
                wall = time.perf_counter() - t0
                cpu = _children_cpu() - cpu0
        except BaseException:  # e.g. Ctrl-C: do not leave the contender running
            _kill_group(proc)
            raise
    hwm = sampler.hwm_kb.values()
    return Run(
        wall_s=wall,
        cpu_s=cpu,
        peak_tree_rss_mb=sampler.peak_kb / 1024,
        max_process_hwm_mb=max(hwm, default=0) / 1024,
        sum_process_hwm_mb=sum(hwm) / 1024,
        rss_samples=sampler.samples,
        exit_code=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        timed_out=timed_out,
    )


# --------------------------------------------------------------------------- orphans


def become_subreaper() -> bool:
    """Make this process adopt orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children_of_self() -> set[int]:
    me = os.getpid()
    return {pid for pid, (ppid, _, _) in _proc_table().items() if ppid == me}


def reap_adopted(known: set[int], grace: float = 2.0) -> list[str]:
    """End the children of this process that are not in ``known``: descendants of a finished
    contender that outlived it and were adopted (see :func:`become_subreaper`).

    SIGTERM, then SIGKILL after ``grace`` seconds; each is then waited for by pid. Returns
    ``"<pid> (<command name>)"`` for each.
    """
    adopted = sorted(children_of_self() - known)
    names = [f"{pid} ({_comm(pid)})" for pid in adopted]
    for pid in adopted:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in adopted:
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return names


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    """True until the process has exited (a zombie counts as exited); reaps it if it has."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


# --------------------------------------------------------------------------- environment


def warm_page_cache(path: Path) -> None:
    """Read a file once so every contender starts with it in the page cache."""
    with open(path, "rb") as fh:
        while fh.read(8 << 20):
            pass


def contender_env(mode: str) -> dict[str, str]:
    """The environment every contender gets: this one, plus ``MALLOC_TRIM_THRESHOLD_`` in ``trim``
    mode, or in ``distmap`` mode the very tuning distmap applies to itself (``distmap.memory``:
    mmap threshold 64 MiB, trim threshold 256 MiB) as glibc environment variables, so every peer
    runs with it too (distmap sees explicit ``MALLOC_*_`` variables and leaves them as they are)."""
    env = dict(os.environ)
    if mode == "trim":
        env["MALLOC_TRIM_THRESHOLD_"] = TRIM_THRESHOLD
    elif mode == "distmap":
        from distmap.memory import MMAP_THRESHOLD
        from distmap.memory import TRIM_THRESHOLD as OWN_TRIM

        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
        env["MALLOC_TRIM_THRESHOLD_"] = str(OWN_TRIM)
    return env


def package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment(env: dict[str, str], mode: str) -> dict[str, Any]:
    """Facts about the machine and the software, recorded with every result file."""
    malloc_vars = {k: v for k, v in env.items() if k.startswith("MALLOC_") and k.endswith("_")}
    self_tuning = not malloc_vars and env.get("DISTMAP_MALLOC_TUNING", "1") != "0"
    return {
        "python": sys.version,
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "mem_total_mb": _mem_total_mb(),
        "malloc_env": mode,
        "malloc_vars": malloc_vars,
        "distmap_allocator_tuning": "on (distmap processes call mallopt themselves)"
        if self_tuning
        else "off",
        "distmap": importlib.metadata.version("distmap"),
        "orjson": orjson.__version__,
        "git_commit": _git_commit(),
    }


def _mem_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
