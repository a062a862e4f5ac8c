"""Which JSONata library from PyPI distmap uses: speed per item and conformance, measured.

Two measurements per library, in one process each (``--library NAME``):

``conformance``
    The JSONata reference test suite (jsonata-js ``test/test-suite``: ``groups/*/case*.json``
    and ``datasets/``), every case without a time or depth limit: the share of cases whose result
    (or expected error) the library reproduces. Pass ``--suite DIR`` (the ``test-suite`` folder).
``cross thread``
    whether an expression compiled on one thread can be evaluated on another.
``per item``
    An ItemSelector evaluated once per item, as a Map does: ``{"id": $states.context.Map.Item.
    Value.id, "name": ..., "batch": $states.input.batch}`` compiled once and evaluated ``--items``
    times with a fresh ``$states`` binding; reported in microseconds per item, beside the same
    selector written as a JSONPath payload template (distmap's own engine) in the same run.

    python -m benchmarks.jsonata_libraries --suite /path/to/test-suite [--items 20000]

Without ``--library`` every importable candidate runs in turn, each in a subprocess of the same
interpreter; a library whose module name clashes with another's (jsonata-rs and jsonata-python
both install ``jsonata``) is measured from a venv of its own with ``--python``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SELECTOR = '{"id": $states.context.Map.Item.Value.id, "name": $states.context.Map.Item.Value.name, "batch": $states.input.batch}'
CANDIDATES = ("jsonata-python", "jsonatapy", "jlens", "jsonata2py", "jsonata-rs")


def _compiler(library: str) -> Callable[[str], Callable[[Any, dict[str, Any] | None], Any]]:
    """``compile(expr) -> evaluate(data, bindings)`` for one library."""
    if library == "jsonata-python":
        import jsonata

        def compile_python(expr: str) -> Callable[[Any, dict[str, Any] | None], Any]:
            compiled = jsonata.Jsonata(expr)
            return lambda data, bindings: compiled.evaluate(data, bindings)

        return compile_python
    if library == "jsonatapy":
        import jsonatapy

        def compile_py(expr: str) -> Callable[[Any, dict[str, Any] | None], Any]:
            compiled = jsonatapy.compile(expr)
            return lambda data, bindings: compiled.evaluate(data, bindings)

        return compile_py
    if library == "jlens":
        import jlens

        def compile_jlens(expr: str) -> Callable[[Any, dict[str, Any] | None], Any]:
            compiled = jlens.Expression(expr)
            return lambda data, bindings: compiled.evaluate(data, bindings) if bindings else compiled.evaluate(data)

        return compile_jlens
    if library == "jsonata2py":
        import jsonata2py

        def compile_j2p(expr: str) -> Callable[[Any, dict[str, Any] | None], Any]:
            compiled = jsonata2py.compile(expr)

            def evaluate(data: Any, bindings: dict[str, Any] | None) -> Any:
                bound = jsonata2py.JsonataBindings()
                for k, v in (bindings or {}).items():
                    bound.bind_value(k, v)
                return compiled.evaluate(data, bound)

            return evaluate

        return compile_j2p
    if library == "jsonata-rs":
        import jsonata

        def compile_rs(expr: str) -> Callable[[Any, dict[str, Any] | None], Any]:
            compiled = jsonata.Jsonata(expr)

            def evaluate(data: Any, bindings: dict[str, Any] | None) -> Any:
                if bindings:
                    for k, v in bindings.items():
                        compiled.assign(k, v)
                return compiled.evaluate(data)

            return evaluate

        return compile_rs
    raise SystemExit(f"unknown library {library!r} (one of {', '.join(CANDIDATES)})")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def conformance(library: str, suite: Path) -> dict[str, Any]:
    compile_ = _compiler(library)
    datasets = {p.stem: json.loads(p.read_text()) for p in (suite / "datasets").glob("*.json")}
    passed = failed = skipped = 0
    for case_file in sorted((suite / "groups").glob("*/case*.json")):
        cases = json.loads(case_file.read_text())
        for case in cases if isinstance(cases, list) else [cases]:
            if "timelimit" in case or "depth" in case or "function" in json.dumps(case.get("bindings", {})):
                skipped += 1
                continue
            data = case["data"] if "data" in case else datasets.get(case.get("dataset") or "")
            try:
                got = compile_(case["expr"])(data, case.get("bindings") or None)
                ok = (
                    ("result" in case and _same(got, case["result"]))
                    or (case.get("undefinedResult") is True and got is None)
                )
            except RecursionError:
                ok = False
            except Exception:
                ok = "code" in case
            passed += ok
            failed += not ok
    return {"passed": passed, "failed": failed, "skipped": skipped, "rate": passed / max(1, passed + failed)}


def per_item(library: str, items: int) -> dict[str, float]:
    compile_ = _compiler(library)
    evaluate = compile_(SELECTOR)
    state_input = {"batch": "b-7", "source": "s3://bucket/key"}
    values = [{"id": i, "name": f"item-{i}", "size": i * 3} for i in range(items)]
    start = time.perf_counter()
    for i, value in enumerate(values):
        ctx = {"Map": {"Item": {"Index": i, "Value": value}}}
        out = evaluate(None, {"states": {"input": state_input, "context": ctx}})
    jsonata_s = time.perf_counter() - start
    assert out == {"id": items - 1, "name": f"item-{items - 1}", "batch": "b-7"}, out
    from distmap.dataflow.templates import compile_payload

    builder = compile_payload(
        {"id.$": "$$.Map.Item.Value.id", "name.$": "$$.Map.Item.Value.name", "batch.$": "$.batch"}
    )
    start = time.perf_counter()
    for i, value in enumerate(values):
        builder(state_input, {"Map": {"Item": {"Index": i, "Value": value}}})
    jsonpath_s = time.perf_counter() - start
    return {"jsonata_us_per_item": jsonata_s / items * 1e6, "jsonpath_us_per_item": jsonpath_s / items * 1e6}


def cross_thread(library: str) -> str:
    """Whether an expression compiled on one thread evaluates on another (distmap's Map and
    Parallel states run their iterations on thread pools): "ok" or the failure."""
    import threading

    evaluate = _compiler(library)("$states.input.a + 1")
    box: dict[str, Any] = {}

    def other() -> None:
        try:
            box["value"] = evaluate(None, {"states": {"input": {"a": 1}}})
        except BaseException as exc:
            box["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    return "ok" if box.get("value") == 2 else box.get("error", f"wrong result {box.get('value')!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, required=True, help="the jsonata-js test/test-suite folder")
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--library", choices=CANDIDATES)
    parser.add_argument("--python", default=sys.executable, help="interpreter for the subprocesses")
    args = parser.parse_args(argv)
    if args.library:
        row = {
            "library": args.library,
            "cross_thread": cross_thread(args.library),
            **per_item(args.library, args.items),
            **conformance(args.library, args.suite),
        }
        print(json.dumps(row))
        return 0
    for library in CANDIDATES:
        cmd = [args.python, "-m", "benchmarks.jsonata_libraries", "--suite", str(args.suite),
               "--items", str(args.items), "--library", library]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        print(done.stdout.strip() or json.dumps({"library": library, "error": done.stderr.strip()[-300:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
