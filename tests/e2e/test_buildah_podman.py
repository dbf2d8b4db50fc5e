"""buildah and podman build, push and pull through moorage; images arrive with every file intact."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from tests.e2e.clients import ContainerTool, registry_blob, registry_manifest
from tests.e2e.layout import OciLayout, files_of_layer, sha256
from tests.support import unique_repository

if TYPE_CHECKING:
    from tests.conftest import RunningServer


def write_context(directory: Path) -> dict[str, bytes]:
    """A few files, text and random, in nested directories; what was written, by path."""
    files = {
        "hello.txt": b"hello from moorage\n",
        "bin/random.bin": os.urandom(512 * 1024),
        "deep/er/notes.txt": b"nested\n" * 100,
    }
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    return files


def registry_files(client: httpx.Client, repository: str, reference: str) -> dict[str, bytes]:
    """The files of an image as moorage serves its layers, every layer applied in order."""
    manifest = json.loads(registry_manifest(client, repository, reference))
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        files.update(files_of_layer(registry_blob(client, repository, layer["digest"])))
    return files


def test_buildah_push_then_podman_pull(
    server: RunningServer,
    client: httpx.Client,
    buildah: ContainerTool,
    podman: ContainerTool,
    tmp_path: Path,
) -> None:
    context = tmp_path / "context"
    files = write_context(context)
    container = buildah("from", "scratch").strip()
    buildah("copy", container, str(context), "/data")
    buildah("config", "--cmd", "/data/hello.txt", "--label", "built-by=e2e", container)
    buildah("commit", container, "localhost/e2e-built:v1")
    repository = unique_repository()
    reference = f"{server.host}/{repository}:v1"

    pushed = buildah.push("localhost/e2e-built:v1", reference)

    manifest = registry_manifest(client, repository, "v1")
    assert sha256(manifest) == pushed
    expected = {f"data/{name}": content for name, content in files.items()}
    assert registry_files(client, repository, "v1") == expected

    podman.pull(reference)

    (inspected,) = json.loads(podman("image", "inspect", reference))
    assert inspected["Digest"] == pushed
    assert inspected["Labels"]["built-by"] == "e2e"
    saved = OciLayout(tmp_path / "saved")
    podman("save", "--format", "oci-dir", "-o", str(saved.path), reference)
    assert saved.blob(pushed) == manifest
    assert saved.files(pushed) == expected


def test_podman_push_then_buildah_pull(
    server: RunningServer,
    client: httpx.Client,
    buildah: ContainerTool,
    podman: ContainerTool,
    tmp_path: Path,
) -> None:
    context = tmp_path / "context"
    files = write_context(context)
    # COPY only: building runs nothing inside the image, so no runtime is needed.
    (context / "Containerfile").write_text(
        "FROM scratch\nCOPY hello.txt /etc/hello.txt\nCOPY bin /opt/bin\nCOPY deep /srv/deep\n"
    )
    podman("build", "--tag", "localhost/e2e-podman:v1", str(context))
    repository = unique_repository()
    reference = f"{server.host}/{repository}:v1"

    pushed = podman.push("localhost/e2e-podman:v1", reference)

    expected = {
        "etc/hello.txt": files["hello.txt"],
        "opt/bin/random.bin": files["bin/random.bin"],
        "srv/deep/er/notes.txt": files["deep/er/notes.txt"],
    }
    assert sha256(registry_manifest(client, repository, "v1")) == pushed
    assert registry_files(client, repository, "v1") == expected

    buildah.pull(reference)

    (inspected,) = json.loads(buildah("images", "--json", "--digests", reference))
    assert inspected["digest"] == pushed
    exported = OciLayout(tmp_path / "exported")
    buildah("push", "--signature-policy", str(buildah.policy), reference, f"oci:{exported.path}:v1")
    assert exported.files(exported.tagged("v1")["digest"]) == expected
