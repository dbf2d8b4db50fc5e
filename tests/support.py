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


def sha256(content: bytes) -> str:
    """The sha256 digest string of `content`."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def unique_repository(prefix: str = "test") -> str:
    """A repository name no other test uses."""
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def push_blob(client: httpx.Client, repository: str, content: bytes) -> str:
    """Upload a blob monolithically (POST then PUT); return its digest."""
    digest = sha256(content)
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = client.put(started.headers["location"], params={"digest": digest}, content=content)
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
