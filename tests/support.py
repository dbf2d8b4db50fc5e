"""Helpers for tests: push blobs and images over the plain HTTP API."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# The OCI error codes of distribution-spec v1.1; every error body must use one of them.
SPEC_ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)


def sha256(content: bytes) -> str:
    """The sha256 digest string of `content`."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def sha512(content: bytes) -> str:
    """The sha512 digest string of `content`."""
    return "sha512:" + hashlib.sha512(content).hexdigest()


# The namespace the test account owns on the `server` and `own_server` fixtures.
TEST_NAMESPACE = "test"


def unique_repository(prefix: str = "repo") -> str:
    """A repository name in the test account's namespace that no other test uses."""
    return f"{TEST_NAMESPACE}/{prefix}/{uuid.uuid4().hex[:12]}"


def start_upload(client: httpx.Client, repository: str) -> str:
    """Open an upload session; return its Location."""
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    return started.headers["location"]


def push_blob(client: httpx.Client, repository: str, content: bytes, digest: str = "") -> str:
    """Upload a blob monolithically (POST then PUT); return its digest (sha256 unless given)."""
    digest = digest or sha256(content)
    done = client.put(start_upload(client, repository), params={"digest": digest}, content=content)
    assert done.status_code == 201, done.text
    return digest


def descriptor(media_type: str, content: bytes) -> dict[str, object]:
    """An OCI descriptor of `content`."""
    return {"mediaType": media_type, "digest": sha256(content), "size": len(content)}


def image_manifest(
    client: httpx.Client, repository: str, layers: int = 2, layer_size: int = 1024
) -> bytes:
    """Push a config and random layers; return the bytes of a manifest naming them."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    push_blob(client, repository, config)
    layer_descriptors = []
    for _ in range(layers):
        layer = os.urandom(layer_size)
        push_blob(client, repository, layer)
        layer_descriptors.append(descriptor(OCI_LAYER, layer))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layer_descriptors,
    }
    return json.dumps(manifest).encode()


def push_manifest(
    client: httpx.Client,
    repository: str,
    reference: str,
    manifest: bytes,
    media_type: str = OCI_MANIFEST,
) -> httpx.Response:
    """PUT a manifest; return the response."""
    return client.put(
        f"/v2/{repository}/manifests/{reference}",
        content=manifest,
        headers={"Content-Type": media_type},
    )


def push_image(client: httpx.Client, repository: str, tag: str, layers: int = 2) -> str:
    """Push a small random image under `tag`; return the manifest digest."""
    manifest = image_manifest(client, repository, layers)
    response = push_manifest(client, repository, tag, manifest)
    assert response.status_code == 201, response.text
    return response.headers["docker-content-digest"]


def error_codes(response: httpx.Response) -> list[str]:
    """The OCI error codes in a response body."""
    return [error["code"] for error in response.json()["errors"]]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """Assert a spec error: this status, a JSON `{"errors": [...]}` body led by this code."""
    assert response.status_code == status, (response.status_code, response.text)
    if response.request.method == "HEAD":
        assert response.content == b""
        return
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert errors, response.text
    assert all(error["code"] in SPEC_ERROR_CODES for error in errors), response.text
    assert all(isinstance(error["message"], str) for error in errors), response.text
    assert errors[0]["code"] == code, response.text
