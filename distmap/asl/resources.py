"""The resources file: what each Task of a state machine runs here.

A YAML or JSON file with sections (all optional)::

    Resources:      # a Task "Resource" string -> what runs it
      arn:aws:lambda:us-east-1:123456789012:function:Enrich: jobs.examples:enrich  # a plain function
      arn:aws:states:::sns:publish: boto3              # a real boto3 call (moto, LocalStack or AWS)
      arn:aws:states:::dynamodb:putItem: {function: jobs.fakes:put_item}
      arn:aws:states:::aws-sdk:*: boto3                # a trailing * matches every resource it prefixes
    Functions:      # Lambda functions (lambda:invoke, bare Lambda ARNs) -> module:function
      ProcessOrders: jobs.orders:process_orders        # name, partial or full ARN, optional :qualifier
    StateMachines:  # states:startExecution targets -> definition file (relative to this file)
      arn:aws:states:us-east-1:123456789012:stateMachine:Child: child.asl.json
    Activities:     # activity ARN (or name) -> the activity worker, module:function
      arn:aws:states:us-east-1:123456789012:activity:Approve: jobs.orders:approve

A mapping without sections is read as ``Resources``. A target is ``module:function``, ``boto3``
or ``echo`` (or the object forms ``{function: module:function}``, ``{boto3: true}``,
``{echo: true}``). Functions are imported lazily, in the process that calls them (the
interpreter, or a worker of a Distributed Map), from the working directory. State machine
definitions are read when the file is loaded, so a ``Resources`` object carries them: it is
picklable and travels to local and Ray workers as plain strings and mappings.

How a Task finds its target (first match wins): the exact ``Resources`` entry for its Resource
(or for the Resource without its ``.waitForTaskToken`` / ``.sync`` / ``.sync:2`` suffix); then
``Functions`` / ``StateMachines`` / ``Activities`` for Lambda, startExecution and activity Tasks;
then the longest matching ``*`` pattern in ``Resources``; then the stub (``--stub echo``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distmap.config.parse import parse_document, read_document
from distmap.errors import ConfigError
from distmap.imports import load_hint

SECTIONS = ("Resources", "Functions", "StateMachines", "Activities")
MODES = ("boto3", "echo")
INTEGRATION_SUFFIXES = (".waitForTaskToken", ".sync:2", ".sync")

Target = str | Callable[..., Any]
"""``module:function``, a callable, ``boto3`` or ``echo``."""

# Lambda's FunctionName grammar (API reference, Invoke): name, partial ARN or full ARN, each with
# an optional :version or :alias qualifier.
_FUNCTION_NAME = re.compile(
    r"^(?:arn:(?P<partition>aws[a-zA-Z-]*):lambda:)?"
    r"(?:(?P<region>[a-z]{2}(?:-gov)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)


@dataclass(frozen=True)
class FunctionRef:
    """A parsed Lambda FunctionName; region / account are None when the name leaves them out."""

    name: str
    region: str | None = None
    account: str | None = None
    qualifier: str | None = None
    partition: str = "aws"

    @classmethod
    def parse(cls, text: str) -> FunctionRef | None:
        m = _FUNCTION_NAME.match(text)
        if m is None:
            return None
        if text.startswith("arn:") and (m["region"] is None or m["account"] is None):
            return None  # a full ARN names its region and account
        if m["region"] is not None and m["account"] is None:
            return None
        return cls(m["name"], m["region"], m["account"], m["qualifier"], m["partition"] or "aws")

    def arn(self, region: str, account: str, *, qualified: bool = True) -> str:
        base = f"arn:{self.partition}:lambda:{self.region or region}:{self.account or account}:function:{self.name}"
        return f"{base}:{self.qualifier}" if qualified and self.qualifier else base


def split_suffix(resource: str) -> tuple[str, str | None]:
    """``arn:...:sqs:sendMessage.waitForTaskToken`` -> (``arn:...:sqs:sendMessage``, ``waitForTaskToken``)."""
    for suffix in INTEGRATION_SUFFIXES:
        if resource.endswith(suffix):
            return resource[: -len(suffix)], suffix[1:]
    return resource, None


class Resources:
    """What the Tasks of a state machine run: see the module docstring for the file format."""

    def __init__(
        self,
        mapping: Mapping[str, Any] | None = None,
        *,
        source: str | None = None,
        functions: Mapping[str, Any] | None = None,
        state_machines: Mapping[str, Any] | None = None,
        activities: Mapping[str, Any] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        stub: str | None = None,
    ) -> None:
        self.source = source
        self.base_dir = str(base_dir or (Path(source).parent if source else Path.cwd()))
        self.mapping: dict[str, Target] = {
            k: _target(v, f"Resources.{k}", source, modes=MODES)
            for k, v in _entries(mapping, "Resources", source)
        }
        self.functions: dict[str, Target] = {
            k: _target(v, f"Functions.{k}", source, modes=MODES)
            for k, v in _entries(functions, "Functions", source)
        }
        self.activities: dict[str, Target] = {
            k: _target(v, f"Activities.{k}", source, modes=("echo",))
            for k, v in _entries(activities, "Activities", source)
        }
        self.state_machines: dict[str, str] = {}
        self.definitions: dict[str, Mapping[str, Any]] = {}
        for key, value in _entries(state_machines, "StateMachines", source):
            self._add_state_machine(key, value)
        if stub not in (None, "echo"):
            raise ConfigError("--stub", f"must be echo, got {stub!r}")
        self.stub = stub
        self._resolved: dict[str, Callable[..., Any]] = {}
        self._function_refs = {k: FunctionRef.parse(k) for k in self.functions}
        self._machines: dict[str, Any] = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike[str], *, stub: str | None = None) -> Resources:
        p = Path(path)
        text = read_document(p, "--resources")
        data = parse_document(text, str(p)) if text.strip() else {}
        return cls.from_data(data, source=str(p), stub=stub)

    @classmethod
    def from_data(
        cls,
        data: Any,
        *,
        source: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        stub: str | None = None,
    ) -> Resources:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError("", "a resources file must be a mapping", source=source)
        if not any(k in SECTIONS for k in data):
            for key, value in data.items():  # a mis-spelt section rather than a flat mapping
                section_like = isinstance(key, str) and ":" not in key and isinstance(value, Mapping)
                if section_like and not set(value) <= {"function", *MODES}:
                    raise ConfigError(
                        key, f"unknown section; known sections: {', '.join(SECTIONS)}", source=source
                    )
            return cls(data, source=source, base_dir=base_dir, stub=stub)
        unknown = [k for k in data if k not in SECTIONS]
        if unknown:
            raise ConfigError(
                str(unknown[0]), f"unknown section; known sections: {', '.join(SECTIONS)}", source=source
            )
        return cls(
            data.get("Resources"),
            functions=data.get("Functions"),
            state_machines=data.get("StateMachines"),
            activities=data.get("Activities"),
            source=source,
            base_dir=base_dir,
            stub=stub,
        )

    def with_stub(self, stub: str | None) -> Resources:
        if stub not in (None, "echo"):
            raise ConfigError("--stub", f"must be echo, got {stub!r}")
        clone = Resources.__new__(Resources)
        clone.__setstate__({**self.__getstate__(), "stub": stub})
        return clone

    def _add_state_machine(self, key: str, value: Any) -> None:
        where = f"StateMachines.{key}"
        if isinstance(value, Mapping) and "definition" in value:
            value = value["definition"]
        if isinstance(value, Mapping):  # an inline definition (from Python)
            self.state_machines[key] = "<inline>"
            self.definitions[key] = dict(value)
            return
        if value == "echo":
            self.state_machines[key] = "echo"
            return
        if not isinstance(value, str) or not value:
            raise ConfigError(
                where, f"must be a definition file path or echo, got {value!r}", source=self.source
            )
        path = Path(value)
        if not path.is_absolute():
            path = Path(self.base_dir) / path
        definition = parse_document(read_document(path, where, source=self.source), str(path))
        if not isinstance(definition, Mapping):
            raise ConfigError(where, f"{path} does not hold a state machine definition", source=self.source)
        self.state_machines[key] = str(path)
        self.definitions[key] = definition

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "base_dir": self.base_dir,
            "mapping": self.mapping,
            "functions": self.functions,
            "activities": self.activities,
            "state_machines": self.state_machines,
            "definitions": self.definitions,
            "stub": self.stub,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.source = state["source"]
        self.base_dir = state.get("base_dir") or str(Path.cwd())
        self.mapping = state["mapping"]
        self.functions = state.get("functions", {})
        self.activities = state.get("activities", {})
        self.state_machines = state.get("state_machines", {})
        self.definitions = state.get("definitions", {})
        self.stub = state.get("stub")
        self._resolved = {}
        self._function_refs = {k: FunctionRef.parse(k) for k in self.functions}
        self._machines = {}

    # ------------------------------------------------------------------ lookups
    def has(self, resource: str) -> bool:
        return resource in self.mapping

    def missing(self, resources: list[str]) -> list[str]:
        """The resource strings (in order, without repeats) with no exact ``Resources`` entry."""
        seen: dict[str, None] = {}
        for r in resources:
            if r not in self.mapping:
                seen.setdefault(r)
        return list(seen)

    def exact(self, resource: str) -> Target | None:
        """The ``Resources`` entry for this exact Resource, or for it without its suffix."""
        if resource in self.mapping:
            return self.mapping[resource]
        base, suffix = split_suffix(resource)
        return self.mapping.get(base) if suffix else None

    def pattern(self, resource: str) -> Target | None:
        """The longest ``Resources`` key ending in ``*`` that prefixes this Resource."""
        best: tuple[int, Target] | None = None
        for key, target in self.mapping.items():
            if key.endswith("*") and resource.startswith(key[:-1]) and (best is None or len(key) > best[0]):
                best = (len(key), target)
        return best[1] if best else None

    def lambda_function(
        self, function_name: str, qualifier: str | None, region: str, account: str
    ) -> tuple[Target, FunctionRef] | None:
        """The ``Functions`` entry Lambda would invoke for ``FunctionName`` (+ ``Qualifier``).

        An exact key wins (so keys like ``${ProcessFunctionArn}`` work). Otherwise names resolve
        as Lambda does: a name or partial ARN is in the caller's region and account; a key with a
        qualifier matches only that qualifier, a key without one matches any (the qualified key
        wins when both exist). Raises ValueError for a FunctionName Lambda would reject.
        """
        want = FunctionRef.parse(function_name)
        if function_name in self.functions:
            ref = want or FunctionRef(function_name)
            return self.functions[function_name], _qualified(ref, qualifier)
        if want is None:
            raise ValueError(f"invalid function name {function_name!r}")
        want = _qualified(want, qualifier)
        want_region, want_account = want.region or region, want.account or account
        best: tuple[int, str] | None = None
        for key, ref in self._function_refs.items():
            if ref is None or ref.name != want.name:
                continue
            if (ref.region or region) != want_region or (ref.account or account) != want_account:
                continue
            if ref.qualifier is None:
                score = 1
            elif (ref.qualifier or "$LATEST") == (want.qualifier or "$LATEST"):
                score = 2
            else:
                continue
            if best is None or score > best[0]:
                best = (score, key)
        if best is None:
            return None
        return self.functions[best[1]], FunctionRef(
            want.name, want_region, want_account, want.qualifier, want.partition
        )

    def state_machine(self, arn: str) -> str | None:
        """The ``StateMachines`` key for a StateMachineArn (exact, else by state machine name)."""
        if arn in self.state_machines:
            return arn
        name = arn.rsplit(":", 1)[-1]
        for key in self.state_machines:
            if not key.startswith("arn:") and key == name:
                return key
        return None

    def parsed_machine(self, key: str, parse: Callable[..., Any]) -> Any:
        """The child StateMachine for a ``StateMachines`` key, parsed once per process by ``parse``
        (``StateMachine.parse``: the caller's, as this module sits below the machine's)."""
        machine = self._machines.get(key)
        if machine is None:
            machine = parse(self.definitions[key], source=self.state_machines[key])
            self._machines[key] = machine
        return machine

    def activity(self, arn: str) -> Target | None:
        if arn in self.activities:
            return self.activities[arn]
        return self.activities.get(arn.rsplit(":", 1)[-1])

    # ------------------------------------------------------------------ functions
    def resolve(self, target: Target) -> Callable[..., Any]:
        """Import a ``module:function`` target (once per process), or pass a callable through."""
        if callable(target):
            return target
        fn = self._resolved.get(target)
        if fn is None:
            from distmap.processor import resolve_function

            fn = resolve_function(target)
            self._resolved[target] = fn
        return fn

    def function(self, resource: str) -> Callable[..., Any]:
        """The function mapped to an exact ``Resources`` entry (the pre-integration API)."""
        target = self.exact(resource)
        if target is None or target in MODES:
            raise KeyError(resource)
        return self.resolve(target)

    def function_targets(self) -> list[tuple[str, Target]]:
        """Every ``(section.key, module:function)`` target in the file."""
        out: list[tuple[str, Target]] = []
        for section, table in (
            ("Resources", self.mapping),
            ("Functions", self.functions),
            ("Activities", self.activities),
        ):
            out.extend((f"{section}.{k}", t) for k, t in table.items() if t not in MODES)
        return out

    def ship_specs(self) -> list[Target]:
        """The targets whose modules must reach Ray workers."""
        return [t for _, t in self.function_targets()]

    def check_importable(self) -> None:
        """Import every mapped function now, so a typo fails before the execution starts."""
        for where, target in self.function_targets():
            try:
                self.resolve(target)
            except Exception as exc:
                raise ConfigError(
                    where,
                    f"cannot load {target!r}: {type(exc).__name__}: {exc}{load_hint(target)}",
                    source=self.source,
                ) from None


def _qualified(ref: FunctionRef, qualifier: str | None) -> FunctionRef:
    if qualifier is None or qualifier == ref.qualifier:
        return ref
    if ref.qualifier is not None:
        raise ValueError(
            f"the qualifier in the function name ({ref.qualifier}) does not match Qualifier ({qualifier})"
        )
    return FunctionRef(ref.name, ref.region, ref.account, qualifier, ref.partition)


def _entries(table: Any, section: str, source: str | None) -> list[tuple[str, Any]]:
    if table is None:
        return []
    if not isinstance(table, Mapping):
        raise ConfigError(section, "must be a mapping", source=source)
    out = []
    for key, value in table.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(section, f"keys must be non-empty strings, got {key!r}", source=source)
        out.append((key, value))
    return out


def _target(value: Any, where: str, source: str | None, *, modes: tuple[str, ...]) -> Target:
    """Normalise a target: ``module:function``, a callable, or one of ``modes``."""
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise ConfigError(where, f"must have one key: function, {', '.join(modes)}", source=source)
        ((kind, arg),) = value.items()
        if kind == "function":
            value = arg
        elif kind in modes and arg is True:
            value = kind
        else:
            raise ConfigError(
                where,
                f"must be {{function: module:function}} or {{<mode>: true}} with a mode of "
                f"{', '.join(modes)}, got {dict(value)!r}",
                source=source,
            )
    if callable(value):
        return value
    if isinstance(value, str) and value in modes:
        return value
    if isinstance(value, str):
        mod, _, attr = value.partition(":")
        if mod and attr and all(p.isidentifier() for p in mod.split(".") + attr.split(".")):
            return value
    allowed = " or ".join(["module:function", *modes])
    raise ConfigError(where, f"must be {allowed}, got {value!r}", source=source)
