"""Smoke test of the benchmark harness (``python -m benchmarks run``), without Ray."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "noop/B0-aws",
    "noop/B0-compact",
    "noop/B0-csv",
    "noop/distmap-local",
    "noop/distmap-local-compact",
    "noop/distmap-local-no-writer",
    "noop/distmap-local-csv",
    "noop/distmap-local-failures",
    "noop/distmap-local-failures-clean",
    "cpu/distmap-local",
    "sleep/distmap-local",
    "fanout/distmap-local",
    "fanout/distmap-local-async",
    "wide/distmap-local",
    "first-result/distmap-local",
}


@pytest.mark.slow
def test_quick_harness_reports_b0_and_distmap_local(tmp_path: Path) -> None:
    """``python -m benchmarks run --quick --only 'B0*,distmap-local*' --out-dir DIR`` exits 0 and
    writes its JSON report (plus the Markdown, and the chart when matplotlib is installed) into DIR
    only; the report lists every B0 and distmap-local contender of every workload, each verified
    ("ok") with a positive items/s, and no Ray contender."""
    results = ROOT / "benchmarks" / "results"
    before = sorted(results.iterdir()) if results.exists() else []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "run",
            "--quick",
            "--only",
            "B0*,distmap-local*",
            "--out-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [report] = tmp_path.glob("*-quick.json")
    assert report.with_suffix(".md").is_file()
    if importlib.util.find_spec("matplotlib") is not None:  # without it the harness skips the chart
        assert report.with_suffix(".png").is_file()
    doc = json.loads(report.read_text())
    by_key = {c["key"]: c for c in doc["contenders"]}
    assert set(by_key) == EXPECTED
    for key, c in by_key.items():
        assert c["status"] == "ok", (key, c.get("error"))
        assert c["items_per_s"] > 0, key
        assert not c["ray"], key
    assert "| distmap-local |" in proc.stdout  # the Markdown report is printed too
    assert (sorted(results.iterdir()) if results.exists() else []) == before
