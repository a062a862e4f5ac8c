"""The architecture's layers hold: no module imports from a layer above its own.

Every ``import`` / ``from ... import`` of a ``distmap`` module is checked, including imports
inside functions (a lazy import upwards is still an upward dependency). The layers are the ones
the README's Architecture section draws.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "distmap"

#: Lowest first. A unit is a top-level module or subpackage of ``distmap``.
LAYERS: list[set[str]] = [
    {"errors"},
    {"storage", "memory", "records", "run_state", "tolerance", "dataflow", "imports", "names", "stops"},
    {"config", "logs"},
    {"retry", "readers", "results", "journal"},
    {"contract"},
    {"batch"},
    {"processor"},
    {"executors"},
    {"checkpoint"},
    {"journaled"},
    {"coordinator", "progress"},
    {"runs"},
    {"describe"},
    {"asl"},
    {"api"},
    {"cli_runs"},
    {"cli"},
    {"__main__", "__init__"},
]


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distmap":
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "distmap")
    return found


def _layer_of(unit: str) -> int:
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"distmap/{unit} is in no layer: add it to LAYERS and to the README")


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_imports_from_a_layer_above_its_own(path: Path):
    """Each distmap module imports only from its own unit or from lower layers."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    unit = rel.parts[1]
    mine = _layer_of(unit)
    for line, module in _imports(path):
        other = _unit(module)
        if other == unit or module == "distmap":
            continue
        assert _layer_of(other) < mine, f"{rel}.py:{line} imports {module}, a layer above {unit}"


def test_every_unit_has_a_layer():
    """A new module or package must be placed in a layer (and in the README's drawing)."""
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    units.discard("__pycache__")
    for unit in units:
        _layer_of(unit)


#: The state-machine interpreter (``distmap/asl``), lowest first. Type-only imports (under
#: ``if TYPE_CHECKING:``) are not dependencies and are not checked.
ASL_LAYERS: list[set[str]] = [
    {"aws", "choice", "path_values", "execution_types", "query_language"},
    {"resources", "choice_flow"},
    {"lambdas", "callbacks", "state_base"},
    {"children"},
    {"integrations"},
    {"distributed", "task_state"},
    {"machine"},
    {"execution"},
    {"__init__"},
]


def _runtime_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                type_only.update(id(n) for n in ast.walk(sub))
    found = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("distmap.asl"):
            names = (
                [node.module]
                if node.module != "distmap.asl"
                else [f"distmap.asl.{a.name}" for a in node.names]
            )
            found.extend((node.lineno, n) for n in names)
    return found


ASL = sorted((PACKAGE / "asl").glob("*.py"))


@pytest.mark.parametrize("path", ASL, ids=lambda p: p.name)
def test_the_state_machine_modules_read_top_down(path: Path):
    """Inside distmap/asl no module imports one above it (no import cycle, lazy or not): the
    lower ones get what they need from above passed in (``Run.run_child``, ``ChildMachine``'s
    classes, ``Resources.parsed_machine``'s parser)."""

    def layer(name: str) -> int:
        for i, group in enumerate(ASL_LAYERS):
            if name in group:
                return i
        raise AssertionError(f"distmap/asl/{name}.py is in no layer: add it to ASL_LAYERS")

    mine = layer(path.stem)
    for line, module in _runtime_imports(path):
        other = module.split(".")[2]
        if other != path.stem:
            assert layer(other) < mine, f"asl/{path.name}:{line} imports {module}, a layer above"
