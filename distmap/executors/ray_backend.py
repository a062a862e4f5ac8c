"""The Ray backend: the same chunks as the local backend, run by actors on a Ray cluster.

One actor (``ChunkWorker``, one CPU) per worker slot holds a ``BatchProcessor`` for the whole
run, exactly like a local worker process: per-item Retry / Catch / timeouts and the thread or
asyncio lanes of MaxConcurrency run inside it. The coordinator sends each actor raw chunk bytes
and keeps at most ``per_worker_window`` calls queued per actor, so the driver holds O(actors)
object refs, never one per item. Actor calls run in submission order, so only the first chunk
queued on an actor can have been running when it died.

Faults: an actor that dies (its process crashed, was OOM-killed, or its node went away) is
replaced; every chunk it held is reported ``Crashed`` so the coordinator re-runs it (and bisects
the one that was running, to isolate an item that kills workers). Results reach the result files
only from the coordinator, after a call has returned, so a re-run never duplicates an item.
Ray's own task retries are off (``max_restarts=0, max_task_retries=0``): attempts are counted
by the coordinator.

``import ray`` happens in ``connect``, never at import time, so ``import distmap`` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import sys
import sysconfig
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distmap.config.model import MapJob
from distmap.contract import Chunk, RunSpec, chunks_per_worker
from distmap.errors import BackendUnavailable
from distmap.executors.base import Completed, Completion, Crashed, WorkerInitError, place
from distmap.executors.ray_worker import ChunkWorker
from distmap.imports import function_modules
from distmap.logs import get_logger

log = get_logger()

#: A slot whose actor dies this many times before ever becoming ready is a start-up failure.
MAX_START_FAILURES = 3
#: Largest object passed inline with an actor call, for a local cluster distmap starts.
INLINE_BYTES = 16 << 20
#: At start, how long to wait for the other actors once the first one is ready.
START_GRACE_SECONDS = 1.0


@dataclass(eq=False)
class _Slot:
    index: int
    spec: RunSpec
    actor: Any = None
    ready_ref: Any = None
    state: str = "starting"  # starting | ready
    node_id: str | None = None
    start_failures: int = 0
    inflight: deque[tuple[Any, Chunk]] = field(default_factory=deque)
    payload: bytes | None = None


def _installed_roots() -> list[Path]:
    roots = set()
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        with contextlib.suppress(KeyError):
            roots.add(Path(sysconfig.get_paths()[key]).resolve())
    return sorted(roots)


def modules_to_ship(function: Any) -> list[str]:
    """Local paths to upload with the job: the distmap package and the top-level module or package
    of the item function, unless that is installed in site-packages (workers then need it too)."""
    paths = [str(Path(__file__).resolve().parent.parent)]
    if hasattr(function, "ship_modules"):  # e.g. a state machine calling several functions
        extra = [p for spec in function.ship_modules() for p in modules_to_ship(spec)[1:]]
        return paths + sorted(set(extra))
    module = function.__module__ if callable(function) else str(function).partition(":")[0]
    top = (module or "").split(".")[0]
    if not top or top in ("__main__", "distmap"):
        return paths  # a __main__ function is pickled by value
    spec = importlib.util.find_spec(top)
    if spec is None:
        return paths
    if spec.submodule_search_locations:  # a package (possibly a namespace package)
        where = Path(next(iter(spec.submodule_search_locations))).resolve()
    elif spec.origin and spec.origin.endswith(".py"):
        where = Path(spec.origin).resolve()
    else:
        return paths  # built-in or compiled: must be installed on the workers
    if any(where.is_relative_to(root) for root in _installed_roots()):
        return paths
    return [*paths, str(where)]


class RayExecutor:
    """Runs chunks on Ray actors, one per worker slot (one CPU each)."""

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        per_worker_window: int = 2,
        ship: bool | None = None,
        runtime_env: dict[str, Any] | None = None,
        dashboard: bool = False,
        startup_timeout: float = 300.0,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            address: the cluster to join (``ray://host:10001``, ``host:6379`` or ``auto``);
                default ``RAY_ADDRESS``, else a new local cluster sized to this machine.
            num_cpus: CPUs of a new local cluster (default: all cores).
            per_worker_window: chunks queued per actor (2: one running, one ready to go).
            ship: upload distmap and the item function's module with the job (runtime_env
                ``py_modules``). Default: on when joining a cluster, off for a local one.
            runtime_env: extra Ray runtime_env for the job (``pip``, ``env_vars``, ...).
            dashboard: start the Ray dashboard with a new local cluster.
            startup_timeout: seconds to wait for the first actor before failing the run.
            init_options: passed through to ``ray.init``.
        """
        self.address = address
        self.num_cpus = num_cpus
        self.base_window = per_worker_window
        self.per_worker_window = per_worker_window
        self.concurrent = False
        self.held: deque[Chunk] = deque()
        """Chunks waiting for an actor they may run on (``place``)."""
        self.ship = ship
        self.runtime_env = dict(runtime_env or {})
        self.dashboard = dashboard
        self.startup_timeout = startup_timeout
        self.init_options = dict(init_options or {})
        self.slots: list[_Slot] = []
        self._by_ref: dict[Any, _Slot] = {}
        self._owned = False
        self._reaper: Any = None
        self._ray: Any = None
        self._cls: Any = None
        self._shipped: list[str] = []
        self._waiting_since: float | None = None
        self._start_grace_until: float | None = 0.0

    # -------------------------------------------------------------- connect
    def connect(self, job: MapJob) -> int:
        return self.connect_for([job.processor.function])

    def connect_for(self, functions: list[Any]) -> int:
        """Connect (or start a cluster), shipping the modules of ``functions``; return its CPUs."""
        try:
            import ray
        except ImportError:
            raise BackendUnavailable(
                "the ray backend needs Ray installed: pip install 'distmap[ray]'"
            ) from None
        self._ray = ray
        if ray.is_initialized():
            if self.address:
                log.warning("ray.already_initialized", ignored_address=self.address)
        else:
            self._init(ray, functions)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise BackendUnavailable("the Ray cluster has no CPUs to run workers on")
        return cpus

    def _init(self, ray: Any, functions: list[Any]) -> None:
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        env = dict(self.runtime_env)
        ship = self.ship if self.ship is not None else address is not None
        if ship:
            shipped: dict[str, None] = {}
            for fn in functions:
                shipped.update(dict.fromkeys(modules_to_ship(fn)))
            self._shipped = list(shipped)
            env["py_modules"] = [*env.get("py_modules", []), *self._shipped]
        options: dict[str, Any] = {
            "logging_level": logging.WARNING,
            "runtime_env": env or None,
            **self.init_options,
        }
        if address is None:
            options.setdefault("num_cpus", self.num_cpus or os.cpu_count() or 1)
            options.setdefault("include_dashboard", self.dashboard)
            # chunk payloads and results (a few MiB) travel inline with the actor calls instead of
            # through the object store: measured ~3x less overhead per chunk on a 2-CPU machine
            options.setdefault("_system_config", {"max_direct_call_object_size": INLINE_BYTES})
        where = address or "a new local cluster"
        if address is not None:
            _probe(address)  # ray.init retries an unreachable address for minutes
        else:
            _quiet_token_auth()
        if not sys.stderr.isatty():
            os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no colour codes in forwarded log lines
        try:
            # "local" starts a new cluster even when a stale /tmp/ray/ray_current_cluster exists
            ray.init(address=address or "local", **options)
        except Exception as exc:  # ConnectionError, TimeoutError, ValueError, RuntimeError...
            raise BackendUnavailable(f"cannot start Ray on {where}: {type(exc).__name__}: {exc}") from None
        self._owned = True
        if address is None:
            self._reaper = _start_reaper(ray)

    def describe(self) -> dict[str, object]:
        ray = self._ray
        if ray is None or not ray.is_initialized():
            return {}
        facts: dict[str, object] = {"shipped": [Path(p).name for p in self._shipped]}
        try:  # informational only: some of these are not available through Ray Client (ray://)
            facts["ray_nodes"] = sum(1 for n in ray.nodes() if n.get("Alive"))
            facts["ray_cpus"] = int(ray.cluster_resources().get("CPU", 0))
            facts["ray_address"] = ray.get_runtime_context().gcs_address
        except Exception:
            pass
        return facts

    # -------------------------------------------------------------- lifecycle
    def start(self, spec: RunSpec, lanes: list[int]) -> None:
        ray = self._ray
        most = max(lanes, default=1)
        self.concurrent = most > 1
        self.per_worker_window = chunks_per_worker(most, self.base_window)
        self._cls = ray.remote(ChunkWorker).options(
            num_cpus=1,
            max_restarts=0,
            max_task_retries=0,
            # with lanes, an actor runs its chunks side by side (they share its lanes)
            max_concurrency=self.per_worker_window if self.concurrent else 1,
            scheduling_strategy="SPREAD",
        )
        self.slots = [_Slot(i, replace(spec, lanes=n)) for i, n in enumerate(lanes)]
        for slot in self.slots:
            self._start_slot(slot)
        self._waiting_since = time.monotonic()
        self._start_grace_until = 0.0

    def _start_slot(self, slot: _Slot) -> None:
        from ray import cloudpickle

        if slot.payload is None:  # the actor unpickles it once it has cleaned its sys.path
            slot.payload = cloudpickle.dumps(slot.spec)
        modules = tuple(function_modules(slot.spec.job.processor.function))
        slot.actor = self._cls.remote(slot.payload, slot.spec.workdir, modules)
        slot.ready_ref = slot.actor.ready.remote()
        slot.state = "starting"
        slot.node_id = None

    @property
    def capacity(self) -> int:
        ready = sum(1 for s in self.slots if s.state == "ready")
        if ready == 0:
            return 0
        if ready < len(self.slots) and self._start_grace_until is not None:
            # the first actors came up: give the others a moment, so a small input is spread
            # over all of them instead of being queued on the first one
            if time.monotonic() < self._start_grace_until:
                return 0
            self._start_grace_until = None
        return ready * self.per_worker_window

    def outstanding(self) -> list[Chunk]:
        return [chunk for s in self.slots for _, chunk in s.inflight] + list(self.held)

    # -------------------------------------------------------------- work
    def submit(self, chunk: Chunk) -> None:
        ready = [s for s in self.slots if s.state == "ready"]
        if not ready:  # pragma: no cover - the coordinator stays within capacity
            raise RuntimeError("no Ray worker is ready")
        self.held.append(chunk)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.held:
            ready = [s for s in self.slots if s.state == "ready"]
            slot = place(self.held[0], ready, lambda s: [c for _, c in s.inflight], self.concurrent)
            if slot is None:
                return
            self._send(slot, self.held.popleft())

    def _send(self, slot: _Slot, chunk: Chunk) -> None:
        ref = slot.actor.process.remote(chunk)
        slot.inflight.append((ref, chunk))
        self._by_ref[ref] = slot

    def poll(self, timeout: float) -> list[Completion]:
        ray = self._ray
        starting = {s.ready_ref: s for s in self.slots if s.state == "starting"}
        refs = [*self._by_ref, *starting]
        out: list[Completion] = []
        if not refs:  # pragma: no cover - there is always a slot starting or running
            time.sleep(timeout)
            return out
        done, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if done:
            done, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in done:
            if ref in starting:
                self._on_ready(starting[ref], ref, out)
            elif ref in self._by_ref:
                self._on_result(self._by_ref[ref], ref, out)
        self._check_startup()
        self._dispatch()
        return out

    def _on_ready(self, slot: _Slot, ref: Any, out: list[Completion]) -> None:
        ray = self._ray
        try:
            node_id, error = ray.get(ref)
        except (ray.exceptions.RuntimeEnvSetupError, ray.exceptions.ActorUnschedulableError) as exc:
            raise WorkerInitError(_first_lines(str(exc))) from None
        except ray.exceptions.RayError as exc:
            if getattr(exc, "actor_init_failed", False):
                raise WorkerInitError(_first_lines(str(exc))) from None
            slot.start_failures += 1
            if slot.start_failures >= MAX_START_FAILURES:
                raise WorkerInitError(
                    f"a Ray worker died {slot.start_failures} times while starting: {_first_lines(str(exc))}"
                ) from None
            self._start_slot(slot)
            return
        if error is not None:
            raise WorkerInitError(error)
        slot.state = "ready"
        slot.node_id = node_id
        slot.ready_ref = None
        if self._start_grace_until == 0.0:  # the first actor of the run is ready
            self._start_grace_until = time.monotonic() + START_GRACE_SECONDS
        if all(s.state == "ready" for s in self.slots):
            self._start_grace_until = None

    def _on_result(self, slot: _Slot, ref: Any, out: list[Completion]) -> None:
        ray = self._ray
        try:
            result = ray.get(ref)
        except _worker_gone(ray) as exc:
            self._lose_slot(slot, _actor_death_reason(exc, slot, self._node_alive(slot.node_id)), out)
            return
        except ray.exceptions.RayTaskError as exc:  # BatchProcessor itself raised: a bug, not an item
            chunk = self._pop(slot, ref)
            out.append(Crashed(chunk, f"the Ray worker failed: {_first_lines(str(exc))}"))
            return
        except ray.exceptions.RayError as exc:  # object lost with its node, etc.: run it again
            chunk = self._pop(slot, ref)
            out.append(Crashed(chunk, f"the result was lost: {_first_lines(str(exc))}", blame=False))
            return
        out.append(Completed(self._pop(slot, ref), result))

    def _pop(self, slot: _Slot, ref: Any) -> Chunk:
        del self._by_ref[ref]
        for i, (r, chunk) in enumerate(slot.inflight):
            if r == ref:
                del slot.inflight[i]
                return chunk
        raise RuntimeError("result for a chunk the executor does not hold")  # pragma: no cover

    def _lose_slot(self, slot: _Slot, reason: tuple[str, bool], out: list[Completion]) -> None:
        """The slot's actor is gone: report what it held and start a replacement."""
        text, node_lost = reason
        # one lane: calls run in order, only the first one was running; lanes: all of them were
        # running side by side, and any may hold the item that killed it
        blame = not node_lost
        while slot.inflight:
            ref, chunk = slot.inflight.popleft()
            self._by_ref.pop(ref, None)
            out.append(Crashed(chunk, text, blame))
            blame = blame and self.concurrent
        with contextlib.suppress(Exception):
            self._ray.kill(slot.actor, no_restart=True)
        log.warning("ray.worker_lost", slot=slot.index, node_lost=node_lost, reason=text)
        self._start_slot(slot)  # pending until the cluster has a free CPU for it

    def _node_alive(self, node_id: str | None) -> bool:
        if node_id is None:
            return True
        try:
            return any(n["NodeID"] == node_id and n["Alive"] for n in self._ray.nodes())
        except Exception:  # pragma: no cover - GCS unreachable
            return False

    def _check_startup(self) -> None:
        if any(s.state == "ready" for s in self.slots):
            self._waiting_since = None
            return
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        if now - self._waiting_since > self.startup_timeout:
            res = self._ray.cluster_resources().get("CPU", 0)
            free = self._ray.available_resources().get("CPU", 0)
            raise WorkerInitError(
                f"no Ray worker started within {self.startup_timeout:.0f} s "
                f"(cluster CPUs: {res:g}, free: {free:g}); is the cluster busy or shrinking?"
            )

    def shutdown(self, *, abort: bool = False) -> None:
        self.held.clear()
        ray = self._ray
        if ray is None:
            return
        for slot in self.slots:
            if slot.actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor, no_restart=True)
        self.slots = []
        self._by_ref.clear()

    def close(self) -> None:
        """Stop the local cluster this executor started (a joined cluster keeps running)."""
        ray = self._ray
        try:
            if ray is not None and self._owned and ray.is_initialized():
                ray.shutdown()
        finally:
            self._owned = False
            reaper, self._reaper = self._reaper, None
            if reaper is not None:  # it kills whatever of the cluster ray.shutdown left behind
                with contextlib.suppress(Exception):
                    reaper.stdin.close()
                    reaper.wait(timeout=10)


