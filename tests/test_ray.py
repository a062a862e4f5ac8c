"""Ray backend specifics: lazy import, bounded in-flight work, exact MaxConcurrency, shipping code
to a cluster that does not have it, losing a node mid-run, Ctrl-C, unreachable clusters.

The cases shared with the local backend are in test_contract.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ids, load_results

import distmap
from distmap.config import parse_job
from distmap.coordinator import Coordinator
from distmap.executors.ray_backend import RayExecutor, modules_to_ship

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", "RAY_AUTH_MODE": "disabled", **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_import_distmap_does_not_import_ray():
    """`import distmap` and a local-backend run never import Ray (start-up stays fast)."""
    code = (
        "import sys, distmap\n"
        "assert 'ray' not in sys.modules\n"
        "r = distmap.run({'ItemReader': {'Source': sys.argv[1], 'ReaderConfig': {'InputType': 'JSONL'}},"
        " 'ItemProcessor': {'Function': 'jobs.examples:noop'}}, handle_signals=False)\n"
        "assert r.status == 'SUCCEEDED', r\n"
        "assert 'ray' not in sys.modules\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "data" / "quickstart.jsonl")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


def test_modules_to_ship_are_distmap_and_the_function_module(tmp_path):
    """Shipping uploads the distmap package and the item function's top-level module, not
    installed packages."""
    paths = modules_to_ship("itemfns:echo")
    assert paths == [str(ROOT / "distmap"), str(TESTS / "itemfns.py")]
    assert modules_to_ship("jobs.examples:noop")[1] == str(ROOT / "jobs")
    assert modules_to_ship("json:dumps") == [str(ROOT / "distmap")]  # stdlib: not shipped


@pytest.mark.ray
def test_unknown_backend_and_bad_address_fail_before_any_work(job, tmp_path):
    """An unknown backend is a ConfigError; an unreachable --address fails fast with
    BackendUnavailable, naming the address, and nothing is written."""
    j = job("itemfns:echo", n=10)
    with pytest.raises(distmap.ConfigError, match="unknown backend"):
        distmap.run(j, backend="spark")
    t0 = time.monotonic()
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(j))
    port = _free_port()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "distmap",
            "run",
            str(job_file),
            "--backend",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in r.stderr
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "out").exists()


@pytest.mark.ray
def test_in_flight_work_is_bounded_by_actors_and_window(job, ray_cluster):
    """The driver never holds more than actors x window chunks (object refs), whatever the input size."""
    ex = RayExecutor(per_worker_window=2)
    seen: list[int] = []

    def progress(_: dict) -> None:
        seen.append(len(ex._by_ref))
        assert len(ex.outstanding()) <= len(ex.slots) * ex.per_worker_window

    j = job("jobs.examples:noop", n=50_000)
    res = Coordinator(parse_job(j), ex, progress=progress, handle_signals=False).run()
    assert res.status == "SUCCEEDED" and res.item_counts.succeeded == 50_000
    assert res.stats["chunks"] > 8  # many more chunks than the window ...
    assert max(seen) <= 2 * 2  # ... but never more than 2 actors x 2 in flight


@pytest.mark.ray
def test_max_concurrency_is_items_in_flight_across_the_cluster(job, ray_cluster, tmp_path):
    """MaxConcurrency 3 on a 2-CPU cluster: 2 actors (2 + 1 lanes), never more than 3 items at once."""
    rows = [{"id": i, "ms": 20} for i in range(120)]
    res = distmap.run(
        job("itemfns:sleep_span", rows=rows, MaxConcurrency=3), backend="ray", handle_signals=False
    )
    assert res.status == "SUCCEEDED"
    spans = sorted(
        (o["start"], o["end"]) for o in (json.loads(r["Output"]) for r in load_results(res)["SUCCEEDED"])
    )
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda t: (t[0], t[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 3


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_function_module_is_shipped_to_a_cluster_without_it(tmp_path):
    """Joining a separately started cluster (`ray start --head`) whose workers cannot import the
    item function's module: distmap uploads it with the job, and the workers run the uploaded copy."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shipped_fn.py").write_text("def where(item):\n    return {'id': item['id'], 'file': __file__}\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "in.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in range(200)))
    (proj / "job.yaml").write_text(
        "ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}\n"
        "ItemProcessor: {Function: 'shipped_fn:where'}\n"
        "ResultWriter: {Destination: out}\n"
    )
    port = _free_port()
    head_env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "RAY_AUTH_MODE": "disabled",
    }
    ray_bin = Path(sys.executable).parent / "ray"
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            "--port",
            str(port),
            "--num-cpus",
            "1",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--dashboard-agent-listen-port",
            str(_free_port()),
            "--metrics-export-port",
            str(_free_port()),
        ],
        cwd=tmp_path,
        env=head_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(2)
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "distmap",
                "run",
                "job.yaml",
                "--backend",
                "ray",
                "--address",
                f"127.0.0.1:{port}",
            ],
            cwd=proj,
            env={**_env(), "PYTHONPATH": f"{ROOT}{os.pathsep}{lib}"},  # only the driver has lib/
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)
    out = load_results(type("R", (), {"manifest": summary["manifest"]})())
    files = {json.loads(rec["Output"])["file"] for rec in out["SUCCEEDED"]}
    assert len(out["SUCCEEDED"]) == 200
    assert all("runtime_resources" in f and not f.startswith(str(lib)) for f in files), files


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_losing_a_node_mid_run_loses_and_duplicates_nothing(tmp_path):
    """A 3-node cluster (ray.cluster_utils) loses a worker node mid-run: its chunks are re-run on the
    surviving nodes and every item is in the result files exactly once."""
    n = 6000
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "ms": 2}) + "\n" for i in range(n)))
    r = subprocess.run(
        [sys.executable, str(TESTS / "ray_node_loss.py"), str(src), str(tmp_path / "out")],
        cwd=TESTS,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=220,
    )
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stderr[-3000:]
    doc = json.loads(lines[-1][len("RESULT ") :])
    assert doc["removedNode"] is True
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["stats"]["chunksRerun"] + doc["stats"]["workerCrashes"] >= 1  # something was re-run
    out = load_results(type("R", (), {"manifest": doc["manifest"]})())
    assert ids(out["SUCCEEDED"]) == list(range(n))  # exactly once: no gaps, no duplicates
    assert out["FAILED"] == [] and out["PENDING"] == []


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_ctrl_c_on_the_ray_backend_aborts_cleanly(tmp_path):
    """SIGINT to `distmap run --backend ray`: exit 130, ABORTED, unrun items PENDING, a complete
    manifest, and every item accounted for exactly once."""
    n = 3000
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "ms": 10}) + "\n" for i in range(n)))
    job = tmp_path / "job.yaml"
    job.write_text(
        "ItemReader: {Source: in.jsonl, ReaderConfig: {InputType: JSONL}}\n"
        "ItemProcessor: {Function: 'itemfns:sleep_ms'}\n"
        "ResultWriter: {Destination: out}\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-m", "distmap", "run", str(job), "--backend", "ray", "--num-cpus", "2"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    assert p.stderr is not None
    for line in p.stderr:  # JSON log lines: wait until the run has started
        if "map_run.started" in line or time.time() > deadline:
            break
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-3000:]
    summary = json.loads(out)
    assert summary["status"] == "ABORTED"
    c = summary["itemCounts"]
    assert c["pending"] + c["aborted"] > 0
    assert c["succeeded"] + c["pending"] + c["aborted"] == n
    res = load_results(type("R", (), {"manifest": summary["manifest"]})())
    assert sorted(ids(res["SUCCEEDED"]) + ids(res["PENDING"])) == list(range(n))


@pytest.mark.ray
def test_function_missing_on_the_workers_fails_the_run_with_a_clear_error(job, ray_cluster):
    """When the workers cannot import the item function (it was not shipped), the run FAILS with
    States.Runtime naming the module, every item is PENDING, and the manifest says so."""
    res = distmap.run(job("driver_only:echo", n=500), backend="ray", handle_signals=False)
    assert res.status == "FAILED" and res.error == "States.Runtime"
    assert "a worker could not start" in res.cause and "driver_only" in res.cause
    assert res.item_counts.pending == 500 and res.item_counts.succeeded == 0
    assert ids(load_results(res)["PENDING"]) == list(range(500))
