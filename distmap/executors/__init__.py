"""Executors run chunks; the coordinator decides what to run. See ``base.py`` for the contract."""

from __future__ import annotations

from typing import Any

BACKENDS = ("local", "ray", "inline")


def make_executor(backend: str, **options: Any) -> Any:
    """Build the executor for a backend name. Heavy imports happen only for the chosen one."""
    if backend == "local":
        from distmap.executors.local import LocalExecutor

        return LocalExecutor(**options)
    if backend == "inline":
        from distmap.executors.inline import InlineExecutor

        return InlineExecutor(**options)
    if backend == "ray":
        from distmap.executors.ray_backend import RayExecutor

        return RayExecutor(**options)
    raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
