"""A watchdog that takes a local Ray cluster down with the process that started it.

``ray.init`` starts the cluster's processes (gcs_server, raylet, log monitor, ...) and the raylet
starts more (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``, workers). When the driver is
killed with SIGKILL, the agents outlive it and ignore SIGTERM. So when distmap starts a local
cluster it also starts this small process in a session of its own (Ctrl-C on the terminal does not
reach it), with a pipe from the coordinator on its stdin. It keeps a list of the cluster's
processes (the roots given on the command line and all their descendants, with their start times
so a reused pid is never hit) and, as soon as the pipe closes (the coordinator finished, or died
however it died), SIGKILLs whatever is left of them. It never touches any other process.

    python -m distmap.executors.ray_reaper ROOT_PID [ROOT_PID ...]
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

SCAN_SECONDS = 0.5


def start(root_pids: list[int]) -> subprocess.Popen[bytes]:
    """Start the watchdog for these processes; closing its stdin (or dying) releases it."""
    return subprocess.Popen(
        [sys.executable, "-m", "distmap.executors.ray_reaper", *map(str, root_pids)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time since boot


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _scan(known: dict[int, str]) -> None:
    """Add every live descendant of the known processes."""
    todo = [p for p in known if _start_time(p) == known[p]]
    while todo:
        pid = todo.pop()
        for child in _children(pid):
            if child not in known and child != os.getpid():
                started = _start_time(child)
                if started is not None:
                    known[child] = started
                    todo.append(child)


def _kill(known: dict[int, str]) -> None:
    for _ in range(3):  # a dying raylet may still start something: scan again
        _scan(known)
        for pid, started in known.items():
            if _start_time(pid) == started:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    known: dict[int, str] = {}
    for arg in argv:
        started = _start_time(int(arg))
        if started is not None:
            known[int(arg)] = started
    fd = sys.stdin.fileno()
    while True:
        _scan(known)
        ready, _, _ = select.select([fd], [], [], SCAN_SECONDS)
        if ready and not os.read(fd, 4096):  # EOF: the coordinator is done or gone
            break
    _kill(known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
