"""Stored blobs over a real server: HEAD, GET, byte ranges, DELETE."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from tests.conftest import RunningServer
from tests.support import (
    assert_error,
    image_manifest,
    push_blob,
    push_manifest,
    sha256,
    unique_repository,
)

Stored = tuple[str, bytes, str]


@pytest.fixture(scope="module")
def stored(server: RunningServer) -> Stored:
    """A 2048-byte blob in its own repository, as the conformance suite's range tests use."""
    repository, content = unique_repository(), os.urandom(2048)
    with httpx.Client(base_url=server.url, timeout=60, auth=server.http_auth) as own:
        return repository, content, push_blob(own, repository, content)


def test_head_says_size_and_digest_without_a_body(client: httpx.Client, stored: Stored) -> None:
    repository, content, digest = stored

    head = client.head(f"/v2/{repository}/blobs/{digest}")

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(content))
    assert head.headers["docker-content-digest"] == digest
    assert head.headers["docker-distribution-api-version"] == "registry/2.0"


def test_get_returns_the_exact_bytes(client: httpx.Client, stored: Stored) -> None:
    repository, content, digest = stored

    got = client.get(f"/v2/{repository}/blobs/{digest}")

    assert got.status_code == 200
    assert got.content == content
    assert got.headers["content-length"] == str(len(content))
    assert got.headers["docker-content-digest"] == digest


def test_empty_blob_has_content_length_zero(client: httpx.Client) -> None:
    repository = unique_repository()
    digest = push_blob(client, repository, b"")

    head = client.head(f"/v2/{repository}/blobs/{digest}")
    got = client.get(f"/v2/{repository}/blobs/{digest}")

    assert head.status_code == 200
    assert head.headers["content-length"] == "0"
    assert got.status_code == 200
    assert got.content == b""
    assert got.headers["content-length"] == "0"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2047),
        ("bytes=-500", 1548, 2047),
        ("bytes=2000-5000", 2000, 2047),
        ("bytes=0-0", 0, 0),
        ("bytes=-5000", 0, 2047),
    ],
)
def test_range_read_is_206(
    client: httpx.Client, stored: Stored, header: str, first: int, last: int
) -> None:
    repository, content, digest = stored

    partial = client.get(f"/v2/{repository}/blobs/{digest}", headers={"Range": header})

    assert partial.status_code == 206
    assert partial.content == content[first : last + 1]
    assert partial.headers["content-length"] == str(last - first + 1)
    assert partial.headers["content-range"] == f"bytes {first}-{last}/2048"


@pytest.mark.parametrize("header", ["bytes=500-0", "bytes=5000-10000", "bytes=2048-", "bytes=-0"])
def test_unsatisfiable_range_is_416(client: httpx.Client, stored: Stored, header: str) -> None:
    repository, _content, digest = stored

    refused = client.get(f"/v2/{repository}/blobs/{digest}", headers={"Range": header})

    assert_error(refused, 416, "BLOB_UPLOAD_INVALID")


def test_range_of_another_unit_is_ignored(client: httpx.Client, stored: Stored) -> None:
    repository, content, digest = stored

    whole = client.get(f"/v2/{repository}/blobs/{digest}", headers={"Range": "items=0-5"})

    assert whole.status_code == 200
    assert whole.content == content


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_unknown_blob_is_404(client: httpx.Client, method: str) -> None:
    repository = unique_repository()
    push_blob(client, repository, b"something else")

    missing = client.request(method, f"/v2/{repository}/blobs/{sha256(b'hello world')}")

    assert_error(missing, 404, "BLOB_UNKNOWN")


def test_blob_of_another_repository_is_not_served(client: httpx.Client) -> None:
    digest = push_blob(client, unique_repository(), os.urandom(32))

    elsewhere = client.get(f"/v2/{unique_repository()}/blobs/{digest}")

    assert_error(elsewhere, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nope"])
def test_malformed_digest_is_digest_invalid(client: httpx.Client, digest: str) -> None:
    response = client.get(f"/v2/{unique_repository()}/blobs/{digest}")

    assert_error(response, 400, "DIGEST_INVALID")


def test_delete_unlinks_the_blob(client: httpx.Client) -> None:
    repository = unique_repository()
    digest = push_blob(client, repository, os.urandom(64))

    deleted = client.delete(f"/v2/{repository}/blobs/{digest}")

    assert deleted.status_code == 202
    assert_error(client.head(f"/v2/{repository}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(client.get(f"/v2/{repository}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(client.delete(f"/v2/{repository}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_delete_leaves_other_repositories_alone(client: httpx.Client) -> None:
    first, second, content = unique_repository(), unique_repository(), os.urandom(64)
    digest = push_blob(client, first, content)
    push_blob(client, second, content)

    client.delete(f"/v2/{first}/blobs/{digest}")

    assert client.get(f"/v2/{second}/blobs/{digest}").content == content


def test_delete_in_an_unknown_repository_is_404(client: httpx.Client) -> None:
    response = client.delete(f"/v2/{unique_repository()}/blobs/{sha256(b'x')}")

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_a_blob_a_manifest_uses_cannot_be_deleted(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = json.loads(image_manifest(client, repository, layers=1))
    assert push_manifest(client, repository, "v1", json.dumps(manifest).encode()).status_code == 201
    layer = manifest["layers"][0]["digest"]

    refused = client.delete(f"/v2/{repository}/blobs/{layer}")

    assert_error(refused, 405, "UNSUPPORTED")
    assert "delete the manifest" in refused.json()["errors"][0]["message"]
    assert client.get(f"/v2/{repository}/blobs/{layer}").status_code == 200
    client.delete(f"/v2/{repository}/manifests/v1")
    assert client.delete(f"/v2/{repository}/blobs/{layer}").status_code == 405, (
        "a deleted manifest stays restorable, so its blobs stay too"
    )
