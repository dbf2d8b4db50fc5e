"""Manifests over a real server: every kind pushed, pulled, refused and deleted."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.conftest import RunningServer
from tests.support import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    assert_error,
    descriptor,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    sha256,
    sha512,
    unique_repository,
)

ACCEPT_ALL = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_MANIFEST}, {DOCKER_MANIFEST_LIST}"}


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document).encode()


def assert_served(
    client: httpx.Client, repository: str, reference: str, content: bytes, media_type: str
) -> None:
    """GET and HEAD answer with the exact bytes, type, length and digest that were pushed."""
    digest = sha512(content) if reference.startswith("sha512:") else sha256(content)
    url = f"/v2/{repository}/manifests/{reference}"
    got, head = client.get(url, headers=ACCEPT_ALL), client.head(url, headers=ACCEPT_ALL)
    for response in (got, head):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media_type
        assert response.headers["content-length"] == str(len(content))
        assert response.headers["docker-content-digest"] == digest
    assert got.content == content
    assert head.content == b""


def assert_created(response: httpx.Response, repository: str, digest: str) -> None:
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v2/{repository}/manifests/{digest}"
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["content-length"] == "0"


def empty_config(client: httpx.Client, repository: str) -> dict[str, object]:
    """Push the OCI empty blob `{}`; return its descriptor."""
    push_blob(client, repository, b"{}")
    return descriptor(OCI_EMPTY, b"{}")


def test_push_by_tag_then_pull_by_tag_and_digest(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)

    pushed = push_manifest(client, repository, "v1", manifest)

    assert_created(pushed, repository, sha256(manifest))
    assert_served(client, repository, "v1", manifest, OCI_MANIFEST)
    assert_served(client, repository, sha256(manifest), manifest, OCI_MANIFEST)


def test_push_by_digest_is_not_tagged(client: httpx.Client) -> None:
    repository = unique_repository()
    push_image(client, repository, "keep")
    manifest = image_manifest(client, repository)

    pushed = push_manifest(client, repository, sha256(manifest), manifest)

    assert_created(pushed, repository, sha256(manifest))
    assert_served(client, repository, sha256(manifest), manifest, OCI_MANIFEST)
    assert client.get(f"/v2/{repository}/tags/list").json()["tags"] == ["keep"]


def test_manifest_body_is_chunked_without_content_length(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)

    pushed = client.put(
        f"/v2/{repository}/manifests/streamed",
        content=iter([manifest[:10], manifest[10:]]),
        headers={"Content-Type": OCI_MANIFEST},
    )

    assert pushed.request.headers["transfer-encoding"] == "chunked"
    assert_created(pushed, repository, sha256(manifest))
    assert_served(client, repository, "streamed", manifest, OCI_MANIFEST)


def test_docker_manifest_and_manifest_list(client: httpx.Client) -> None:
    repository = unique_repository()
    config, layer = b'{"architecture":"amd64","os":"linux"}', os.urandom(512)
    push_blob(client, repository, config)
    push_blob(client, repository, layer)
    manifest = encode(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, config),
            "layers": [descriptor(DOCKER_LAYER, layer)],
        }
    )
    manifest_list = encode(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    **descriptor(DOCKER_MANIFEST, manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ],
        }
    )

    image = push_manifest(client, repository, "image", manifest, DOCKER_MANIFEST)
    listed = push_manifest(client, repository, "list", manifest_list, DOCKER_MANIFEST_LIST)

    assert_created(image, repository, sha256(manifest))
    assert_created(listed, repository, sha256(manifest_list))
    assert_served(client, repository, "image", manifest, DOCKER_MANIFEST)
    assert_served(client, repository, "list", manifest_list, DOCKER_MANIFEST_LIST)


def test_oci_index_nested_index_and_empty_index(client: httpx.Client) -> None:
    repository = unique_repository()
    amd64, arm64 = image_manifest(client, repository), image_manifest(client, repository)
    push_manifest(client, repository, sha256(amd64), amd64)
    push_manifest(client, repository, sha256(arm64), arm64)
    index = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**descriptor(OCI_MANIFEST, amd64), "platform": {"architecture": "amd64"}},
                {**descriptor(OCI_MANIFEST, arm64), "platform": {"architecture": "arm64"}},
            ],
        }
    )
    nested = encode(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_INDEX, index)]}
    )
    empty = encode({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})

    for content in (index, nested, empty):
        pushed = push_manifest(client, repository, sha256(content), content, OCI_INDEX)
        assert_created(pushed, repository, sha256(content))
        assert_served(client, repository, sha256(content), content, OCI_INDEX)


def test_index_with_a_missing_child_is_refused(client: httpx.Client) -> None:
    repository = unique_repository()
    child = image_manifest(client, repository)
    index = encode(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, child)]}
    )

    refused = push_manifest(client, repository, "index", index, OCI_INDEX)

    assert_error(refused, 400, "MANIFEST_BLOB_UNKNOWN")
    assert refused.json()["errors"][0]["detail"] == {"digest": sha256(child)}
    assert_error(client.get(f"/v2/{repository}/manifests/index"), 404, "MANIFEST_UNKNOWN")


def test_manifest_with_a_missing_blob_is_refused(client: httpx.Client) -> None:
    repository = unique_repository()
    layer = os.urandom(100)
    manifest = json.loads(image_manifest(client, repository))
    manifest["layers"].append(descriptor(OCI_LAYER, layer))
    content = encode(manifest)

    refused = push_manifest(client, repository, "broken", content)

    assert_error(refused, 400, "MANIFEST_BLOB_UNKNOWN")
    assert refused.json()["errors"][0]["detail"] == {"digest": sha256(layer)}
    assert_error(client.head(f"/v2/{repository}/manifests/broken"), 404, "MANIFEST_UNKNOWN")


def test_blob_of_another_repository_does_not_count(client: httpx.Client) -> None:
    elsewhere, repository = unique_repository(), unique_repository()
    manifest = image_manifest(client, elsewhere)

    refused = push_manifest(client, repository, "borrowed", manifest)

    assert_error(refused, 400, "MANIFEST_BLOB_UNKNOWN")


def test_artifact_with_artifact_type_and_the_empty_config(client: httpx.Client) -> None:
    repository = unique_repository()
    payload = b"signature bytes"
    push_blob(client, repository, payload)
    artifact = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": empty_config(client, repository),
            "layers": [descriptor("application/vnd.example.signature.v1", payload)],
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        }
    )

    pushed = push_manifest(client, repository, sha256(artifact), artifact)

    assert_created(pushed, repository, sha256(artifact))
    assert_served(client, repository, sha256(artifact), artifact, OCI_MANIFEST)


def test_artifact_whose_only_layer_is_the_empty_blob(client: httpx.Client) -> None:
    repository = unique_repository()
    empty = empty_config(client, repository)
    artifact = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.thing",
            "config": empty,
            "layers": [empty],
        }
    )

    assert_created(
        push_manifest(client, repository, "thing", artifact), repository, sha256(artifact)
    )


def test_sha512_blobs_manifest_and_index_by_digest(client: httpx.Client) -> None:
    repository = unique_repository()
    config, layer = b'{"os":"linux"}', os.urandom(700)
    push_blob(client, repository, config, sha512(config))
    push_blob(client, repository, layer, sha512(layer))
    manifest = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha512(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha512(layer), "size": len(layer)}],
        }
    )
    index = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": sha512(manifest), "size": len(manifest)}
            ],
        }
    )

    image = push_manifest(client, repository, sha512(manifest), manifest)
    listed = push_manifest(client, repository, sha512(index), index, OCI_INDEX)

    assert_created(image, repository, sha512(manifest))
    assert_created(listed, repository, sha512(index))
    assert_served(client, repository, sha512(manifest), manifest, OCI_MANIFEST)
    assert_served(client, repository, sha512(index), index, OCI_INDEX)


def test_nondistributable_layers_need_no_upload(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = json.loads(image_manifest(client, repository, layers=1))
    for media_type in (
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ):
        foreign = descriptor(media_type, os.urandom(64))
        manifest["layers"].append({**foreign, "urls": ["https://example.com/layer"]})
    content = encode(manifest)

    pushed = push_manifest(client, repository, "windows", content)

    assert_created(pushed, repository, sha256(content))


def test_a_manifest_just_under_four_mebibytes_is_accepted(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = json.loads(image_manifest(client, repository, layers=1))
    manifest["annotations"] = {f"org.example.{n}": "x" * 10_000 for n in range(390)}
    content = encode(manifest)
    assert 3_900_000 < len(content) < 4 * 1024 * 1024

    pushed = push_manifest(client, repository, "big", content)

    assert_created(pushed, repository, sha256(content))
    assert_served(client, repository, "big", content, OCI_MANIFEST)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_manifest_over_four_mebibytes_is_refused(client: httpx.Client, chunked: bool) -> None:
    repository = unique_repository()
    manifest = json.loads(image_manifest(client, repository, layers=1))
    manifest["annotations"] = {f"org.example.{n}": "x" * 10_000 for n in range(420)}
    content = encode(manifest)
    assert len(content) > 4 * 1024 * 1024

    refused = client.put(
        f"/v2/{repository}/manifests/huge",
        content=iter([content]) if chunked else content,
        headers={"Content-Type": OCI_MANIFEST},
    )

    assert_error(refused, 413, "MANIFEST_INVALID")
    assert_error(client.get(f"/v2/{repository}/manifests/huge"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"",
        b"[]",
        b"\xff\xfe",
        b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'"}',
        b'{"schemaVersion": 3, "config": {}}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x/y", "digest": "sha256:1", "size": 1}}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x/y", "digest": "sha256:'
        + b"0" * 64
        + b'", "size": -1}}',
        b'{"schemaVersion": 2, "mediaType": "' + OCI_INDEX.encode() + b'", "manifests": {}}',
    ],
    ids=[
        "truncated",
        "empty",
        "array",
        "not-utf8",
        "no-config",
        "schema-3",
        "bad-digest",
        "negative-size",
        "manifests-not-list",
    ],
)
def test_malformed_manifest_is_manifest_invalid(client: httpx.Client, content: bytes) -> None:
    repository = unique_repository()

    refused = push_manifest(client, repository, "bad", content)

    assert_error(refused, 400, "MANIFEST_INVALID")


def test_media_type_that_contradicts_the_content_type_is_refused(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)

    refused = push_manifest(client, repository, "mixed", manifest, DOCKER_MANIFEST)

    assert_error(refused, 400, "MANIFEST_INVALID")


def test_docker_schema_1_is_unsupported(client: httpx.Client) -> None:
    content = encode({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []})

    refused = push_manifest(
        client,
        unique_repository(),
        "old",
        content,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    )

    assert_error(refused, 415, "UNSUPPORTED")


def test_digest_mismatch_on_put_by_digest(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)

    refused = push_manifest(client, repository, sha256(manifest), manifest + b"  ")
    malformed = push_manifest(client, repository, "sha256:baddigeststring", manifest)

    assert_error(refused, 400, "DIGEST_INVALID")
    assert_error(malformed, 400, "DIGEST_INVALID")
    assert client.get(f"/v2/{repository}/manifests/{sha256(manifest)}").status_code == 404


def test_descriptor_data_unknown_fields_and_no_media_type_are_kept_verbatim(
    client: httpx.Client,
) -> None:
    repository = unique_repository()
    config = b'{"os":"linux"}'
    push_blob(client, repository, config)
    content = (
        b'{"schemaVersion":2,"newUnspecifiedField":null,'
        b'"config":{"mediaType":"'
        + OCI_CONFIG.encode()
        + b'","digest":"'
        + sha256(config).encode()
        + b'","size":14,"data":"eyJvcyI6ImxpbnV4In0=","newUnspecifiedField":null},'
        b'"layers":[]}'
    )

    pushed = push_manifest(client, repository, "verbatim", content)

    assert_created(pushed, repository, sha256(content))
    assert_served(client, repository, "verbatim", content, OCI_MANIFEST)


def test_subject_is_answered_with_oci_subject_even_when_absent(client: httpx.Client) -> None:
    repository = unique_repository()
    subject = image_manifest(client, repository)
    artifact = encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": empty_config(client, repository),
            "layers": [],
            "subject": descriptor(OCI_MANIFEST, subject),
        }
    )

    pushed = push_manifest(client, repository, sha256(artifact), artifact)

    assert_created(pushed, repository, sha256(artifact))
    assert pushed.headers["oci-subject"] == sha256(subject)


def test_retagging_moves_the_tag(client: httpx.Client) -> None:
    repository = unique_repository()
    first, second = image_manifest(client, repository), image_manifest(client, repository)
    push_manifest(client, repository, "latest", first)

    push_manifest(client, repository, "latest", second)

    assert_served(client, repository, "latest", second, OCI_MANIFEST)
    assert_served(client, repository, sha256(first), first, OCI_MANIFEST)


def test_pushing_the_same_manifest_twice_is_fine(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    push_manifest(client, repository, "a", manifest)

    again = push_manifest(client, repository, "b", manifest)
    by_digest = push_manifest(client, repository, sha256(manifest), manifest)

    assert_created(again, repository, sha256(manifest))
    assert_created(by_digest, repository, sha256(manifest))
    assert client.get(f"/v2/{repository}/tags/list").json()["tags"] == ["a", "b"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    "reference", [".INVALID_MANIFEST_NAME", "-dash", "a" * 129, "sha256:totallywrong"]
)
def test_invalid_reference_on_get_is_404(client: httpx.Client, method: str, reference: str) -> None:
    repository = unique_repository()
    push_image(client, repository, "real")

    response = client.request(method, f"/v2/{repository}/manifests/{reference}")

    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_unknown_tag_and_digest_are_404(client: httpx.Client, method: str) -> None:
    repository = unique_repository()
    push_image(client, repository, "real")

    for reference in ("missing", sha256(b"never pushed")):
        response = client.request(method, f"/v2/{repository}/manifests/{reference}")
        assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_invalid_tag_on_put_is_refused(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)

    refused = push_manifest(client, repository, ".bad-tag", manifest)

    assert refused.status_code == 400
    assert_error(refused, 400, "MANIFEST_INVALID")


def test_tag_delete_leaves_the_twin_tag_and_the_manifest(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    push_manifest(client, repository, "one", manifest)
    push_manifest(client, repository, "two", manifest)

    deleted = client.delete(f"/v2/{repository}/manifests/one")

    assert deleted.status_code == 202
    assert_error(client.head(f"/v2/{repository}/manifests/one"), 404, "MANIFEST_UNKNOWN")
    assert_served(client, repository, "two", manifest, OCI_MANIFEST)
    assert_served(client, repository, sha256(manifest), manifest, OCI_MANIFEST)
    assert client.get(f"/v2/{repository}/tags/list").json()["tags"] == ["two"]


def test_delete_by_digest_removes_its_tags(client: httpx.Client) -> None:
    repository = unique_repository()
    kept = push_image(client, repository, "kept")
    manifest = image_manifest(client, repository)
    push_manifest(client, repository, "one", manifest)
    push_manifest(client, repository, "two", manifest)

    deleted = client.delete(f"/v2/{repository}/manifests/{sha256(manifest)}")

    assert deleted.status_code == 202
    for reference in ("one", "two", sha256(manifest)):
        gone = client.get(f"/v2/{repository}/manifests/{reference}")
        assert_error(gone, 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{repository}/tags/list").json()["tags"] == ["kept"]
    assert client.head(f"/v2/{repository}/manifests/{kept}").status_code == 200
    assert_error(
        client.delete(f"/v2/{repository}/manifests/{sha256(manifest)}"), 404, "MANIFEST_UNKNOWN"
    )


def test_manifest_can_be_pushed_again_after_delete(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    push_manifest(client, repository, "again", manifest)
    client.delete(f"/v2/{repository}/manifests/{sha256(manifest)}")

    pushed = push_manifest(client, repository, "again", manifest)

    assert_created(pushed, repository, sha256(manifest))
    assert_served(client, repository, "again", manifest, OCI_MANIFEST)


@pytest.mark.parametrize("reference", ["nothing", sha256(b"nothing")])
def test_delete_of_unknown_manifest_is_404(client: httpx.Client, reference: str) -> None:
    repository = unique_repository()
    push_image(client, repository, "real")

    for where in (repository, unique_repository()):
        response = client.delete(f"/v2/{where}/manifests/{reference}")
        assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_manifest_is_also_served_as_a_blob(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    push_manifest(client, repository, "tag", manifest)

    as_blob = client.get(f"/v2/{repository}/blobs/{sha256(manifest)}")

    assert as_blob.status_code == 200
    assert as_blob.content == manifest


@pytest.mark.parametrize("size", [2**63, 10**30])
def test_a_size_beyond_64_bits_is_refused(client: httpx.Client, size: int) -> None:
    repository = unique_repository()
    manifest = json.loads(image_manifest(client, repository, layers=1))
    manifest["layers"][0]["size"] = size

    response = push_manifest(client, repository, "huge", json.dumps(manifest).encode())

    assert_error(response, 400, "MANIFEST_INVALID")
    assert client.get(f"/v2/{repository}/manifests/huge").status_code == 404


def test_a_size_that_is_not_the_blobs_size_is_refused(client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = json.loads(image_manifest(client, repository, layers=1))
    manifest["config"]["size"] += 1

    response = push_manifest(client, repository, "lying", json.dumps(manifest).encode())

    assert_error(response, 400, "MANIFEST_INVALID")
    assert "bytes" in response.json()["errors"][0]["message"]


def test_an_index_platform_must_name_its_os_as_text(client: httpx.Client) -> None:
    repository = unique_repository()
    child = image_manifest(client, repository, layers=1)
    child_digest = push_manifest(client, repository, "child", child).headers[
        "docker-content-digest"
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": child_digest,
                "size": len(child),
                "platform": {"os": 1, "architecture": []},
            }
        ],
    }

    response = push_manifest(client, repository, "index", json.dumps(index).encode(), OCI_INDEX)

    assert_error(response, 400, "MANIFEST_INVALID")


def test_one_manifest_pushed_under_many_tags_at_once_lands_once(
    client: httpx.Client, server: RunningServer
) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    tags = [f"parallel-{number}" for number in range(8)]

    def push(tag: str) -> int:
        with httpx.Client(base_url=server.url, auth=server.http_auth, timeout=60) as own:
            return push_manifest(own, repository, tag, manifest).status_code

    with ThreadPoolExecutor(len(tags)) as pool:
        statuses = list(pool.map(push, tags))

    assert statuses == [201] * len(tags)
    listed = client.get(f"/v2/{repository}/tags/list").json()["tags"]
    assert sorted(listed) == sorted(tags)
    for tag in tags:
        assert_served(client, repository, tag, manifest, OCI_MANIFEST)
