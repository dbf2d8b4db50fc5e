"""The deletion and backup routes of /api/v1 over a real server, as the console calls them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.support import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    sha256,
    start_upload,
    unique_repository,
)

if TYPE_CHECKING:
    from tests.conftest import RunningServer

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Stranger:
    """Another account on the shared server, with one repository of its own."""

    name: str
    namespace: str
    repository: str
    registry: httpx.Client
    api: httpx.Client


def management_api(server: RunningServer, name: str) -> httpx.Client:
    """/api/v1 signed in with the account password the server fixture gives every account."""
    auth = (name, f"account-{name}-secret")
    return httpx.Client(base_url=f"{server.url}/api/v1", auth=auth, timeout=120)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """The management API as the tester account."""
    with management_api(server, server.username or "") as client:
        yield client


@pytest.fixture(scope="module")
def stranger(server: RunningServer) -> Iterator[Stranger]:
    """An account that may keep one tag per repository, owning an image tester may not see."""
    name = f"stranger{uuid.uuid4().hex[:8]}"
    _, registry_password = server.create_account(name, (name,))
    limited = server.cli("quota", "set", name, "--tags-per-repository", "1")
    assert limited.returncode == 0, limited.stderr
    registry_auth = (name, registry_password)
    with (
        httpx.Client(base_url=server.url, auth=registry_auth, timeout=60) as registry,
        management_api(server, name) as api,
    ):
        repository = f"{name}/private"
        push_image(registry, repository, "v1")
        yield Stranger(name, name, repository, registry, api)


def error_of(response: httpx.Response, status: int) -> tuple[str, str]:
    """The code and message of an error answer, after checking its status."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["errors"][0]
    return error["code"], error["message"]


def test_deleting_a_tag_keeps_its_twin_and_lists_it_as_restorable(
    client: httpx.Client, api: httpx.Client
) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    push_manifest(client, repository, "one", manifest)
    push_manifest(client, repository, "two", manifest)

    deleted = api.delete(f"/repositories/{repository}/tags/one")

    assert deleted.status_code == 204, deleted.text
    assert client.get(f"/v2/{repository}/manifests/one").status_code == 404
    assert client.get(f"/v2/{repository}/manifests/two").content == manifest
    [item] = [
        item
        for item in api.get("/namespaces/test/deleted").json()
        if item["repository"] == repository
    ]
    assert (item["kind"], item["tag"], item["digest"], item["deleted_by"]) == (
        "tag",
        "one",
        sha256(manifest),
        "tester",
    )


def test_a_repository_delete_without_its_name_repeated_is_refused(
    client: httpx.Client, api: httpx.Client
) -> None:
    repository = unique_repository()
    push_image(client, repository, "v1")

    for params in ({}, {"confirm": "test/something-else"}):
        refused = api.delete(f"/repositories/{repository}", params=params)
        assert error_of(refused, 400) == (
            "INVALID_FIELD",
            f"deleting {repository} removes every tag in it; to confirm, repeat its name"
            f" exactly: confirm={repository}",
        )
        assert refused.json()["errors"][0]["detail"] == {"field": "confirm"}

    assert client.get(f"/v2/{repository}/tags/list").json()["tags"] == ["v1"]


def test_what_is_missing_or_someone_elses_is_not_found_alike(
    client: httpx.Client, api: httpx.Client, stranger: Stranger
) -> None:
    theirs, mine = stranger.repository, unique_repository()
    push_image(client, mine, "v1")
    elsewhere = [f"{stranger.namespace}/nothing", f"nobody{uuid.uuid4().hex[:6]}/nothing"]

    for repository in (theirs, *elsewhere, unique_repository()):
        for answer in (
            api.delete(f"/repositories/{repository}", params={"confirm": repository}),
            api.get(f"/repositories/{repository}/export"),
        ):
            assert error_of(answer, 404) == ("NAME_UNKNOWN", f"repository {repository} is unknown")
    for repository in (theirs, *elsewhere):
        answer = api.delete(f"/repositories/{repository}/tags/v1")
        assert error_of(answer, 404) == ("NAME_UNKNOWN", f"repository {repository} is unknown")
    for namespace in (stranger.namespace, "nobody"):
        for answer in (
            api.get(f"/namespaces/{namespace}/deleted"),
            api.post(f"/namespaces/{namespace}/deleted/tag-1/restore"),
        ):
            assert error_of(answer, 404) == (
                "NOT_FOUND",
                f"you have no namespace named {namespace!r}",
            )
    assert error_of(api.delete(f"/repositories/{mine}/tags/v2"), 404) == (
        "MANIFEST_UNKNOWN",
        f"tag v2 is unknown to repository {mine}",
    )
    assert error_of(api.delete(f"/repositories/{unique_repository()}"), 400)[0] == "INVALID_FIELD"
    assert error_of(api.post("/namespaces/test/deleted/tag-999999/restore"), 404)[0] == (
        "NAME_UNKNOWN"
    )
    assert stranger.registry.get(f"/v2/{theirs}/tags/list").json()["tags"] == ["v1"]