def _quiet_token_auth() -> None:
    """Give a new local cluster token authentication, as ``ray.init`` would by default, but set
    explicitly, so Ray does not print its "token authentication is enabled" warning on every
    start. A RAY_AUTH_MODE chosen by the user is left alone."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:  # the same call ray.init makes (it sets RAY_AUTH_MODE and refreshes Ray's config)
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
    except ImportError:  # pragma: no cover - another Ray version: keep its default and warning
        return
    _enable_token_auth()


def _start_reaper(ray: Any) -> Any:
    """Start the watchdog that kills the local cluster's processes when this process ends, even by
    SIGKILL (see ray_reaper). Linux only; best effort: it relies on a private Ray attribute."""
    if not sys.platform.startswith("linux"):
        return None
    from distmap.executors import ray_reaper

    try:
        node = ray._private.worker._global_node
        roots = [info.process.pid for infos in node.all_processes.values() for info in infos]
    except Exception as exc:  # pragma: no cover - a Ray without that attribute
        log.debug("ray.reaper_unavailable", cause=f"{type(exc).__name__}: {exc}")
        return None
    return ray_reaper.start(roots) if roots else None


def _worker_gone(ray: Any) -> tuple[type[BaseException], ...]:
    """Errors meaning the actor's process (or its node) is gone."""
    e = ray.exceptions
    return (
        e.RayActorError,
        e.OutOfMemoryError,
        e.WorkerCrashedError,
        e.NodeDiedError,
        e.LocalRayletDiedError,
    )


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast with a clear message when a cluster address does not answer."""
    target = address.removeprefix("ray://")
    if target == "auto" or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(
            f"cannot reach the Ray cluster at {address}: {exc} "
            "(start one with `ray start --head`, or leave --address out to run a local cluster)"
        ) from None


def _actor_death_reason(exc: Exception, slot: _Slot, node_alive: bool) -> tuple[str, bool]:
    text = str(exc)
    lowered = text.lower()
    if not node_alive or "node has died" in lowered or "node died" in lowered:
        return "the Ray node running the worker was lost", True
    if "OutOfMemory" in text or "out of memory" in lowered:
        return "the Ray worker was killed by Ray's memory monitor (out of memory)", False
    pid = f" (pid {exc.pid})" if getattr(exc, "pid", None) else ""
    detail = _first_lines(text, 1)
    return f"the Ray worker process died{pid}: {detail}", False


def _first_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:n])[:500]
