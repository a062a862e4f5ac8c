"""Security rules (issue 12, item 5): the import path, masked causes, safe names, file modes and
YAML alias bombs. Every CLI test runs the real ``distmap`` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

#: Modules distmap, its dependencies or the standard library import lazily, during a run.
SHADOWED = [
    "csv", "yaml", "decimal", "uuid", "hashlib", "base64", "smart_open", "rich", "colorama",
    "better_exceptions", "orjson", "tenacity", "ray", "boto3",
]  # fmt: skip


def cli(
    *args: str, cwd: Path, launcher: str = "module", env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real command: ``python -m distmap`` or the installed ``distmap`` script."""
    e = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    cmd = (
        [sys.executable, "-m", "distmap"]
        if launcher == "module"
        else [str(Path(sys.executable).parent / "distmap")]
    )
    return subprocess.run([*cmd, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=180)


def plant_shadows(cwd: Path) -> Path:
    """Put a module named like each of SHADOWED in ``cwd``; importing one leaves a mark."""
    marks = cwd / "marks"
    marks.mkdir()
    for name in SHADOWED:
        (cwd / f"{name}.py").write_text(
            f"open({str(marks / name)!r}, 'w').close()\nraise ImportError('shadow {name} imported')\n"
        )
    (cwd / "myjob.py").write_text(
        "def shout(item):\n    return {k: str(v).upper() for k, v in item.items()}\n"
    )
    return marks


def csv_job(cwd: Path, n: int = 50) -> Path:
    (cwd / "in.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(n)))
    job = cwd / "job.yaml"
    job.write_text(
        "ItemReader:\n  Source: in.csv\n  ReaderConfig: {InputType: CSV}\n"
        "ItemProcessor:\n  Function: myjob:shout\n"
        "ResultWriter:\n  Destination: out\n"
    )
    return job


@pytest.mark.parametrize("launcher", ["module", "script"])
def test_working_directory_cannot_shadow_distmap_imports_but_serves_the_function(tmp_path, launcher):
    """`distmap run` of a CSV job from a directory holding csv.py, yaml.py, ... imports none of
    them (they would shadow the standard library and distmap's dependencies), while the item
    function's own module (myjob.py) is still loaded from the working directory."""
    marks = plant_shadows(tmp_path)
    job = csv_job(tmp_path)
    r = cli("run", str(job), cwd=tmp_path, launcher=launcher)
    assert sorted(p.name for p in marks.iterdir()) == []
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["itemCounts"]["succeeded"] == 50


def test_function_named_like_a_stdlib_module_is_not_loaded_from_the_working_directory(tmp_path):
    """A function given as csv:thing never loads ./csv.py: the standard library wins and the
    job is refused with a clear error (exit 2), naming the field."""
    marks = plant_shadows(tmp_path)
    job = csv_job(tmp_path)
    job.write_text(job.read_text().replace("myjob:shout", "csv:shout"))
    r = cli("run", str(job), cwd=tmp_path)
    assert r.returncode == 2
    assert "ItemProcessor.Function" in r.stderr and "Traceback" not in r.stderr
    assert list(marks.iterdir()) == []


def test_execute_does_not_import_shadows_from_the_working_directory(tmp_path):
    """`distmap execute` with a DISTRIBUTED Map (forked workers) and a Task mapped to a function
    in the working directory: the function loads, no shadow module does."""
    marks = plant_shadows(tmp_path)
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "T",
                    "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::x:shout", "End": True}},
                },
                "End": True,
            }
        },
    }
    (tmp_path / "sm.asl.json").write_text(json.dumps(definition))
    (tmp_path / "resources.yaml").write_text("Resources:\n  arn:aws:states:::x:shout: myjob:shout\n")
    r = cli(
        "execute", "sm.asl.json", "--resources", "resources.yaml",
        "--input", json.dumps({"xs": [{"a": "x"}, {"a": "y"}]}), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    response = json.loads(r.stdout)
    assert response["status"] == "SUCCEEDED", response
    assert json.loads(response["output"]) == [{"a": "X"}, {"a": "Y"}]
    assert list(marks.iterdir()) == []


@pytest.mark.ray
@pytest.mark.slow
def test_ray_workers_do_not_import_shadows_from_the_driver_directory(tmp_path):
    """On the Ray backend, actors get the driver's directory on sys.path from Ray: distmap takes
    it off again, and loads only the item function's module from there."""
    pytest.importorskip("ray")
    marks = plant_shadows(tmp_path)
    (tmp_path / "ray.py").unlink()  # the driver must import the real Ray (it is never shadowed either)
    job = csv_job(tmp_path)
    r = cli("run", str(job), "--backend", "ray", "--num-cpus", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["itemCounts"]["succeeded"] == 50
    assert list(marks.iterdir()) == []
