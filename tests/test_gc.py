"""`moorage gc` against a running server: exactly what deletions free, what the grace period
keeps, and collection on the server's own schedule."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from tests.conftest import RunningServer
from tests.support import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    push_blob,
    push_manifest,
    sha256,
)

from moorage.gc import GcReport
from moorage.services import build_services
from moorage.settings import Settings

TOTAL = re.compile(r"^(\d+) blobs, (\d+) bytes (?:would be )?reclaimed$", re.MULTILINE)


@contextmanager
def gc_server(tmp_path: Path, **env: str) -> Iterator[tuple[RunningServer, httpx.Client]]:
    """A server of the test's own with these MOORAGE_* settings, and a client for it."""
    running = RunningServer(tmp_path / "data", env={"MOORAGE_GC_INTERVAL": "0", **env})
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    try:
        with httpx.Client(base_url=running.url, auth=running.http_auth, timeout=60) as client:
            yield running, client
    finally:
        running.stop()
    assert "Traceback" not in running.log_text()


def push_image(client: httpx.Client, repository: str, tag: str, *layers: bytes) -> list[bytes]:
    """Push a fresh config and `layers` under `tag`; the config and layers, as pushed."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "id": os.urandom(8).hex()})
    blobs = [config.encode(), *layers]
    for blob in blobs:
        push_blob(client, repository, blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, blobs[0]),
        "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
    }
    response = push_manifest(client, repository, tag, json.dumps(manifest).encode())
    assert response.status_code == 201, response.text
    return blobs


def collect(server: RunningServer, *options: str) -> tuple[int, int, str]:
    """Run `moorage gc`; how many blobs and bytes it reports reclaimed, and all it printed."""
    result = server.cli("gc", *options)
    assert result.returncode == 0, result.stderr
    total = TOTAL.search(result.stdout)
    assert total is not None, result.stdout
    return int(total[1]), int(total[2]), result.stdout


def collect_in_process(server: RunningServer, grace: timedelta) -> GcReport:
    """One collection run from this process on the server's data dir, as `moorage gc` does,
    without the seconds a new interpreter takes: for tests that race the grace period."""
    database_url = server.database_env.get("MOORAGE_DATABASE_URL")
    settings = Settings(data_dir=server.data_dir, database_url=database_url, gc_grace_period=grace)

    async def run() -> GcReport:
        services = build_services(settings)
        try:
            return await services.gc.run()
        finally:
            await services.close()

    return asyncio.run(run())


def delete_repository(server: RunningServer, repository: str) -> None:
    """Delete a repository through the management API, as its owner."""
    response = httpx.delete(
        f"{server.url}/api/v1/repositories/{repository}",
        params={"confirm": repository},
        auth=(server.username or "", f"account-{server.username}-secret"),
    )
    assert response.status_code == 204, response.text


def stored_bytes(server: RunningServer) -> int:
    """What the blob files under the data dir add up to."""
    return sum(
        path.stat().st_size for path in (server.data_dir / "blobs").rglob("*") if path.is_file()
    )


def assert_pulls(client: httpx.Client, repository: str, tag: str, blobs: list[bytes]) -> None:
    manifest = client.get(f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert manifest.status_code == 200, manifest.text
    for blob in blobs:
        fetched = client.get(f"/v2/{repository}/blobs/{sha256(blob)}")
        assert fetched.status_code == 200, fetched.text
        assert sha256(fetched.content) == sha256(blob)


def test_gc_frees_exactly_the_unshared_bytes_of_what_was_deleted(tmp_path: Path) -> None:
    env = {"MOORAGE_DELETED_RETENTION": "0", "MOORAGE_GC_GRACE_PERIOD": "0"}
    with gc_server(tmp_path, **env) as (server, client):
        base = os.urandom(40_000)
        kept = push_image(client, "test/app", "v1", base, os.urandom(10_000))
        by_digest = push_image(client, "test/app", "v2", base, os.urandom(20_000))
        in_repository = push_image(client, "test/other", "v1", base, os.urandom(30_000))
        digest = client.head("/v2/test/app/manifests/v2", headers={"Accept": OCI_MANIFEST})
        deleted = client.delete(f"/v2/test/app/manifests/{digest.headers['docker-content-digest']}")
        assert deleted.status_code == 202, deleted.text
        delete_repository(server, "test/other")
        # The base layer is shared with test/app:v1, so only configs and unique layers go.
        unshared = [by_digest[0], by_digest[2], in_repository[0], in_repository[2]]
        expected = sum(len(blob) for blob in unshared)
        before = stored_bytes(server)

        blobs, freed, printed = collect(server, "--dry-run")
        assert (blobs, freed) == (4, expected)
        assert all(f"would remove blob {sha256(blob)}" in printed for blob in unshared)
        assert stored_bytes(server) == before

        blobs, freed, printed = collect(server)
        assert (blobs, freed) == (4, expected)
        assert before - stored_bytes(server) == expected
        assert_pulls(client, "test/app", "v1", kept)
        checked = server.cli("fsck")
        assert checked.returncode == 0, checked.stdout
        assert "0 problems, 0 garbage" in checked.stdout


def test_the_grace_period_spares_uploads_and_images_whose_tag_just_moved(tmp_path: Path) -> None:
    # Long enough that a run started right after a push lands inside it on a loaded machine.
    grace = timedelta(seconds=6)
    env = {"MOORAGE_DELETED_RETENTION": "0", "MOORAGE_GC_GRACE_PERIOD": "6"}
    with gc_server(tmp_path, **env) as (server, client):
        pending = os.urandom(5_000)
        push_blob(client, "test/pending", pending)
        old_image = push_image(client, "test/moving", "latest", os.urandom(7_000))
        new_image = push_image(client, "test/moving", "latest", os.urandom(9_000))
        pushed = time.monotonic()

        assert collect_in_process(server, grace).bytes_reclaimed == 0
        assert time.monotonic() - pushed < grace.total_seconds(), "too slow to test the grace"

        time.sleep(grace.total_seconds())
        # A client looks the pending blob up (and would skip uploading it): it stays longer.
        assert client.head(f"/v2/test/pending/blobs/{sha256(pending)}").status_code == 200
        looked_up = time.monotonic()
        done = collect_in_process(server, grace)
        assert time.monotonic() - looked_up < grace.total_seconds(), "too slow to test the grace"
        assert [manifest.repository for manifest in done.manifests] == ["test/moving"]
        assert sorted(blob.digest for blob in done.blobs) == sorted(map(sha256, old_image))
        assert_pulls(client, "test/moving", "latest", new_image)

        time.sleep(grace.total_seconds())
        done = collect_in_process(server, grace)
        assert [blob.digest for blob in done.blobs] == [sha256(pending)]
        assert client.head(f"/v2/test/pending/blobs/{sha256(pending)}").status_code == 404


def test_the_server_collects_on_its_own_schedule(tmp_path: Path) -> None:
    env = {
        "MOORAGE_DELETED_RETENTION": "0",
        "MOORAGE_GC_GRACE_PERIOD": "1",
        "MOORAGE_GC_INTERVAL": "1",
    }
    with gc_server(tmp_path, **env) as (server, client):
        _config, layer = push_image(client, "test/scheduled", "v1", os.urandom(3_000))
        digest = client.head("/v2/test/scheduled/manifests/v1", headers={"Accept": OCI_MANIFEST})
        manifest = digest.headers["docker-content-digest"]
        assert client.delete(f"/v2/test/scheduled/manifests/{manifest}").status_code == 202

        # Watched on disk: a HEAD would count as a use of the blob and keep it.
        encoded = sha256(layer).removeprefix("sha256:")
        blob_file = server.data_dir / "blobs" / "blobs" / "sha256" / encoded[:2] / encoded
        assert blob_file.exists()
        deadline = time.monotonic() + 30
        while blob_file.exists():
            assert time.monotonic() < deadline, "the server did not collect the layer"
            time.sleep(0.3)
        assert '"garbage collected"' in server.log_text()
