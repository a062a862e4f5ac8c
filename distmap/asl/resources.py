"""The resources file: what each Task ``Resource`` of a state machine runs here.

A YAML or JSON file with sections (all optional)::

    Resources:            # a Task "Resource" string, matched exactly -> module:function
      arn:aws:lambda:us-east-1:123456789012:function:Enrich: jobs.examples:enrich
      arn:aws:states:::sns:publish: jobs.fakes:publish

A mapping without sections is read as ``Resources``. Functions are imported lazily, in the
process that calls them (the interpreter, or a worker of a Distributed Map), from the working
directory. A ``Resources`` object is picklable: it travels to local and Ray workers as the
mapping of strings it was built from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from distmap.config.parse import parse_document
from distmap.errors import ConfigError

SECTIONS = ("Resources",)


class Resources:
    """Task resource strings -> Python callables (``module:function``)."""

    def __init__(
        self, mapping: Mapping[str, str | Callable[..., Any]] | None = None, *, source: str | None = None
    ):
        self.source = source
        self.mapping: dict[str, str | Callable[..., Any]] = {}
        for resource, target in (mapping or {}).items():
            where = f"Resources.{resource}"
            if not isinstance(resource, str) or not resource:
                raise ConfigError(
                    "Resources", f"keys must be resource strings, got {resource!r}", source=source
                )
            if isinstance(target, str):
                mod, _, attr = target.partition(":")
                if not mod or not attr or not all(p.isidentifier() for p in mod.split(".") + attr.split(".")):
                    raise ConfigError(where, f"must be module:function, got {target!r}", source=source)
            elif not callable(target):
                raise ConfigError(
                    where, f"must be module:function or a callable, got {target!r}", source=source
                )
            self.mapping[resource] = target
        self._resolved: dict[str, Callable[..., Any]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Resources:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError("--resources", f"cannot read {p}: {exc.strerror or exc}") from None
        data = parse_document(text, str(p)) if text.strip() else {}
        return cls.from_data(data, source=str(p))

    @classmethod
    def from_data(cls, data: Any, *, source: str | None = None) -> Resources:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError("", "a resources file must be a mapping", source=source)
        if any(k in SECTIONS for k in data):
            unknown = [k for k in data if k not in SECTIONS]
            if unknown:
                raise ConfigError(
                    str(unknown[0]), f"unknown section; known sections: {', '.join(SECTIONS)}", source=source
                )
            data = data.get("Resources") or {}
            if not isinstance(data, Mapping):
                raise ConfigError(
                    "Resources", "must be a mapping of resource -> module:function", source=source
                )
        return cls(data, source=source)

    def __getstate__(self) -> dict[str, Any]:
        return {"source": self.source, "mapping": self.mapping}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.source = state["source"]
        self.mapping = state["mapping"]
        self._resolved = {}

    def has(self, resource: str) -> bool:
        return resource in self.mapping

    def missing(self, resources: list[str]) -> list[str]:
        """The resource strings (in order, without repeats) that this file does not map."""
        seen: dict[str, None] = {}
        for r in resources:
            if r not in self.mapping:
                seen.setdefault(r)
        return list(seen)

    def function(self, resource: str) -> Callable[..., Any]:
        fn = self._resolved.get(resource)
        if fn is None:
            from distmap.processor import resolve_function

            fn = resolve_function(self.mapping[resource])
            self._resolved[resource] = fn
        return fn

    def check_importable(self) -> None:
        """Import every mapped function now, so a typo fails before the execution starts."""
        for resource, target in self.mapping.items():
            try:
                self.function(resource)
            except Exception as exc:
                raise ConfigError(
                    f"Resources.{resource}",
                    f"cannot load {target!r}: {type(exc).__name__}: {exc} "
                    "(it must be importable from the working directory)",
                    source=self.source,
                ) from None
