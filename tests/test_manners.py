"""Library and CLI manners (issue 12, item 6): where logs go, progress events and the progress
bar, ``--set`` into lists, config error reports, and the csv-to-sns walkthrough script."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from distmap.progress import TerminalProgress, fraction_done

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def python(code: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_input(cwd: Path, n: int) -> Path:
    src = cwd / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(n)))
    return src


# --------------------------------------------------------------------------- library logging


def test_python_api_prints_nothing_on_stdout(tmp_path):
    """distmap.run from Python prints no log line on stdout (it is the caller's); without any
    logging configuration, warnings reach stderr through Python's last-resort handler."""
    write_input(tmp_path, 20)
    r = python(
        """
        import distmap
        r = distmap.run({"ItemReader": {"Source": "in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
                         "ItemProcessor": {"Function": "itemfns:echo"}})
        assert r.status == "SUCCEEDED"
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "map_run.no_result_writer" in r.stderr and "map_run_id=" in r.stderr


def test_python_api_logs_through_the_callers_logging(tmp_path):
    """When the caller configures logging, distmap's events arrive as records of the "distmap"
    logger, one per event, with the map run id and credentials masked."""
    write_input(tmp_path, 20)
    r = python(
        """
        import json, logging, distmap
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append((record.name, record.levelname, record.getMessage()))
        logging.basicConfig(level=logging.INFO, handlers=[Keep()])
        res = distmap.run({"ItemReader": {"Source": "in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
                           "ItemProcessor": {"Function": "itemfns:echo"},
                           "ResultWriter": {"Destination": "out"}}, run_id="r1")
        print(json.dumps(records))
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)
    events = {msg.split()[0]: (name, level, msg) for name, level, msg in records}
    assert events["event=map_run.started"][:2] == ("distmap", "INFO")
    assert "map_run_id=r1" in events["event=map_run.finished"][2]
    assert r.stderr == ""


def test_progress_events_carry_the_map_run_id(tmp_path):
    """Every map_run.progress event has the map_run_id, like the run's other events."""
    write_input(tmp_path, 300)
    r = python(
        """
        import distmap
        from distmap.logs import configure_logging
        from distmap.progress import LogProgress
        configure_logging(json=True)
        res = distmap.run({"ItemReader": {"Source": "in.jsonl", "ReaderConfig": {"InputType": "JSONL"}},
                           "ItemProcessor": {"Function": "securityfns:slow"}, "MaxConcurrency": 4},
                          progress=LogProgress(interval=0.0), run_id="progress-run")
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "map_run.progress"]
    assert progress, r.stderr
    assert all(e.get("map_run_id") == "progress-run" for e in progress)


# --------------------------------------------------------------------------- progress bar


def info(**kw):
    base = {"succeeded": 0, "failed": 0, "timedOut": 0, "total": None, "running": 1, "final": False}
    return {**base, **kw}


def test_progress_percentage_does_not_lag_when_the_total_is_known():
    """With the item total known (counted ahead for ToleratedFailurePercentage), 710 of 1,000
    items done is 71%, whatever share of the bytes the main reader has read (main showed 60%)."""
    i = info(succeeded=710, total=1000, bytesRead=850, totalBytes=1000, itemsRead=850)
    assert fraction_done(i, 710) == pytest.approx(0.71)
    out = io.StringIO()
    TerminalProgress(stream=out)(i)
    assert " 71%" in out.getvalue()


def test_progress_uses_bytes_when_the_item_total_is_unknown():
    """Without an item total, bytes read out of the input's size give the % and an ETA, instead
    of "?%" and "--:--": 500 items took half the bytes, so 250 done is 25%."""
    i = info(succeeded=250, bytesRead=5000, totalBytes=10000, itemsRead=500)
    assert fraction_done(i, 250) == pytest.approx(0.25)
    assert fraction_done({**i, "maxItems": 600}, 250) == pytest.approx(250 / 600)
    bar = TerminalProgress(stream=io.StringIO())
    bar(i)
    time.sleep(0.25)
    bar(info(succeeded=300, bytesRead=5000, totalBytes=10000, itemsRead=500))
    text = bar.stream.getvalue()
    assert "?%" not in text and " 30%" in text
    assert "ETA --:--" not in text.rsplit("\r", 1)[-1]


def test_progress_unknown_without_total_or_sizes():
    assert fraction_done(info(succeeded=5, itemsRead=10), 5) is None


def _screen(raw: str) -> list[str]:
    """What a terminal shows for ``raw``: carriage returns, erase-line and newlines."""
    lines, line, col = [], [], 0
    i = 0
    while i < len(raw):
        if raw.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        ch = raw[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
        i += 1
    lines.append("".join(line))
    return lines


def test_abort_warning_gets_its_own_line_on_a_terminal(tmp_path):
    """On a terminal, the warning printed when Ctrl-C arrives is not glued to the progress bar:
    the bar's line is erased first."""
    write_input(tmp_path, 400)
    job = tmp_path / "job.yaml"
    job.write_text(
        "ItemReader:\n  Source: in.jsonl\n  ReaderConfig: {InputType: JSONL}\n"
        "ItemProcessor:\n  Function: securityfns:slow\nMaxConcurrency: 2\n"
        "ResultWriter:\n  Destination: out\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "distmap", "run", str(job)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS), "TERM": "xterm"},
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
    )
    os.close(slave)
    raw = b""
    sent = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            raw += chunk
        if not sent and b"items/s" in raw:
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            sent = True
        if sent and proc.poll() is not None and not ready:
            break
    proc.wait(timeout=30)
    os.close(master)
    assert sent, raw
    screen = _screen(raw.decode(errors="replace").replace("\r\n", "\n"))
    warning = [line for line in screen if "map_run.abort" in line]  # map_run.aborting
    assert warning, screen
    assert all("items/s" not in line and "[#" not in line and "[-" not in line for line in warning), warning
    assert proc.returncode == 130


# --------------------------------------------------------------------------- --set and config errors


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distmap", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def retry_job(cwd: Path) -> Path:
    write_input(cwd, 3)
    job = cwd / "job.yaml"
    job.write_text(
        "ItemReader:\n  Source: in.jsonl\n  ReaderConfig: {InputType: JSONL}\n"
        "ItemProcessor:\n  Function: itemfns:always_fail\n"
        "  Retry:\n    - {ErrorEquals: [RuntimeError], IntervalSeconds: 0.01, MaxAttempts: 0}\n"
        "ToleratedFailurePercentage: 100\n"
    )
    return job


def test_set_addresses_list_elements(tmp_path):
    """--set 'ItemProcessor.Retry[0].MaxAttempts=5' changes the first retrier (main said
    "unknown field"); the index one past the end appends an element."""
    job = retry_job(tmp_path)
    r = cli("run", str(job), "--set", "ItemProcessor.Retry[0].MaxAttempts=2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stats"]["retries"] == 3 * 2
    r = cli(
        "run", str(job), "--set", "ItemProcessor.Retry[0].ErrorEquals[0]=ValueError",
        "--set", "ItemProcessor.Retry[1]={ErrorEquals: [States.ALL], IntervalSeconds: 0.01, MaxAttempts: 1}",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stats"]["retries"] == 3  # RuntimeError: now the appended retrier, once each


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "ItemProcessor.Retry[3].MaxAttempts=5",
            "ItemProcessor.Retry[3]: --set: index out of range: the list has 1",
        ),
        ("ItemProcessor[0]=5", "ItemProcessor[0]: --set: ItemProcessor is not a list"),
        ("ItemProcessor.Retry[x]=5", "cannot read the field path 'ItemProcessor.Retry[x]'"),
    ],
)
def test_set_list_errors_are_clear(tmp_path, setting, message):
    r = cli("run", str(retry_job(tmp_path)), "--set", setting, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_typo_next_to_a_required_field_gets_did_you_mean(tmp_path):
    """A misspelt required field (Sourc) is reported as the missing field with the look-alike
    key pointed out, not only as "is required"."""
    write_input(tmp_path, 1)
    job = tmp_path / "job.yaml"
    job.write_text(
        "ItemReader:\n  Sourc: in.jsonl\n  ReaderConfig: {InputTyp: JSONL}\nItemProcessor: {Function: itemfns:echo}\n"
    )
    r = cli("run", str(job), cwd=tmp_path)
    assert r.returncode == 2
    assert (
        "ItemReader.Source: is required" in r.stderr and "found 'Sourc': did you mean 'Source'?" in r.stderr
    )


def test_all_config_errors_are_reported_at_once(tmp_path):
    """Several problems in different fields are all listed, each with file-relative field and
    reason, in one message (exit 2, no traceback)."""
    write_input(tmp_path, 1)
    job = tmp_path / "job.yaml"
    job.write_text(
        "ItemReader:\n  Source: in.jsonl\n  ReaderConfig: {InputType: XML}\n"
        "ItemProcessor: {Function: itemfns:echo, TimeoutSeconds: -1}\n"
        "MaxConcurency: 4\nToleratedFailurePercentage: 120\nResultWritter: {Destination: out}\n"
    )
    r = cli("run", str(job), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{job}: 5 problems:" in r.stderr
    for expected in (
        "ItemReader.ReaderConfig.InputType: must be one of CSV, JSON, JSONL",
        "ItemProcessor.TimeoutSeconds: must be > 0.0",
        "ToleratedFailurePercentage: must be <= 100.0",
        "MaxConcurency: unknown field; did you mean 'MaxConcurrency'?",
        "ResultWritter: unknown field; did you mean 'ResultWriter'?",
    ):
        assert expected in r.stderr, r.stderr


def test_python_api_config_error_lists_every_problem():
    import distmap

    with pytest.raises(distmap.ConfigError) as info:
        distmap.MapJob.from_dict({"ItemReader": {"Source": "x"}, "MaxConcurrency": -1})
    fields = [p.field for p in info.value.problems]
    assert fields == ["ItemReader.ReaderConfig", "ItemProcessor", "MaxConcurrency"]


# --------------------------------------------------------------------------- the walkthrough


@pytest.mark.s3
def test_csv_to_sns_walkthrough_script_sets_everything_up_and_runs(tmp_path):
    """examples/csv-to-sns/run_local.py, run from anywhere with no AWS environment at all,
    starts its own moto server, creates the bucket, object, topic and dummy credentials, runs
    `distmap execute` on the example (SUCCEEDED, results in S3), then the failing CSV (FAILED,
    the alert published to SNS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = ""  # nothing but the installed distmap
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "csv-to-sns" / "run_local.py"), "--fail"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"status": "SUCCEEDED"' in r.stdout and "SUCCEEDED s3://my-bucket/results/" in r.stdout
    assert '"error": "OrdersFailed"' in r.stdout
    assert "SNS alert received: 'Order processing failed'" in r.stdout
    assert "States.ExceedToleratedFailureThreshold" in r.stdout
    assert "Traceback" not in r.stderr


def test_a_misspelt_required_section_is_reported_once():
    """ItemReadr is reported as the missing ItemReader's look-alike, not a second time as an
    unknown field; the other problems are still listed."""
    import distmap

    with pytest.raises(distmap.ConfigError) as info:
        distmap.MapJob.from_dict(
            {
                "ItemReadr": {"Source": "x", "ReaderConfig": {"InputType": "JSONL"}},
                "ItemProcessor": {"Function": "m:f"},
                "MaxConcurency": 3,
            }
        )
    assert [p.field for p in info.value.problems] == ["ItemReader", "MaxConcurency"]
    assert "found 'ItemReadr': did you mean 'ItemReader'?" in info.value.problems[0].reason
