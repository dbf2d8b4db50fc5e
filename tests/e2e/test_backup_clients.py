"""Backups meet real clients: skopeo reads moorage's export, moorage imports skopeo's archive."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tests.e2e.clients import Skopeo, registry_blob, registry_manifest
from tests.e2e.layout import Image, OciLayout, random_image, sha256
from tests.support import unique_repository

if TYPE_CHECKING:
    from tests.conftest import RunningServer


def source_layout(path: Path) -> tuple[OciLayout, Image, list[Image], bytes]:
    """A layout with one image tagged `single` and a two-platform index tagged `multi`."""
    layout = OciLayout(path).create()
    single, platforms = random_image(layers=2), [random_image(1, "amd64"), random_image(1, "arm64")]
    layout.add_image(single, "single")
    index = layout.add_index(platforms, "multi")
    return layout, single, platforms, index


def assert_registry_holds(
    client: httpx.Client, repository: str, single: Image, platforms: list[Image], index: bytes
) -> None:
    """moorage serves both tags, every manifest and every blob, byte for byte."""
    assert registry_manifest(client, repository, "single") == single.manifest
    assert registry_manifest(client, repository, "multi") == index
    for image in [single, *platforms]:
        assert registry_manifest(client, repository, image.digest) == image.manifest
        for digest, content in image.blobs().items():
            assert registry_blob(client, repository, digest) == content


def download_export(api: httpx.Client, repository: str, into: Path) -> Path:
    """The console's "download a backup": the export streamed to a file."""
    with (
        api.stream("GET", f"/repositories/{repository}/export") as response,
        into.open("wb") as out,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            out.write(chunk)
    return into


def test_skopeo_copies_an_export_into_another_repository(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout, single, platforms, index = source_layout(tmp_path / "source")
    source, copy = unique_repository(), unique_repository()
    for tag in ("single", "multi"):
        skopeo.copy(f"oci:{layout.path}:{tag}", f"docker://{server.host}/{source}:{tag}", "--all")
    auth = (server.username or "", f"account-{server.username}-secret")
    with httpx.Client(base_url=f"{server.url}/api/v1", auth=auth, timeout=120) as api:
        archive = download_export(api, source, tmp_path / "backup.tar")

    for tag in ("single", "multi"):
        skopeo.copy(
            f"oci-archive:{archive}:{tag}",
            f"docker://{server.host}/{copy}:{tag}",
            "--all",
            "--preserve-digests",
        )

    assert_registry_holds(client, copy, single, platforms, index)


def test_a_skopeo_archive_imports_and_exports_back_bit_identical(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout, _single, platforms, index = source_layout(tmp_path / "source")
    made_by_skopeo = tmp_path / "skopeo.tar"
    skopeo.copy(f"oci:{layout.path}:multi", f"oci-archive:{made_by_skopeo}:multi", "--all")
    imported, again = unique_repository(), unique_repository()
    ours = tmp_path / "moorage.tar"

    for arguments in (
        ("import", str(made_by_skopeo), imported),
        ("export", imported, "-o", str(ours)),
        ("import", str(ours), again),
    ):
        result = server.cli(*arguments)
        assert result.returncode == 0, result.stderr

    pulled = OciLayout(tmp_path / "pulled")
    skopeo.copy(
        f"docker://{server.host}/{again}:multi",
        f"oci:{pulled.path}:multi",
        "--all",
        "--preserve-digests",
    )
    assert pulled.tagged("multi")["digest"] == sha256(index)
    assert pulled.blob(sha256(index)) == index
    for image in platforms:
        assert pulled.blob(image.digest) == image.manifest
        for digest, content in image.blobs().items():
            assert pulled.blob(digest) == content
    assert registry_manifest(client, imported, "multi") == index
