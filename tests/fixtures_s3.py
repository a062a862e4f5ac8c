"""Pytest plugin: a real S3 endpoint (moto in server mode on 127.0.0.1) for the s3 tests.

Load it with ``pytest_plugins = ["fixtures_s3"]`` in a conftest (``tests/`` is on sys.path) or
``-p fixtures_s3`` on the command line. The tests then talk HTTP to the server through the same
boto3 / smart_open code path users hit; nothing is patched in-process.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

SECRET_KEY = "testing-secret-key-do-not-log"
REGION = "us-east-1"


def _s3_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def _make_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Start one moto server for the session, point the AWS environment at it, yield its URL."""
    from moto.server import ThreadedMotoServer

    from distmap.storage import s3_client

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    saved = {key: os.environ.get(key) for key in _s3_env(endpoint)}
    os.environ.update(_s3_env(endpoint))
    s3_client.cache_clear()
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        s3_client.cache_clear()
        server.stop()


@pytest.fixture
def s3(s3_server: str) -> Iterator[Any]:
    """A boto3 S3 client pointed at the moto server."""
    yield _make_client(s3_server)


@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[str]:
    """A fresh, uniquely named bucket on the moto server (not cleaned up: the server dies with the session)."""
    name = f"distmap-test-{uuid.uuid4().hex[:16]}"
    _make_client(s3_server).create_bucket(Bucket=name)
    yield name
