"""containerd pulls a multi-platform index from moorage and pushes one to it, digests unchanged.

The daemon is the test's own (see `Containerd` in clients.py): its root, state and socket are
in the test's tmp dir, and `ctr` talks to it over that socket.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tests.e2e.clients import Containerd, Skopeo, registry_blob, registry_manifest
from tests.e2e.layout import Image, OciLayout, random_image, sha256
from tests.support import unique_repository

if TYPE_CHECKING:
    from tests.conftest import RunningServer


def two_platforms(tmp_path: Path) -> tuple[OciLayout, bytes, list[Image]]:
    """A layout holding an amd64 and arm64 index under tag `multi`; the index and images."""
    images = [random_image(layers=2, architecture="amd64"), random_image(2, "arm64")]
    layout = OciLayout(tmp_path / "source").create()
    return layout, layout.add_index(images, "multi"), images


def test_containerd_pulls_a_multi_platform_index(
    server: RunningServer, skopeo: Skopeo, containerd: Containerd, tmp_path: Path
) -> None:
    layout, index, images = two_platforms(tmp_path)
    reference = f"{server.host}/{unique_repository()}:multi"
    skopeo.copy(f"oci:{layout.path}:multi", f"docker://{reference}", "--all", "--preserve-digests")

    # The native snapshotter unpacks into plain directories: no overlay mount is needed.
    options = [*containerd.registry_options(), "--all-platforms", "--snapshotter", "native"]
    containerd.ctr("images", "pull", *options, reference)

    assert reference in containerd.ctr("images", "list", "--quiet").split()
    assert containerd.content(sha256(index)) == index
    for image in images:
        assert containerd.content(image.digest) == image.manifest
        for digest, content in image.blobs().items():
            assert containerd.content(digest) == content


def test_containerd_pushes_an_imported_multi_platform_index(
    server: RunningServer, client: httpx.Client, containerd: Containerd, tmp_path: Path
) -> None:
    layout, index, images = two_platforms(tmp_path)
    repository = unique_repository()
    reference = f"{server.host}/{repository}:multi"
    # Imported rather than pulled, so containerd uploads every blob instead of mounting it.
    archive = layout.archive(tmp_path / "source.tar")
    base_name = f"{server.host}/{repository}"
    containerd.ctr(
        "images", "import", "--all-platforms", "--no-unpack", "--base-name", base_name, str(archive)
    )

    containerd.ctr("images", "push", *containerd.registry_options(), reference)

    assert registry_manifest(client, repository, "multi") == index
    for image in images:
        assert registry_manifest(client, repository, image.digest) == image.manifest
        for digest, content in image.blobs().items():
            assert registry_blob(client, repository, digest) == content
