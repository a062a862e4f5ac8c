#!/usr/bin/env python3
"""Run the csv-to-sns example end to end, with nothing but this machine.

The example needs an S3 bucket holding the orders CSV, an SNS topic for the failure alert, and
AWS credentials. This script provides all of them: it starts a moto server on 127.0.0.1 (a free
port), points the standard AWS environment at it with dummy credentials, creates the bucket,
uploads ``orders.csv``, creates the topic (with an SQS queue subscribed, to show the alert),
and then runs the real command from the repository root:

    distmap execute examples/csv-to-sns/definition.asl.json \\
        --resources examples/csv-to-sns/resources.yaml --input '{"bucket": ..., "topicArn": ...}'

It prints the execution's response and the result files the Distributed Map wrote to S3. With
``--fail`` it also runs a CSV with too many bad rows: the Map fails, the Catch publishes the error
to SNS, and the script prints the message the queue received. Exit code 0 when everything went
as described. Needs ``pip install -e '.[test]'`` (or ``pip install 'moto[server]'``).

    python examples/csv-to-sns/run_local.py [--fail] [--backend local|ray]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUCKET = "my-bucket"
REGION = "us-east-1"


def _bad_orders_csv(rows: int = 60, bad: int = 30) -> bytes:
    lines = ["order_id,customer,quantity,unit_price"]
    lines += [f"{2000 + i},c{i},{0 if i < bad else 1},2.50" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _execute(data: dict[str, Any], backend: str, env: dict[str, str]) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "distmap", "execute",
        str((HERE / "definition.asl.json").relative_to(REPO)),
        "--resources", str((HERE / "resources.yaml").relative_to(REPO)),
        "--input", json.dumps(data), "--backend", backend,
    ]  # fmt: skip
    print("$ distmap " + shlex.join(cmd[3:]), flush=True)
    # from the repository root: jobs/orders.py (the "Lambda" function) is loaded from there
    r = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"distmap execute exited {r.returncode}")
    return json.loads(r.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "ray"], default="local")
    parser.add_argument("--fail", action="store_true", help="also run a CSV that trips the tolerance")
    args = parser.parse_args(argv)
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("run_local.py needs moto: pip install -e '.[test]' (or 'moto[server]')", file=sys.stderr)
        return 2

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        env.pop("AWS_PROFILE", None)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        print(f"moto server on {env['AWS_ENDPOINT_URL']} (dummy credentials)", flush=True)

        s3, sns, sqs = boto3.client("s3"), boto3.client("sns"), boto3.client("sqs")
        s3.create_bucket(Bucket=BUCKET)
        s3.upload_file(str(HERE / "orders.csv"), BUCKET, "orders.csv")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        print(f"created s3://{BUCKET}/orders.csv and topic {topic}", flush=True)

        data = {"bucket": BUCKET, "key": "orders.csv", "runDate": "2026-11-25", "topicArn": topic}
        response = _execute(data, args.backend, env)
        print(json.dumps(response, indent=2))
        ok = response["status"] == "SUCCEEDED"
        if ok:
            details = json.loads(response["output"])["mapResult"]["ResultWriterDetails"]
            manifest = json.loads(s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read())
            print(f"manifest s3://{details['Bucket']}/{details['Key']}:")
            for status, files in manifest["ResultFiles"].items():
                for f in files:
                    print(
                        f"  {status:<9} s3://{manifest['DestinationBucket']}/{f['Key']} ({f['Size']} bytes)"
                    )

        if args.fail:
            s3.put_object(Bucket=BUCKET, Key="bad-orders.csv", Body=_bad_orders_csv())
            print("\nnow a CSV where half the orders have quantity 0 (5% tolerated):", flush=True)
            failed = _execute({**data, "key": "bad-orders.csv"}, args.backend, env)
            print(json.dumps({k: failed.get(k) for k in ("status", "error", "cause")}, indent=2))
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
            alert = json.loads(messages[0]["Body"]) if messages else {}
            print(f"SNS alert received: {alert.get('Subject')!r}: {alert.get('Message')}")
            ok = ok and failed["status"] == "FAILED" and bool(messages)
        return 0 if ok else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
