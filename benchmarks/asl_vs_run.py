"""A DISTRIBUTED Map run by `distmap execute` against the same job run by `distmap run`.

Both read the same JSONL object from S3 (a moto server on 127.0.0.1 started by this script,
reached through the standard AWS environment), call the same no-op function per item and write
AWS-shaped result files back to S3:

``run``
    ``distmap run job.yaml``: ItemReader ``s3://bench/rows.jsonl``, ResultWriter ``s3://bench/run``.
``execute``
    ``distmap execute machine.asl.json --resources resources.yaml``: a state machine whose only
    state is a DISTRIBUTED Map with ItemReader ``arn:aws:states:::s3:getObject``, an ItemProcessor
    of one Task state (a Lambda ARN mapped to ``jobs.examples:noop``) and ResultWriter
    ``arn:aws:states:::s3:putObject``. Each item runs a full child workflow through the interpreter.

Each contender runs ``--repeat`` times in a fresh process, interleaved; the best wall time is
kept and the ratio execute / run is reported (the issue asks for "roughly the same speed").

    python -m benchmarks.asl_vs_run [--rows 100000] [--repeat 3] [--backend local|ray]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path

import boto3
import yaml

from benchmarks.datagen import jsonl_path
from benchmarks.measure import BenchmarkError, require, run_process

RESULTS = Path(__file__).resolve().parent / "results"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:noop"


def _start_s3() -> tuple[object, dict[str, str]]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return server, env


def _machine(bucket: str, key: str) -> dict:
    return {
        "StartAt": "Fanout",
        "States": {
            "Fanout": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Parameters": {"Bucket": bucket, "Key": key},
                    "ReaderConfig": {"InputType": "JSONL"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Call",
                    "States": {"Call": {"Type": "Task", "Resource": FUNCTION_ARN, "End": True}},
                },
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": bucket, "Prefix": "execute"},
                },
                "End": True,
            }
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.asl_vs_run", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    args = p.parse_args(argv)
    src = jsonl_path(args.rows)
    server, s3_env = _start_s3()
    env = {**os.environ, **s3_env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    bucket, key = "bench", "rows.jsonl"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(src), bucket, key)
    scratch = Path(tempfile.mkdtemp(prefix="distmap-asl-bench-"))
    job = {
        "ItemReader": {"Source": f"s3://{bucket}/{key}", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"Function": "jobs.examples:noop"},
        "ResultWriter": {"Destination": f"s3://{bucket}/run"},
    }
    (scratch / "job.yaml").write_text(yaml.safe_dump(job))
    (scratch / "machine.asl.json").write_text(json.dumps(_machine(bucket, key)))
    (scratch / "resources.yaml").write_text(
        yaml.safe_dump({"Resources": {FUNCTION_ARN: "jobs.examples:noop"}})
    )
    backend = ["--backend", args.backend]
    contenders = {
        "run": [sys.executable, "-m", "distmap", "run", str(scratch / "job.yaml"), "--no-progress", *backend],
        "execute": [
            sys.executable,
            "-m",
            "distmap",
            "execute",
            str(scratch / "machine.asl.json"),
            "--resources",
            str(scratch / "resources.yaml"),
            *backend,
        ],
    }
    best: dict[str, float] = {}
    try:
        for rep in range(args.repeat):
            for name, argv_ in contenders.items():
                run = run_process(argv_, env, scratch, timeout=900)
                if run.exit_code != 0:
                    raise BenchmarkError(f"{name}: exit {run.exit_code}: {run.stderr[-2000:]}")
                out = json.loads(run.stdout)
                if name == "run":
                    require(
                        out["status"] == "SUCCEEDED" and out["itemCounts"]["succeeded"] == args.rows, str(out)
                    )
                else:
                    require(out["status"] == "SUCCEEDED", str(out))
                    details = json.loads(out["output"])["ResultWriterDetails"]
                    manifest = json.loads(s3.get_object(Bucket=bucket, Key=details["Key"])["Body"].read())
                    require(bool(manifest["ResultFiles"]["SUCCEEDED"]), "no SUCCEEDED files")
                best[name] = min(best.get(name, float("inf")), run.wall_s)
                print(
                    f"  [{rep + 1}/{args.repeat}] {name:<8} {run.wall_s:6.2f} s wall  "
                    f"{run.peak_tree_rss_mb:6.0f} MB tree",
                    file=sys.stderr,
                )
    except BenchmarkError as exc:
        print(f"asl_vs_run: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()  # type: ignore[attr-defined]
    ratio = best["execute"] / best["run"]
    doc = {
        "rows": args.rows,
        "repeat": args.repeat,
        "backend": args.backend,
        "best_wall_s": {k: round(v, 3) for k, v in best.items()},
        "ratio_execute_to_run": round(ratio, 3),
    }
    out = RESULTS / f"asl-vs-run-{dt.date.today().isoformat()}-{args.backend}.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
