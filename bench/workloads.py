"""The measured workloads. Each takes a `Target` and returns a `Figure`; setup is not timed."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from registry_client import (
    MANIFEST_ACCEPT,
    BenchError,
    BlobReader,
    Target,
    fetch_blob,
    get_manifest,
    image_manifest,
    list_tags,
    manifest_path,
    push_chunked,
    push_monolithic,
    put_manifest,
    put_manifest_async,
    sha256_digest,
)

MB = 1_000_000
MIB = 1024 * 1024

NAMESPACE = "bench"
PUSH_REPOSITORY = f"{NAMESPACE}/push"
PULL_REPOSITORY = f"{NAMESPACE}/pull"
MANIFEST_REPOSITORY = f"{NAMESPACE}/manifest"
MANIFEST_TAG = "latest"
TAGS_REPOSITORY = f"{NAMESPACE}/tags"
# What a bearer token must grant for every workload to run.
SCOPES = [
    f"repository:{repository}:pull,push"
    for repository in (PUSH_REPOSITORY, PULL_REPOSITORY, MANIFEST_REPOSITORY, TAGS_REPOSITORY)
]
# How many tag PUTs run at once while the tag list is being filled (setup, not measured).
TAG_SETUP_CONCURRENCY = 8

LOAD_SCRIPT = Path(__file__).with_name("load.py")


@dataclass(frozen=True)
class Sizes:
    """How much each workload does; `run.py` fills this from the command line."""

    blob_bytes: int
    blobs_per_round: int
    chunk_bytes: int
    pulls_per_round: int
    rate_seconds: float
    warmup_seconds: float
    concurrency: tuple[int, ...]
    tag_count: int
    tag_list_requests: int
    load_generator: str


@dataclass(frozen=True)
class Figure:
    """One measurement, and how much work it took (MB moved, requests answered).

    The work lets the server's CPU time be put per unit, which a busy machine disturbs far
    less than it disturbs rates.
    """

    value: float
    work: float


@dataclass(frozen=True)
class Seeded:
    """What setup left in a registry for the read workloads."""

    pull_digests: list[str]


def unique_blob(size: int) -> tuple[bytes, str]:
    """Random content, never pushed before, and its digest (hashed here, before any timing)."""
    content = os.urandom(size)
    return content, sha256_digest(content)


def seed(target: Target, sizes: Sizes) -> Seeded:
    """Store what the read workloads read: blobs to pull, a tagged image, a repository of tags."""
    blobs = [unique_blob(sizes.blob_bytes) for _ in range(sizes.blobs_per_round)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer, layer_digest = unique_blob(4096)
    manifest = image_manifest(config, [layer])
    with target.client() as client:
        for content, digest in blobs:
            push_monolithic(client, PULL_REPOSITORY, content, digest)
            if fetch_blob(client, PULL_REPOSITORY, digest) != content:
                raise BenchError(f"{target.name} returned other bytes than were pushed")
        for repository in (MANIFEST_REPOSITORY, TAGS_REPOSITORY):
            push_monolithic(client, repository, config, sha256_digest(config))
            push_monolithic(client, repository, layer, layer_digest)
        put_manifest(client, MANIFEST_REPOSITORY, MANIFEST_TAG, manifest)
        if get_manifest(client, MANIFEST_REPOSITORY, MANIFEST_TAG).content != manifest:
            raise BenchError(f"{target.name} returned another manifest than was pushed")
    asyncio.run(_tag_many(target, manifest, sizes.tag_count))
    return Seeded([digest for _, digest in blobs])


async def _tag_many(target: Target, manifest: bytes, count: int) -> None:
    names = iter([f"v{number:05d}" for number in range(count)])
    async with target.async_client(TAG_SETUP_CONCURRENCY) as client:

        async def worker() -> None:
            for name in names:
                await put_manifest_async(client, TAGS_REPOSITORY, name, manifest)

        await asyncio.gather(*(worker() for _ in range(TAG_SETUP_CONCURRENCY)))


def push_monolithic_rate(target: Target, sizes: Sizes) -> Figure:
    """MB/s of POST + PUT uploads of whole blobs, one after another on one connection."""
    blobs = [unique_blob(sizes.blob_bytes) for _ in range(sizes.blobs_per_round)]
    with target.client() as client:
        started = time.perf_counter()
        for content, digest in blobs:
            push_monolithic(client, PUSH_REPOSITORY, content, digest)
        elapsed = time.perf_counter() - started
    megabytes = sizes.blob_bytes * len(blobs) / MB
    return Figure(megabytes / elapsed, megabytes)


def push_chunked_rate(target: Target, sizes: Sizes) -> Figure:
    """MB/s of POST + PATCH per chunk (with Content-Range) + PUT uploads."""
    blobs = [unique_blob(sizes.blob_bytes) for _ in range(sizes.blobs_per_round)]
    with target.client() as client:
        started = time.perf_counter()
        for content, digest in blobs:
            push_chunked(client, PUSH_REPOSITORY, content, digest, sizes.chunk_bytes)
        elapsed = time.perf_counter() - started
    megabytes = sizes.blob_bytes * len(blobs) / MB
    return Figure(megabytes / elapsed, megabytes)


def pull_rate(target: Target, sizes: Sizes, seeded: Seeded) -> Figure:
    """MB/s of whole-blob GETs, one after another on one connection."""
    received = 0
    reader = BlobReader(target)
    try:
        started = time.perf_counter()
        for number in range(sizes.pulls_per_round):
            digest = seeded.pull_digests[number % len(seeded.pull_digests)]
            received += reader.pull(PULL_REPOSITORY, digest)
        elapsed = time.perf_counter() - started
    finally:
        reader.close()
    if received != sizes.blob_bytes * sizes.pulls_per_round:
        raise BenchError(f"{target.name} sent {received} bytes, not the blobs' full size")
    return Figure(received / MB / elapsed, received / MB)


def manifest_rate(target: Target, sizes: Sizes, method: str, connections: int) -> Figure:
    """Requests/s of HEAD or GET of a manifest by tag over `connections` keep-alive clients."""
    return _apply_load(target, method, connections, sizes.rate_seconds, sizes.load_generator)


def warm_up(target: Target, sizes: Sizes) -> None:
    """A short untimed load, so that the first measured run does not pay for cold caches."""
    if sizes.warmup_seconds > 0:
        for method in ("HEAD", "GET"):
            _apply_load(target, method, 16, sizes.warmup_seconds, sizes.load_generator)


def _apply_load(
    target: Target, method: str, connections: int, seconds: float, generator: str
) -> Figure:
    spec = {
        "url": target.url + manifest_path(MANIFEST_REPOSITORY, MANIFEST_TAG),
        "method": method,
        "headers": {**target.headers, "Accept": MANIFEST_ACCEPT},
        "connections": connections,
        "seconds": seconds,
        "generator": generator,
    }
    finished = subprocess.run(
        [sys.executable, str(LOAD_SCRIPT), json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        tail = "\n".join(finished.stderr.splitlines()[-15:])
        raise BenchError(f"the load generator failed against {target.name}:\n{tail}")
    summary = json.loads(finished.stdout)
    if summary["failures"] or not summary["requests"]:
        raise BenchError(
            f"{method} against {target.name}: {summary['failures']} failed requests,"
            f" {summary['requests']} good; first failure: {summary['first_failure']}"
        )
    print(
        f"    {target.name} {method} x{connections}: {summary['requests']} requests,"
        f" p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, the client used"
        f" {100 * summary['client_cpu_seconds'] / summary['seconds']:.0f}% of a core",
        flush=True,
    )
    return Figure(float(summary["rate"]), float(summary["requests"]))


def tag_list_latency(target: Target, sizes: Sizes) -> Figure:
    """Median milliseconds of listing every tag of a repository with `tag_count` tags."""
    durations = []
    with target.client() as client:
        for _ in range(sizes.tag_list_requests):
            started = time.perf_counter()
            tags = list_tags(client, TAGS_REPOSITORY)
            durations.append(time.perf_counter() - started)
            if len(tags) != sizes.tag_count:
                raise BenchError(f"{target.name} listed {len(tags)} tags, not {sizes.tag_count}")
    return Figure(1000 * statistics.median(durations), len(durations))


def describe(sizes: Sizes) -> dict[str, object]:
    """The sizes as plain data, for the report."""
    return asdict(sizes)
