"""`distmap run --backend ray` keeps stdout for the summary JSON alone, starts its local cluster
without Ray's token-authentication warning, and takes that cluster down with it even when the
coordinator is SIGKILLed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from faults import children_of, start, wait_gone, write_job

#: as a user who chose nothing (the session's own ray.init sets RAY_AUTH_MODE in this process)
UNSET = ("RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_COLOR_PREFIX")


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_stdout_is_only_the_summary_json_while_ray_workers_crash(tmp_path):
    """Workers that kill themselves make Ray print "(raylet) A worker died" lines: they go to
    stderr (with an uncoloured prefix when stderr is not a terminal), stdout parses as the summary
    JSON alone, and no token-authentication warning is printed."""
    n = 1000
    rows = [{"id": i, "kill": i in (50, 700)} for i in range(n)]
    job = write_job(tmp_path, "itemfns:kill_worker_on", rows, "ToleratedFailurePercentage: 100\n")
    run = start([str(job), "--backend", "ray", "--num-cpus", "2"], cwd=tmp_path, unset=UNSET)
    run.proc.wait(150)
    code, out, err = run.finish(10)
    assert code == 0, err[-3000:]
    summary = json.loads(out)  # nothing but the summary
    assert summary["status"] == "SUCCEEDED" and summary["backend"] == "ray"
    assert summary["itemCounts"]["failed"] == 2 and summary["stats"]["workerCrashes"] >= 2
    assert "\x1b[" not in out
    assert "(raylet) A worker died" in err and "\x1b[33m(raylet)" not in err  # uncoloured prefix
    assert "Token authentication" not in err and "token-auth" not in err


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkilled_coordinator_takes_its_local_ray_cluster_down(tmp_path):
    """SIGKILL of `distmap run --backend ray`: every process of the local cluster it started
    (gcs_server, raylet, ray::DashboardAgent, ray::RuntimeEnvAgent, workers) is gone within 15 s."""
    rows = [{"id": i, "ms": 20} for i in range(5000)]
    job = write_job(tmp_path, "itemfns:sleep_ms", rows)
    run = start([str(job), "--backend", "ray", "--num-cpus", "2"], cwd=tmp_path, unset=UNSET)
    run.wait_started(120)
    time.sleep(1.0)
    cluster = children_of(run.proc.pid)
    titles = " ".join(_title(p) for p in cluster)
    assert "raylet" in titles and "DashboardAgent" in titles and "RuntimeEnvAgent" in titles, titles
    run.proc.kill()
    run.finish(10)
    survivors = wait_gone(cluster, 15)
    assert not survivors, [(p, _title(p)) for p in survivors]


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:80]
    except OSError:
        return "?"
