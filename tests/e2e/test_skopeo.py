"""skopeo copies images into moorage and back out, and not one byte changes on the way."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tests.e2e.clients import Skopeo, access_log, registry_blob, registry_manifest
from tests.e2e.layout import (
    DOCKER_MANIFEST,
    Image,
    OciLayout,
    build_image,
    random_files,
    random_image,
    sha256,
)
from tests.support import unique_repository

if TYPE_CHECKING:
    from tests.conftest import RunningServer


def assert_registry_holds(client: httpx.Client, repository: str, image: Image) -> None:
    """moorage serves the image's manifest by digest and every blob, byte for byte."""
    assert registry_manifest(client, repository, image.digest) == image.manifest
    for digest, content in image.blobs().items():
        assert registry_blob(client, repository, digest) == content


def assert_layout_holds(layout: OciLayout, image: Image) -> None:
    """An OCI layout holds the image's manifest and every blob, byte for byte."""
    assert layout.blob(image.digest) == image.manifest
    for digest, content in image.blobs().items():
        assert layout.blob(digest) == content


def test_multi_layer_image_goes_in_and_out_bit_identical(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    # One layer of several MiB so that uploads and downloads stream in many chunks.
    image = build_image(
        [
            random_files("etc/app", count=2, size=1024),
            random_files("usr/lib/app", count=1, size=6 * 1024 * 1024),
            random_files("srv/data", count=4),
        ]
    )
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    repository = unique_repository()
    remote = f"docker://{server.host}/{repository}:v1"

    skopeo.copy(f"oci:{source.path}:v1", remote)

    assert registry_manifest(client, repository, "v1") == image.manifest
    assert_registry_holds(client, repository, image)
    assert skopeo.inspect_raw(remote) == image.manifest

    pulled = OciLayout(tmp_path / "pulled")
    skopeo.copy(remote, f"oci:{pulled.path}:v1")

    assert pulled.tagged("v1")["digest"] == image.digest
    assert_layout_holds(pulled, image)


def test_copy_between_repositories_mounts_the_layers(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = random_image(layers=3)
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    first, second = unique_repository(), unique_repository()
    skopeo.copy(f"oci:{source.path}:v1", f"docker://{server.host}/{first}:v1")

    skopeo.copy(f"docker://{server.host}/{first}:v1", f"docker://{server.host}/{second}:v2")

    assert registry_manifest(client, second, "v2") == image.manifest
    assert_registry_holds(client, second, image)
    # skopeo knows the layers came from `first`, so it asks to mount them: POST answers 201.
    mounts = [
        line
        for line in access_log(server)
        if line.get("method") == "POST"
        and line.get("path") == f"/v2/{second}/blobs/uploads/"
        and line.get("status") == 201
    ]
    assert len(mounts) == len(image.layers)


def push_index(
    server: RunningServer, skopeo: Skopeo, tmp_path: Path, repository: str
) -> tuple[bytes, list[Image]]:
    """Copy a two-platform index into `repository` under tag `multi`; its bytes and images."""
    images = [random_image(layers=2, architecture="amd64"), random_image(2, "arm64")]
    source = OciLayout(tmp_path / "source").create()
    index = source.add_index(images, "multi")
    skopeo.copy(
        f"oci:{source.path}:multi",
        f"docker://{server.host}/{repository}:multi",
        "--all",
        "--preserve-digests",
    )
    return index, images


def test_multi_architecture_index_keeps_its_digest_in_and_out(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    repository = unique_repository()
    index, images = push_index(server, skopeo, tmp_path, repository)

    assert registry_manifest(client, repository, "multi") == index
    assert registry_manifest(client, repository, sha256(index)) == index
    for image in images:
        assert_registry_holds(client, repository, image)

    pulled = OciLayout(tmp_path / "pulled")
    skopeo.copy(
        f"docker://{server.host}/{repository}:multi",
        f"oci:{pulled.path}:multi",
        "--all",
        "--preserve-digests",
    )

    assert pulled.tagged("multi")["digest"] == sha256(index)
    assert pulled.blob(sha256(index)) == index
    for image in images:
        assert_layout_holds(pulled, image)


def test_one_platform_of_an_index_is_pulled_alone(
    server: RunningServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repository = unique_repository()
    _, (amd64, arm64) = push_index(server, skopeo, tmp_path, repository)

    pulled = OciLayout(tmp_path / "pulled")
    skopeo.copy(
        f"docker://{server.host}/{repository}:multi", f"oci:{pulled.path}:arm", architecture="arm64"
    )

    assert pulled.tagged("arm")["digest"] == arm64.digest
    assert_layout_holds(pulled, arm64)
    assert not (pulled.path / "blobs" / "sha256" / amd64.digest.removeprefix("sha256:")).exists()


def test_docker_schema2_image_goes_in_and_out_bit_identical(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = random_image(layers=2)
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    repository = unique_repository()
    remote = f"docker://{server.host}/{repository}:v1"

    # The Docker media types, as docker and `podman push --format v2s2` send them.
    skopeo.copy(f"oci:{source.path}:v1", remote, "--format", "v2s2")

    response = client.get(f"/v2/{repository}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert response.headers["content-type"] == DOCKER_MANIFEST
    manifest = response.content
    assert response.headers["docker-content-digest"] == sha256(manifest)
    named = json.loads(manifest)
    assert [named["config"]["digest"]] + [layer["digest"] for layer in named["layers"]] == list(
        image.blobs()
    )

    pulled = tmp_path / "pulled"
    skopeo.copy(remote, f"dir:{pulled}")

    assert (pulled / "manifest.json").read_bytes() == manifest
    for digest, content in image.blobs().items():
        assert (pulled / digest.removeprefix("sha256:")).read_bytes() == content


def test_tags_are_listed_and_a_deleted_manifest_is_gone(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = random_image(layers=1)
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    repository = unique_repository()
    remote = f"docker://{server.host}/{repository}"
    for tag in ("v1", "latest", "2.0"):
        skopeo.copy(f"oci:{source.path}:v1", f"{remote}:{tag}")

    listed = json.loads(skopeo.on_registry("list-tags", remote))

    assert listed["Tags"] == ["2.0", "latest", "v1"]

    skopeo.on_registry("delete", f"{remote}:v1")

    assert client.get(f"/v2/{repository}/manifests/{image.digest}").status_code == 404
    assert json.loads(skopeo.on_registry("list-tags", remote))["Tags"] == []


def test_parallel_pushes_of_one_image_to_one_repository_all_land(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    # Several pipelines pushing the same layers at once race on every blob and link.
    image = build_image([random_files(f"layer-{number}", 2, 32 * 1024) for number in range(10)])
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    repository = unique_repository()
    tags = [f"build-{number}" for number in range(4)]

    with ThreadPoolExecutor(len(tags)) as pool:
        copies = [
            pool.submit(
                skopeo.copy, f"oci:{source.path}:v1", f"docker://{server.host}/{repository}:{tag}"
            )
            for tag in tags
        ]
        for copy in copies:
            copy.result()

    for tag in tags:
        assert registry_manifest(client, repository, tag) == image.manifest
    assert_registry_holds(client, repository, image)
