"""The S3 endpoint of `--storage s3`: one moto server, a bucket per registry, its request log.

moto runs in server mode on a loopback port, as `tests/s3server.py` starts it for the test
suite (bench/ imports nothing from tests/, so this is its own small copy). Each registry
gets a bucket named after it. moto logs one line per request it answers; `S3Traffic` counts
them per bucket and kind of operation from a point of the log on, which shows how many S3
round trips each registry makes for a workload.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from registry_client import BenchError
from servers import Server, free_port

# moto accepts any credentials; these are only what the clients sign with.
ACCESS_KEY_ID = "moorage-bench-key"
SECRET_ACCESS_KEY = "moorage-bench-secret"
REGION = "us-east-1"
# One werkzeug access line: `... "PUT /bucket/key?query HTTP/1.1" 200 -`.
_REQUEST_LINE = re.compile(r'"([A-Z]+) /([^/?\s]+)(\S*) HTTP/[\d.]+" (\d+)')
# werkzeug colours the lines of answers other than 200 when it writes to a terminal or not.
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def moto_server(workdir: Path) -> Server:
    """moto's S3 server (`python -m moto.server`) on a free loopback port, not yet started."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return Server("s3", command, workdir, port)


def _client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def create_bucket(endpoint_url: str, bucket: str) -> None:
    """Make an empty bucket."""
    _client(endpoint_url).create_bucket(Bucket=bucket)


@dataclass(frozen=True)
class BucketContents:
    """What a bucket holds: how many objects, how many bytes, a few keys to show."""

    objects: int
    total_bytes: int
    sample_keys: list[str]


def bucket_contents(endpoint_url: str, bucket: str) -> BucketContents:
    """Every object of the bucket, counted."""
    objects = total = 0
    sample: list[str] = []
    pages = _client(endpoint_url).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    for page in pages:
        for item in page.get("Contents", []):
            objects += 1
            total += item["Size"]
            if len(sample) < 3:
                sample.append(item["Key"])
    return BucketContents(objects, total, sample)


def moorage_environment(endpoint_url: str, bucket: str, redirect: bool) -> dict[str, str]:
    """The MOORAGE_STORAGE__* variables that make `moorage serve` keep its blobs in `bucket`."""
    return {
        "MOORAGE_STORAGE__DRIVER": "s3",
        "MOORAGE_STORAGE__S3__BUCKET": bucket,
        "MOORAGE_STORAGE__S3__ENDPOINT_URL": endpoint_url,
        "MOORAGE_STORAGE__S3__REGION": REGION,
        "MOORAGE_STORAGE__S3__ACCESS_KEY_ID": ACCESS_KEY_ID,
        "MOORAGE_STORAGE__S3__SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "MOORAGE_STORAGE__S3__ADDRESSING_STYLE": "path",
        "MOORAGE_STORAGE__S3__REDIRECT": "true" if redirect else "false",
    }


def reference_storage(endpoint_url: str, bucket: str, redirect: bool) -> str:
    """The `storage:` entries of the reference's config for its s3 driver, 2-space indented.

    distribution 2.8 has no `forcepathstyle` option: it uses path-style URLs whenever
    `regionendpoint` is set. Its default part size (`chunksize`) is 10 MiB.
    """
    return (
        "  s3:\n"
        f"    accesskey: {ACCESS_KEY_ID}\n"
        f"    secretkey: {SECRET_ACCESS_KEY}\n"
        f"    region: {REGION}\n"
        f"    regionendpoint: {endpoint_url}\n"
        f"    bucket: {bucket}\n"
        "    secure: false\n"
        "    v4auth: true\n"
        "  redirect:\n"
        f"    disable: {'false' if redirect else 'true'}\n"
    )


class S3Traffic:
    """Counts the requests in moto's log, per bucket and operation, from a mark on."""

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path

    def mark(self) -> int:
        """Where the log ends now."""
        return self._log_path.stat().st_size if self._log_path.exists() else 0

    def since(self, mark: int, bucket: str) -> Counter[str]:
        """The requests for `bucket` logged after `mark`, by operation."""
        with self._log_path.open("rb") as log:
            log.seek(mark)
            text = _COLOUR.sub("", log.read().decode(errors="replace"))
        counted: Counter[str] = Counter()
        for method, logged_bucket, rest, status in _REQUEST_LINE.findall(text):
            if logged_bucket == bucket:
                failed = "" if status.startswith("2") else f" {status}"
                counted[_operation(method, rest) + failed] += 1
        return counted


def _operation(method: str, rest: str) -> str:
    """An S3 operation's name from the method, the key and the query of its request line."""
    key, _, query = rest.partition("?")
    if method == "GET":
        return "list" if not key.strip("/") else "get"
    if method == "PUT":
        # PutObject and CopyObject differ only by a header, which the log does not show.
        return "upload-part" if "partNumber=" in query else "put/copy"
    if method == "POST":
        if "delete" in query:
            return "delete-objects"
        return "complete-multipart" if "uploadId=" in query else "start-multipart"
    if method == "DELETE":
        return "abort-multipart" if "uploadId=" in query else "delete"
    return method.lower()


def check_stored(endpoint_url: str, buckets: dict[str, str], at_least_bytes: int) -> list[str]:
    """One line per registry saying what its bucket holds; a `BenchError` if it holds too little.

    Every registry must have put at least the blobs the run pushed into its bucket: otherwise
    it stored them elsewhere (a data dir), and its figures are not S3 figures.
    """
    lines = []
    for server, bucket in buckets.items():
        contents = bucket_contents(endpoint_url, bucket)
        mebibytes = contents.total_bytes / 1024 / 1024
        lines.append(
            f"{server}: bucket {bucket} holds {contents.objects} objects, {mebibytes:.1f} MiB"
            f" (e.g. {', '.join(contents.sample_keys)})"
        )
        if contents.total_bytes < at_least_bytes:
            raise BenchError(
                f"{server} stored {contents.total_bytes} bytes in bucket {bucket}, less than the"
                f" {at_least_bytes} it was sent: it does not keep its blobs in S3"
            )
    return lines
