"""Security rules (issue 12, item 5): the import path, masked causes, safe names, file modes and
YAML alias bombs. Every CLI test runs the real ``distmap`` command in a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_settings import EXAMPLES

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
    assert "'csv' is the name of a standard-library module" in r.stderr and "rename your module" in r.stderr
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


# --------------------------------------------------------------------------- masked causes


def failing_job(cwd: Path, n: int = 4, extra: str = "") -> Path:
    (cwd / "in.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(n)))
    job = cwd / "job.yaml"
    job.write_text(
        "ItemReader:\n  Source: in.jsonl\n  ReaderConfig: {InputType: JSONL}\n"
        "ItemProcessor:\n  Function: securityfns:leak_secrets\n"
        f"ToleratedFailurePercentage: 100\nResultWriter:\n  Destination: out\n{extra}"
    )
    return job


def failed_causes(summary: dict) -> list[str]:
    manifest = json.loads(Path(summary["manifest"]).read_text())
    root = Path(manifest["DestinationBucket"])
    causes = []
    for entry in manifest["ResultFiles"]["FAILED"]:
        causes.extend(r["Cause"] for r in json.loads((root / entry["Key"]).read_text()))
    return causes


def test_failed_record_causes_mask_credentials_by_default(tmp_path):
    """FAILED records' Cause masks an AWS secret key, a URL password and a bearer token, like
    the logs do; the rest of the message is kept."""
    from securityfns import AWS_SECRET, BEARER, URL_PASSWORD

    r = cli("run", str(failing_job(tmp_path)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    causes = failed_causes(json.loads(r.stdout))
    assert len(causes) == 4
    for cause in causes:
        assert AWS_SECRET not in cause and URL_PASSWORD not in cause and BEARER not in cause
        assert "upload failed: aws_secret_access_key=***" in cause
        assert "postgresql://app:***@db.internal" in cause and "Bearer ***" in cause


def test_no_mask_causes_keeps_causes_verbatim(tmp_path):
    """`--no-mask-causes` (Python: mask_causes=False) keeps the Cause exactly as raised."""
    from securityfns import AWS_SECRET, BEARER, URL_PASSWORD

    r = cli("run", str(failing_job(tmp_path)), "--no-mask-causes", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for cause in failed_causes(json.loads(r.stdout)):
        assert AWS_SECRET in cause and URL_PASSWORD in cause and BEARER in cause


def test_python_api_mask_causes_switch(tmp_path, monkeypatch):
    """distmap.run(..., mask_causes=False) is the Python form of the switch; the default masks."""
    from securityfns import AWS_SECRET

    import distmap

    monkeypatch.chdir(tmp_path)
    job = failing_job(tmp_path, n=2)
    masked = distmap.run(str(job), overrides=["MaxConcurrency=1"], run_id="masked")
    verbatim = distmap.run(str(job), overrides=["MaxConcurrency=1"], run_id="verbatim", mask_causes=False)
    assert all(AWS_SECRET not in c for c in failed_causes(masked.to_dict()))
    assert all(AWS_SECRET in c for c in failed_causes(verbatim.to_dict()))


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("run_id", ["a\nb", "has space", "...", "..", "a..b", ".hidden", "x/y", "", "a" * 81])
def test_bad_run_id_is_refused_with_exit_2(tmp_path, run_id):
    """--run-id must be 1-80 letters, digits, '.', '_' or '-', starting with a letter or digit,
    without '..': anything else exits 2 with a message naming --run-id, and nothing is written."""
    job = failing_job(tmp_path)
    r = cli("run", str(job), "--run-id", run_id, cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert "--run-id" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_good_run_id_is_accepted(tmp_path):
    """A run id like nightly-2026.11.25_a is fine and names the result directory."""
    r = cli("run", str(failing_job(tmp_path)), "--run-id", "nightly-2026.11.25_a", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "nightly-2026.11.25_a" / "manifest.json").is_file()


def test_python_api_refuses_bad_run_id(tmp_path):
    import distmap

    with pytest.raises(distmap.ConfigError, match="run_id"):
        distmap.run(str(failing_job(tmp_path)), run_id="two words")


@pytest.mark.parametrize("field", ["Label", "StateMachineName"])
def test_label_with_dot_dot_is_refused(tmp_path, field):
    """Label and StateMachineName cannot contain '..' (README "Safe names"): exit 2, naming the
    file and the field."""
    job = failing_job(tmp_path, extra=f"{field}: a..b\n")
    r = cli("run", str(job), cwd=tmp_path)
    assert r.returncode == 2
    assert str(job) in r.stderr and field in r.stderr and "'..'" in r.stderr.replace('".."', "'..'")


def test_execute_refuses_a_distributed_map_label_with_dot_dot(tmp_path):
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "Label": "a..b",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    (tmp_path / "sm.asl.json").write_text(json.dumps(definition))
    r = cli("execute", "sm.asl.json", cwd=tmp_path)
    assert r.returncode == 2 and "Label" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- file modes


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_manifest_mode_matches_result_files_and_honours_umask(tmp_path, umask):
    """manifest.json gets the same mode as the result files: 0666 minus the umask (0644 with
    the usual 022), not mkstemp's 0600."""
    job = failing_job(tmp_path)
    r = subprocess.run(
        ["sh", "-c", f'umask {umask:03o} && exec "$0" -m distmap run "$1"', sys.executable, str(job)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    run_dir = Path(json.loads(r.stdout)["manifest"]).parent
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run_dir.iterdir()}
    assert modes["manifest.json"] == 0o666 & ~umask
    assert set(modes.values()) == {0o666 & ~umask}, modes


# --------------------------------------------------------------------------- YAML alias bombs

BOMB = """\
ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}
ItemProcessor: {Function: "securityfns:leak_secrets"}
Input:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_yaml_alias_bomb_in_input_is_refused_quickly(tmp_path):
    """A sub-kilobyte 'billion laughs' job file is refused (exit 2, naming the file) in well
    under the time and memory it would take to expand it."""
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    job = tmp_path / "bomb.yaml"
    job.write_text(BOMB)
    assert len(BOMB) < 700
    r = subprocess.run(
        [sys.executable, "-c", "import resource, sys, runpy; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
         " sys.argv = ['distmap', 'run', sys.argv[1]]; runpy.run_module('distmap', run_name='__main__')", str(job)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(TESTS)}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert str(job) in r.stderr and "aliases expand" in r.stderr and "Traceback" not in r.stderr


def test_yaml_alias_bomb_in_set_override_is_refused(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    job = failing_job(tmp_path)
    value = "{a: &a [x,x,x,x,x,x,x,x,x,x], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]}"
    r = cli("run", str(job), "--set", f"Input={value}", cwd=tmp_path)
    assert r.returncode == 2 and "--set" in r.stderr and "aliases expand" in r.stderr


def test_yaml_recursive_alias_is_refused(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(failing_job(tmp_path).read_text() + "Input: &loop {self: *loop}\n")
    r = cli("run", str(job), cwd=tmp_path)
    assert r.returncode == 2 and "refers to the value it is part of" in r.stderr


def test_yaml_anchors_used_as_templates_still_work():
    """Ordinary anchors and merge keys stay accepted."""
    from distmap.config.yamlsafe import load

    data = load("base: &b {x: 1, y: [1, 2]}\none: {<<: *b, z: 3}\ntwo: *b\n")
    assert data["one"] == {"x": 1, "y": [1, 2], "z": 3} and data["two"] == {"x": 1, "y": [1, 2]}


def test_execute_refuses_an_unsafe_state_name_as_the_default_label(tmp_path):
    """Without a Label, a DISTRIBUTED Map's state name becomes its label: one with '..' is a
    definition error asking for a Label (exit 2), not an execution that fails with ConfigError."""
    definition = {
        "StartAt": "a..b",
        "States": {
            "a..b": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    (tmp_path / "sm.asl.json").write_text(json.dumps(definition))
    r = cli("execute", "sm.asl.json", "--input", '{"xs": [1]}', cwd=tmp_path)
    assert r.returncode == 2 and "States.a..b.Label: is needed" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("mask", [True, False])
def test_mask_causes_reaches_maps_nested_in_child_workflows(mask):
    """execute(mask_causes=...) holds inside child workflows too: a DISTRIBUTED Map nested in a
    DISTRIBUTED Map's child writes its children's causes masked or verbatim as the execution asked
    (the inner map used to mask whatever the switch said)."""
    import json

    from securityfns import URL_PASSWORD

    import distmap

    fn = "arn:aws:lambda:us-east-1:123456789012:function:leak"

    def dmap(processor: dict, **fields: object) -> dict:
        return {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                **processor,
            },
            "ToleratedFailurePercentage": 100,
            "End": True,
            **fields,
        }

    inner = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": fn, "End": True}}}
    outer = {"StartAt": "Inner", "States": {"Inner": dmap(inner, ItemsPath="$.xs")}}
    definition = {"StartAt": "Outer", "States": {"Outer": dmap(outer, ItemsPath="$.groups")}}
    resp = distmap.execute(
        definition,
        {"groups": [{"xs": [1]}]},
        resources={"Resources": {fn: "securityfns:leak_secrets"}},
        backend="inline",
        mask_causes=mask,
    )
    assert resp["status"] == "SUCCEEDED", resp
    (inner_out,) = json.loads(resp["output"])
    (record,) = inner_out
    assert record["Status"] == "FAILED"
    assert (URL_PASSWORD in record["Cause"]) is (not mask)


_FRAGMENTS = [
    "AKIA", "ASIA", "ABCDEFGHIJKLMNOP", "secret", "SeCrEt", "password", "Token", "token", "X-Amz-",
    "Signature", "Credential", "Bearer", "basic", "https://", "user", ":", "@", "=", " ", ";",
    "abc123xyz", "item 7 failed", "\n", "&", "/",
]  # fmt: skip


@settings(max_examples=max(200, EXAMPLES), deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=12))
def test_redact_skips_its_patterns_only_when_none_could_match(parts):
    """``redact`` skips its regular expressions on text without a trigger, so it must mask
    exactly what running every pattern unconditionally masks, for any text."""
    from distmap.storage import _SECRET_PATTERNS, redact

    text = "".join(parts)
    expected = text
    for pattern, repl in _SECRET_PATTERNS:
        expected = pattern.sub(repl, expected)
    assert redact(text) == expected
