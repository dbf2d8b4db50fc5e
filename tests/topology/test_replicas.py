"""Two `moorage serve` replicas on PostgreSQL and S3 (moto), behind nginx, plus a separate
`moorage worker`: what one replica starts, the other finishes, and what runs on one
breaks nothing on the other.

Each replica has its own data dir; they share nothing but the database and the S3 bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.builds.buildsupport import create_rule, log_text, wait_build
from tests.builds.conftest import BUILD_ENVIRONMENT
from tests.builds.gitrepos import new_repository
from tests.builds.test_workers_e2e import worker
from tests.conftest import RunningServer, free_port
from tests.databases import postgresql_database_url
from tests.e2e.clients import Skopeo
from tests.e2e.layout import OciLayout, build_image, random_files
from tests.s3server import S3Server
from tests.support import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    push_blob,
    push_manifest,
    sha256,
    unique_repository,
)
from tests.topology.loadbalancer import UPSTREAM_HEADER, nginx_round_robin

from moorage.oci.digest import Digest
from moorage.storage import create_blob_store

TAGS_PER_REPOSITORY = 5
GRACE_SECONDS = 10


@dataclass
class Deployment:
    """The replicas, the load balancer in front of them, and who to sign in as."""

    first: RunningServer
    second: RunningServer
    balancer_url: str
    auth: tuple[str, str]
    api_auth: tuple[str, str]
    worker_log: Path

    @property
    def replicas(self) -> list[RunningServer]:
        return [self.first, self.second]

    def client(self, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url, auth=self.auth, timeout=60)

    def api(self, replica: RunningServer) -> httpx.Client:
        return httpx.Client(base_url=f"{replica.url}/api/v1", auth=self.api_auth, timeout=60)


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("topology")
    balancer_port = free_port()
    balancer_url = f"http://127.0.0.1:{balancer_port}"
    shared = {
        **s3_server.environment(s3_server.create_bucket()),
        **BUILD_ENVIRONMENT,
        "MOORAGE_BUILDS__IN_PROCESS_WORKER": "false",
        # Token realms and upload locations name the load balancer, not a replica.
        "MOORAGE_PUBLIC_URL": balancer_url,
        "MOORAGE_QUOTAS__TAGS_PER_REPOSITORY": str(TAGS_PER_REPOSITORY),
        "MOORAGE_DELETED_RETENTION": "0",
        "MOORAGE_GC_GRACE_PERIOD": f"{GRACE_SECONDS}s",
    }
    database = {"MOORAGE_DATABASE_URL": postgresql_database_url()}
    # Only the first replica collects garbage, every second.
    first = RunningServer(
        root / "first", env={**shared, "MOORAGE_GC_INTERVAL": "1s"}, database_env=database
    )
    second = RunningServer(
        root / "second", env={**shared, "MOORAGE_GC_INTERVAL": "0"}, database_env=database
    )
    name, password = first.create_account("tester", ("test",))
    threads = [threading.Thread(target=replica.start) for replica in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for replica in (first, second):
        replica.username, replica.password = name, password
    upstreams = [first.host, second.host]
    worker_home = RunningServer(root / "worker", env=shared, database_env=database)
    worker_log = root / "worker.log"
    try:
        with (
            nginx_round_robin(root / "nginx", balancer_port, upstreams),
            worker(worker_home, worker_log),
        ):
            yield Deployment(
                first,
                second,
                balancer_url,
                (name, password),
                (name, "account-tester-secret"),
                worker_log,
            )
    finally:
        for replica in (first, second):
            replica.stop()
    for replica in (first, second):
        assert "Traceback" not in replica.log_text(), replica.log_text()[-4000:]


def test_a_chunked_push_completes_with_its_requests_spread_over_both_replicas(
    deployment: Deployment,
) -> None:
    repository = unique_repository("chunked")
    content = os.urandom(6 * 256 * 1024)
    served_by: set[str] = set()
    with deployment.client(deployment.balancer_url) as client:
        started = client.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        served_by.add(started.headers[UPSTREAM_HEADER])
        location = started.headers["location"]
        for offset in range(0, len(content), 256 * 1024):
            chunk = content[offset : offset + 256 * 1024]
            patched = client.patch(
                location,
                content=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
            )
            assert patched.status_code == 202, patched.text
            assert patched.headers["range"] == f"0-{offset + len(chunk) - 1}"
            served_by.add(patched.headers[UPSTREAM_HEADER])
            location = patched.headers["location"]
        done = client.put(location, params={"digest": sha256(content)})
        assert done.status_code == 201, done.text
        served_by.add(done.headers[UPSTREAM_HEADER])

    assert served_by == {replica.host for replica in deployment.replicas}
    for replica in deployment.replicas:
        with deployment.client(replica.url) as client:
            fetched = client.get(f"/v2/{repository}/blobs/{sha256(content)}", follow_redirects=True)
            assert fetched.status_code == 200
            assert hashlib.sha256(fetched.content).hexdigest() == sha256(content).split(":")[1]


def test_skopeo_pushes_through_one_replica_and_pulls_through_the_other(
    deployment: Deployment, tmp_path: Path
) -> None:
    image = build_image([random_files("srv", count=2, size=2 * 1024 * 1024)])
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    repository = unique_repository("skopeo")

    Skopeo(deployment.first, tmp_path / "home").copy(
        f"oci:{source.path}:v1", f"docker://{deployment.first.host}/{repository}:v1"
    )
    pulled = OciLayout(tmp_path / "pulled")
    Skopeo(deployment.second, tmp_path / "home").copy(
        f"docker://{deployment.second.host}/{repository}:v1", f"oci:{pulled.path}:v1"
    )

    assert pulled.tagged("v1")["digest"] == image.digest
    assert pulled.blob(image.digest) == image.manifest
    for digest, content in image.blobs().items():
        assert pulled.blob(digest) == content


def test_a_token_one_replica_issued_is_honoured_by_the_other(deployment: Deployment) -> None:
    repository = unique_repository("token")
    with deployment.client(deployment.first.url) as client:
        push_blob(client, repository, b"shared keys")
        issued = client.get(
            "/auth/token", params={"service": "moorage", "scope": f"repository:{repository}:pull"}
        )
    assert issued.status_code == 200, issued.text
    token = issued.json()["token"]

    listed = httpx.get(
        f"{deployment.second.url}/v2/{repository}/blobs/{sha256(b'shared keys')}",
        headers={"Authorization": f"Bearer {token}"},
        follow_redirects=True,
    )

    assert listed.status_code == 200, listed.text
    assert listed.content == b"shared keys"


def test_concurrent_tag_pushes_on_both_replicas_respect_the_tag_quota_exactly(
    deployment: Deployment,
) -> None:
    repository = unique_repository("quota")
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = os.urandom(1024)
    with deployment.client(deployment.balancer_url) as client:
        push_blob(client, repository, config)
        push_blob(client, repository, layer)
    attempts = 4 * TAGS_PER_REPOSITORY

    def push_tag(index: int) -> int:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
                "annotations": {"attempt": str(index)},
            }
        ).encode()
        replica = deployment.replicas[index % 2]
        with deployment.client(replica.url) as client:
            return push_manifest(client, repository, f"t{index}", manifest).status_code

    with ThreadPoolExecutor(attempts) as pool:
        statuses = list(pool.map(push_tag, range(attempts)))

    assert sorted(statuses) == [201] * TAGS_PER_REPOSITORY + [403] * (
        attempts - TAGS_PER_REPOSITORY
    )
    with deployment.client(deployment.balancer_url) as client:
        tags = client.get(f"/v2/{repository}/tags/list").json()["tags"]
    assert len(tags) == TAGS_PER_REPOSITORY


def test_a_build_queued_on_one_replica_is_run_once_by_the_worker(
    deployment: Deployment, tmp_path: Path
) -> None:
    source = new_repository(
        tmp_path / "source", {"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "built"}
    )
    with deployment.api(deployment.first) as first, deployment.api(deployment.second) as second:
        rule = create_rule(first, git_url=f"file://{source}", ref="main")
        queued = first.post(f"/builds/rules/{rule['id']}/runs")
        assert queued.status_code == 202, queued.text
        build = wait_build(second, queued.json()["id"])
        log = log_text(second, build["id"])

    assert build["state"] == "succeeded", log
    assert log.count(f"[moorage] build {build['id']} of") == 1, log
    # The separate worker claimed it once; the replicas run no worker of their own.
    claims = [
        entry
        for entry in map(json.loads, deployment.worker_log.read_text().splitlines())
        if entry.get("event") == "build claimed" and entry.get("build_id") == build["id"]
    ]
    assert [entry["worker_id"] for entry in claims] == [build["worker_id"]]
    assert log.count("Cloning into") == 1
    with deployment.client(deployment.second.url) as client:
        tags = client.get(f"/v2/{rule['repository']}/tags/list")
    assert tags.status_code == 200, tags.text
    assert tags.json()["tags"]


def test_garbage_collection_on_one_replica_breaks_no_push_on_the_other(
    deployment: Deployment,
) -> None:
    # Garbage: an image whose manifest is deleted at once (no restore window here).
    garbage_repository = unique_repository("garbage")
    with deployment.client(deployment.second.url) as client:
        garbage_layer = os.urandom(4096)
        garbage = push_whole_image(client, garbage_repository, "old", garbage_layer)
        deleted = client.delete(f"/v2/{garbage_repository}/manifests/{garbage}")
        assert deleted.status_code == 202, deleted.text

    # Pushes to the second replica while the first collects garbage every second, until the
    # garbage has passed its grace period and is gone.
    # (Each image to a repository of its own, out of the way of the small tag quota.)
    pushed: list[tuple[str, str, bytes]] = []
    deadline = time.monotonic() + GRACE_SECONDS + 60
    with deployment.client(deployment.second.url) as client:
        while stored(deployment, sha256(garbage_layer)):
            assert time.monotonic() < deadline, "the first replica never collected the garbage"
            repository, layer = unique_repository("busy"), os.urandom(64 * 1024)
            pushed.append((repository, push_whole_image(client, repository, "v1", layer), layer))
    assert len(pushed) >= 5

    for replica in deployment.replicas:
        with deployment.client(replica.url) as client:
            for repository, digest, layer in pushed:
                manifest = client.get(
                    f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST}
                )
                assert manifest.status_code == 200, manifest.text
                assert sha256(manifest.content) == digest
                blob = client.get(f"/v2/{repository}/blobs/{sha256(layer)}", follow_redirects=True)
                assert blob.status_code == 200, blob.text
                assert blob.content == layer


def push_whole_image(client: httpx.Client, repository: str, tag: str, layer: bytes) -> str:
    """Push a one-layer image; its manifest digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "layer": sha256(layer)}).encode()
    push_blob(client, repository, config)
    push_blob(client, repository, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    ).encode()
    response = push_manifest(client, repository, tag, manifest)
    assert response.status_code == 201, response.text
    return str(response.headers["docker-content-digest"])


def stored(deployment: Deployment, digest: str) -> bool:
    """Whether the shared blob storage still holds `digest`."""
    settings = deployment.second.settings()

    async def size() -> int | None:
        return await create_blob_store(settings).blob_size(Digest.parse(digest))

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, size()).result() is not None
