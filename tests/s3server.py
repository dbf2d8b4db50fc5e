"""A real S3 endpoint for tests: moto in server mode, as a subprocess on a loopback port.

Use it through the session fixture `s3_server` (tests/conftest.py), which starts one moto for
the whole run, or start one of your own:

    with moto_s3_server(tmp_path / "moto.log") as s3:
        bucket = s3.create_bucket()                  # a fresh bucket for isolation
        settings = s3.settings(bucket, prefix="a/")  # S3Settings for S3BlobStore
        env = s3.environment(bucket)                 # MOORAGE_STORAGE__* for `moorage serve`

Several `moorage serve` processes given the same `environment(bucket)` share one bucket, as
replicas behind a load balancer would.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from pydantic import SecretStr
from tests.ports import free_port, wait_until_answering

from moorage.settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# moto accepts any credentials; these are only what the clients sign with.
ACCESS_KEY_ID = "moorage-test-key"
SECRET_ACCESS_KEY = "moorage-test-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server: its endpoint, credentials, and the buckets made so far."""

    endpoint_url: str
    bucket: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    region: str = REGION
    _counter: Iterator[int] = field(default_factory=itertools.count)

    def client(self) -> S3Client:
        """A boto3 S3 client of this server, for looking at what the tests stored."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Make a new, empty bucket and return its name."""
        bucket = name or f"moorage-test-{next(self._counter)}-{time.monotonic_ns() % 10**9}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def settings(self, bucket: str | None = None, **overrides: object) -> S3Settings:
        """S3 settings that point moorage at this server."""
        fields: dict[str, object] = {
            "bucket": bucket or self.bucket,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key_id": self.access_key_id,
            "secret_access_key": SecretStr(self.secret_access_key),
            "addressing_style": "path",
            **overrides,
        }
        return S3Settings.model_validate(fields)

    def environment(self, bucket: str | None = None, prefix: str = "") -> dict[str, str]:
        """The MOORAGE_* variables that make `moorage serve` store blobs here."""
        return {
            "MOORAGE_STORAGE__DRIVER": "s3",
            "MOORAGE_STORAGE__S3__BUCKET": bucket or self.bucket,
            "MOORAGE_STORAGE__S3__ENDPOINT_URL": self.endpoint_url,
            "MOORAGE_STORAGE__S3__REGION": self.region,
            "MOORAGE_STORAGE__S3__ACCESS_KEY_ID": self.access_key_id,
            "MOORAGE_STORAGE__S3__SECRET_ACCESS_KEY": self.secret_access_key,
            "MOORAGE_STORAGE__S3__ADDRESSING_STYLE": "path",
            "MOORAGE_STORAGE__S3__PREFIX": prefix,
        }


@contextmanager
def moto_s3_server(log_path: Path) -> Iterator[S3Server]:
    """Start moto's server on a free loopback port, make one bucket, stop it afterwards."""
    port = free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answering(f"{endpoint_url}/moto-api/", process, "moto", log_path)
        server = S3Server(endpoint_url, bucket="")
        server.bucket = server.create_bucket("moorage-tests")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