def test_a_restore_that_would_clash_or_exceed_the_quota_is_a_conflict(
    client: httpx.Client, api: httpx.Client, stranger: Stranger
) -> None:
    repository = unique_repository()
    push_image(client, repository, "v1")
    assert api.delete(f"/repositories/{repository}/tags/v1").status_code == 204
    reused = push_image(client, repository, "v1")
    theirs = f"{stranger.namespace}/quota-{uuid.uuid4().hex[:6]}"
    push_image(stranger.registry, theirs, "v1")
    assert stranger.api.delete(f"/repositories/{theirs}/tags/v1").status_code == 204
    push_image(stranger.registry, theirs, "v2")

    clash = api.post(f"/namespaces/test/deleted/{deleted_id(api, 'test', repository)}/restore")
    over = stranger.api.post(
        f"/namespaces/{stranger.namespace}/deleted/"
        f"{deleted_id(stranger.api, stranger.namespace, theirs)}/restore"
    )

    assert error_of(clash, 409) == (
        "CONFLICT",
        f"tag {repository}:v1 cannot be restored: the tag name has since been reused",
    )
    assert error_of(over, 409) == (
        "CONFLICT",
        f"tag {theirs}:v1 cannot be restored: tag quota exceeded: 1 tags per repository"
        f" {theirs}; request more in the console",
    )
    assert client.get(f"/v2/{repository}/manifests/v1").headers["docker-content-digest"] == reused


def deleted_id(api: httpx.Client, namespace: str, repository: str) -> str:
    listed = api.get(f"/namespaces/{namespace}/deleted")
    assert listed.status_code == 200, listed.text
    [item] = [item for item in listed.json() if item["repository"] == repository]
    item_id: str = item["id"]
    return item_id


def test_an_export_is_an_attachment_that_holds_every_tag(
    client: httpx.Client, api: httpx.Client, server: RunningServer
) -> None:
    repository = unique_repository()
    single = push_image(client, repository, "single")
    children = [image_manifest(client, repository) for _ in range(2)]
    for child in children:
        push_manifest(client, repository, sha256(child), child)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, child) for child in children],
        }
    ).encode()
    push_manifest(client, repository, "multi", index, OCI_INDEX)

    everything = api.get(f"/repositories/{repository}/export")
    one = api.get(f"/repositories/{repository}/export", params={"tag": "single"})

    assert everything.status_code == 200, everything.text
    assert everything.headers["content-type"] == "application/x-tar"
    filename = repository.replace("/", "_")
    assert everything.headers["content-disposition"] == f'attachment; filename="{filename}.tar"'
    assert int(everything.headers["content-length"]) == len(everything.content)
    assert tagged(everything.content) == {"single": single, "multi": sha256(index)}
    assert one.headers["content-disposition"] == f'attachment; filename="{filename}_single.tar"'
    assert tagged(one.content) == {"single": single}
    assert error_of(api.get(f"/repositories/{repository}/export?tag=v9"), 404)[0] == (
        "MANIFEST_UNKNOWN"
    )
    assert error_of(api.get(f"/repositories/{repository}/export?tag=.bad"), 400)[0] == (
        "MANIFEST_INVALID"
    )
    anonymous = httpx.get(f"{server.url}/api/v1/repositories/{repository}/export")
    assert error_of(anonymous, 401)[0] == "UNAUTHORIZED"


