"""skopeo copies images into moorage and back out, and not one byte changes on the way."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tests.e2e.clients import Skopeo, access_log, registry_blob, registry_manifest
from tests.e2e.layout import Image, OciLayout, build_image, random_files, random_image, sha256
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
