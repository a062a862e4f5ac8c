"""The Python API: ``distmap.run(job)``, the same thing ``distmap run CONFIG`` does."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distmap.config.model import MapJob
from distmap.config.parse import load_job, parse_job
from distmap.coordinator import Coordinator, ProgressHook
from distmap.errors import ConfigError
from distmap.executors import BACKENDS, make_executor
from distmap.imports import load_hint
from distmap.names import run_id_problem
from distmap.processor import resolve_function
from distmap.run_state import MapRunResult
from distmap.runs import start_journal
from distmap.stops import StopRequests


def _as_job(job: MapJob | Mapping[str, Any] | str | os.PathLike[str], overrides: list[str] | None) -> MapJob:
    if isinstance(job, MapJob):
        if overrides:
            raise ConfigError("--set", "overrides apply to job files and mappings, not to a built MapJob")
        return job
    if isinstance(job, Mapping):
        from copy import deepcopy

        from distmap.config.parse import apply_override

        data = deepcopy(dict(job))
        for item in overrides or []:
            apply_override(data, item)
        return parse_job(data, base_dir=os.getcwd())
    return load_job(Path(job), overrides)


def check_function(job: MapJob) -> None:
    """Import the item function now, so a typo fails before any item is read."""
    fn = job.processor.function
    try:
        resolve_function(fn)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            "ItemProcessor.Function",
            f"cannot load {fn!r}: {type(exc).__name__}: {exc}{load_hint(fn)}",
            source=job.source_file,
        ) from None


def run(
    job: MapJob | Mapping[str, Any] | str | os.PathLike[str],
    *,
    backend: str = "local",
    overrides: list[str] | None = None,
    run_id: str | None = None,
    progress: ProgressHook | None = None,
    handle_signals: bool = True,
    mask_causes: bool = True,
    stops: StopRequests | None = None,
    journal: bool = True,
    **executor_options: Any,
) -> MapRunResult:
    """Run a Distributed Map job and return its result.

    Args:
        job: a ``MapJob``, an ASL-shaped mapping, or the path of a YAML / JSON job file.
        backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (actors on a Ray
            cluster: the one already initialised in this process, else ``address`` /
            ``RAY_ADDRESS``, else a new local cluster that is stopped when the run ends).
        overrides: ``["Field.Sub=value", ...]`` applied to a file or mapping before validation.
        run_id: the map run id (default: a new UUID); results go to ``<destination>/<run_id>/``.
        progress: called about five times a second with a dict of running counts: ``mapRunId``,
            ``succeeded``, ``failed``, ``timedOut``, ``running`` (chunks), ``total`` (items, once
            known), ``itemsRead``, ``bytesRead`` / ``totalBytes`` (the input's), ``maxItems``,
            ``final``. ``distmap.progress.fraction_done`` turns it into a share done.
        handle_signals: stop on SIGINT / SIGTERM (main thread only): the first stops gracefully
            (status ABORTED, manifest written), the second at once (no manifest).
        mask_causes: mask credentials (AWS keys, ``secret=`` / ``password=`` / ``token=`` values,
            URL passwords, bearer tokens, presigned signatures) in the ``Cause`` of FAILED
            records, as in logs. On by default; ``False`` keeps causes verbatim.
        stops: a ``distmap.stops.StopRequests`` already installed by the caller (the CLI installs
            one before loading the job); ``stops.request()`` from another thread stops the run.
        journal: keep a run journal (``run.json``, ``journal.jsonl`` in the run's result directory,
            or under ``DISTMAP_STATE_DIR`` without a ResultWriter), so ``distmap.resume`` can
            continue the run after a crash and ``distmap describe`` can follow it. S3 results
            are not journaled.
        executor_options: passed to the backend's executor: ``workers``, ``per_worker_window``
            (local); ``address``, ``num_cpus``, ``ship``, ``runtime_env``, ``dashboard``,
            ``startup_timeout``, ``init_options`` (ray; see ``RayExecutor``).

    Raises:
        ConfigError: the job is invalid (nothing was run).
        BackendUnavailable: Ray is not installed or the cluster cannot be reached.
        ItemReaderFailed / ResultWriterFailed: the source or destination cannot be opened
            (nothing was run).

    A run that starts always returns a ``MapRunResult``; failures of items or of the run
    (threshold exceeded, malformed input found mid-run) are reported in it, not raised.
    """
    mj = _as_job(job, overrides)
    if run_id is not None and (problem := run_id_problem(run_id)):
        raise ConfigError("run_id", problem)
    check_function(mj)
    if backend not in BACKENDS:
        raise ConfigError("backend", f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    run_id = run_id or str(uuid.uuid4())
    durable = start_journal(mj, run_id) if journal else None
    executor = make_executor(backend, **executor_options)
    return Coordinator(
        mj,
        executor,
        run_id=run_id,
        progress=progress,
        handle_signals=handle_signals,
        mask_causes=mask_causes,
        stops=stops,
        durable=durable,
    ).run()