def tagged(archive: bytes) -> dict[str, str]:
    """The tags an archive's index.json names, with their digests; every blob checked."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as reader:
        for member in reader:
            if member.name.startswith("blobs/sha256/") and member.isfile():
                content = reader.extractfile(member)
                assert content is not None
                assert sha256(content.read()) == f"sha256:{member.name.rpartition('/')[2]}"
        index = reader.extractfile("index.json")
        assert index is not None
        entries = json.load(index)["manifests"]
    return {entry["annotations"][REF_NAME]: entry["digest"] for entry in entries}


# The large export: layers of random bytes, generated and pushed a chunk at a time.
LAYER_BYTES = 50 * 1024 * 1024
LAYERS = 4
CHUNK_BYTES = 8 * 1024 * 1024
RSS_GROWTH_LIMIT = 30 * 1024 * 1024


def push_large_layer(client: httpx.Client, repository: str) -> dict[str, object]:
    """A random layer of LAYER_BYTES sent in PATCH chunks; its descriptor."""
    location, hasher = start_upload(client, repository), hashlib.sha256()
    for offset in range(0, LAYER_BYTES, CHUNK_BYTES):
        piece = os.urandom(min(CHUNK_BYTES, LAYER_BYTES - offset))
        hasher.update(piece)
        sent = client.patch(
            location,
            content=piece,
            headers={"Content-Range": f"{offset}-{offset + len(piece) - 1}"},
        )
        assert sent.status_code == 202, sent.text
        location = sent.headers["location"]
    digest = f"sha256:{hasher.hexdigest()}"
    done = client.put(location, params={"digest": digest})
    assert done.status_code == 201, done.text
    return {"mediaType": OCI_LAYER, "digest": digest, "size": LAYER_BYTES}


def memory_of(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


class PeakWatcher:
    """Samples a process's VmRSS while a block runs, in case its VmHWM cannot be reset."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._done = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PeakWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, memory_of(self.pid)["VmRSS"])
            time.sleep(0.02)


class ResponseReader(io.RawIOBase):
    """A streamed response body as a file, so that tarfile reads it without holding it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            self._left = next(self._chunks, b"")
            if not self._left:
                return 0
        size = min(len(buffer), len(self._left))
        buffer[:size], self._left = self._left[:size], self._left[size:]
        return size


def test_exporting_a_large_repository_keeps_the_server_memory_flat(
    server: RunningServer, client: httpx.Client, api: httpx.Client
) -> None:
    repository = unique_repository("large")
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    push_blob(client, repository, config)
    layers = [push_large_layer(client, repository) for _ in range(LAYERS)]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers,
    }
    assert push_manifest(client, repository, "v1", json.dumps(manifest).encode()).is_success
    assert server.process is not None
    pid = server.process.pid
    before = memory_of(pid)

    checked = {}
    with api.stream("GET", f"/repositories/{repository}/export") as response:
        assert response.status_code == 200
        # Measured from the headers on: checking the account password (argon2id) has just
        # taken 64 MiB for a moment and given it back, on every management API request.
        # Writing 5 resets VmHWM to the current RSS (Linux 4.0 and later).
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        with PeakWatcher(pid) as watcher:
            body = io.BufferedReader(ResponseReader(response.iter_bytes()), 1024 * 1024)
            with tarfile.open(fileobj=body, mode="r|") as reader:
                for member in reader:
                    content = reader.extractfile(member) if member.isfile() else None
                    hasher = hashlib.sha256()
                    while content and (piece := content.read(1024 * 1024)):
                        hasher.update(piece)
                    checked[member.name.rpartition("/")[2]] = hasher.hexdigest()
    after = memory_of(pid)

    growth = max(after["VmHWM"], watcher.peak) - before["VmRSS"]
    figures = f"RSS before {before['VmRSS'] >> 20} MiB, peak during export +{growth >> 20} MiB"
    print(f"export of {LAYERS * LAYER_BYTES >> 20} MiB: {figures}")
    assert growth < RSS_GROWTH_LIMIT, figures
    for layer in layers:
        digest = str(layer["digest"]).removeprefix("sha256:")
        assert checked[digest] == digest
    api.delete(f"/repositories/{repository}", params={"confirm": repository})
