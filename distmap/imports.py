"""Where item functions are imported from: the import-path rule.

An item function is given as ``module:function``. Only the top-level module or package of such a
function may be loaded from the working directory (the directory ``distmap`` was started in);
the working directory is never put on ``sys.path``. So a ``csv.py``, ``yaml.py`` or ``rich.py``
lying there cannot shadow the standard library, distmap or its dependencies, which are imported
lazily (a CSV job imports ``csv`` only when its first chunk is decoded). Standard-library names,
``distmap`` and the packages it uses are never taken from the working directory, even when a
function names them.

The rule holds in every process that runs items: the coordinator, forked workers (they inherit
the finder) and Ray actors, which get the driver's working directory in ``RunSpec.workdir`` and
remove the copy Ray puts at the front of their ``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

#: Names never loaded from the working directory: the standard library, distmap, and the
#: packages distmap itself imports.
PROTECTED = frozenset(sys.stdlib_module_names) | {
    "__main__",
    "distmap",
    "boto3",
    "botocore",
    "orjson",
    "ray",
    "s3transfer",
    "smart_open",
    "structlog",
    "tenacity",
    "yaml",
}


class WorkdirFinder(importlib.abc.MetaPathFinder):
    """Finds the allowed top-level names in their directory, before anything on ``sys.path``."""

    def __init__(self) -> None:
        self.allowed: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or "." in fullname:
            return None  # submodules are found through their package's __path__
        root = self.allowed.get(fullname)
        if root is None:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [root])


_workdir: str | None = None


def _finder() -> WorkdirFinder:
    for f in sys.meta_path:
        if isinstance(f, WorkdirFinder):
            return f
    f = WorkdirFinder()
    sys.meta_path.insert(0, f)
    return f


def workdir() -> str:
    """The directory item functions' modules are loaded from (the working directory, or the
    driver's in a Ray actor)."""
    return _workdir or os.getcwd()


def adopt_workdir(path: str | None) -> None:
    """In a worker started elsewhere (a Ray actor): load functions from the driver's working
    directory ``path``, and take that directory off ``sys.path`` (Ray puts it first)."""
    global _workdir
    if not path:
        return
    _workdir = path
    drop_from_sys_path(path)


def drop_from_sys_path(path: str) -> None:
    """Remove ``path`` (and ``""``, which means the current directory) from ``sys.path``."""
    real = os.path.realpath(path)
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != real]


def allow(module: str, root: str | None = None) -> None:
    """Let the top-level package of ``module`` be loaded from ``root`` (default ``workdir()``)."""
    top = module.split(".")[0]
    if not top or top in PROTECTED:
        return
    _finder().allowed[top] = root or workdir()


def load_function(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``module:function`` under the import-path rule (or pass a callable through)."""
    if callable(spec):
        return spec
    module_name, _, attr = spec.partition(":")
    allow(module_name)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj


def function_modules(function: Any) -> list[str]:
    """Top-level module names of an item function (``module:function``, a callable, or an object
    with ``ship_modules()`` such as a state machine's child workflow), for ``allow``."""
    if hasattr(function, "ship_modules"):
        return sorted({m for spec in function.ship_modules() for m in function_modules(spec)})
    module = getattr(function, "__module__", None) if callable(function) else str(function).partition(":")[0]
    top = (module or "").split(".")[0]
    return [top] if top and top not in PROTECTED else []


def load_hint(spec: Any) -> str:
    """The advice to add when ``spec`` cannot be loaded: where its module may come from."""
    if not isinstance(spec, str):
        return ""
    top = spec.partition(":")[0].split(".")[0]
    if top in PROTECTED:
        return (
            f" ({top!r} is the name of a standard-library module, of distmap or of a package it "
            "uses, never loaded from the working directory: rename your module)"
        )
    return " (its module must be in the working directory, or installed / on PYTHONPATH)"
