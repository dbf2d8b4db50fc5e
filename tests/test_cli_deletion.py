"""`moorage tag delete`, `repository delete`, `deleted list`, `restore`, `export` and `import`.

The commands run in this process through typer's runner against a server's data dir, which is
quick; the pipe from `export -o -` into `import -` runs the real `python -m moorage` twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from tests.conftest import RunningServer
from tests.support import (
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    image_manifest,
    push_image,
    push_manifest,
    sha256,
    unique_repository,
)
from typer.testing import CliRunner, Result

from moorage.cli import app


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """Each command points the log at the runner's stream, which then closes: put it back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def moorage(server: RunningServer, *args: str) -> Result:
    """`moorage ARGS --data-dir DIR` in this process, with the server's MOORAGE_* variables."""
    environment = {
        name: value for name, value in server.environment.items() if name.startswith("MOORAGE_")
    }
    return CliRunner().invoke(app, [*args, "--data-dir", str(server.data_dir)], env=environment)


def succeeds(server: RunningServer, *args: str) -> str:
    """Run a moorage command that must succeed; what it printed."""
    result = moorage(server, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def refused(server: RunningServer, *args: str, status: int = 1) -> str:
    """Run a moorage command that must fail with `status`; what it printed on stderr."""
    result = moorage(server, *args)
    assert result.exit_code == status, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return " ".join(result.stderr.split())


def tags_of(client: httpx.Client, repository: str) -> dict[str, str]:
    """Every tag of a repository and the digest it names, as the registry serves them."""
    listed = client.get(f"/v2/{repository}/tags/list")
    assert listed.status_code == 200, listed.text
    return {
        tag: client.head(f"/v2/{repository}/manifests/{tag}").headers["docker-content-digest"]
        for tag in listed.json()["tags"]
    }


def test_a_tag_is_deleted_listed_and_restored(server: RunningServer, client: httpx.Client) -> None:
    repository = unique_repository()
    manifest = image_manifest(client, repository)
    for tag in ("one", "two"):
        push_manifest(client, repository, tag, manifest)

    deleted = succeeds(server, "tag", "delete", f"{repository}:one")
    listed = succeeds(server, "deleted", "list", "test")
    restored = succeeds(server, "restore", f"{repository}:one")

    assert deleted.strip() == f"deleted {repository}:one"
    [line] = [line for line in listed.splitlines() if f"\t{repository}:one\t" in line]
    item_id, _name, digest, until = line.split("\t")
    assert item_id.startswith("tag-")
    assert digest == sha256(manifest)
    assert until.startswith("restorable until 20")
    assert restored.strip() == f"restored {repository}:one at {sha256(manifest)}"
    assert tags_of(client, repository) == {"one": sha256(manifest), "two": sha256(manifest)}


def test_a_repository_is_deleted_only_with_its_name_repeated(
    server: RunningServer, client: httpx.Client
) -> None:
    repository = unique_repository()
    digest = push_image(client, repository, "v1")

    unconfirmed = refused(server, "repository", "delete", repository)
    deleted = succeeds(server, "repository", "delete", repository, "--confirm", repository)
    gone = client.get(f"/v2/{repository}/tags/list")
    succeeds(server, "restore", repository)

    assert unconfirmed == (
        f"moorage: deleting {repository} removes every tag in it; to confirm, repeat its name"
        f" exactly: confirm={repository}"
    )
    assert deleted.strip() == f"deleted {repository}"
    assert gone.status_code == 404
    assert tags_of(client, repository) == {"v1": digest}


def test_what_does_not_exist_is_refused_with_a_message(server: RunningServer) -> None:
    missing = unique_repository()

    assert refused(server, "tag", "delete", f"{missing}:v1") == (
        f"moorage: tag v1 is unknown to repository {missing}"
    )
    assert refused(server, "restore", missing) == (
        f"moorage: nothing deleted is restorable as {missing}"
    )
    assert refused(server, "tag", "delete", missing, status=2) == (
        "moorage: give the tag as NAMESPACE/REPO:TAG"
    )


def push_tags(client: httpx.Client, repository: str) -> None:
    """An image under `single`, and an index of two images under `multi`."""
    push_image(client, repository, "single")
    children = [image_manifest(client, repository) for _ in range(2)]
    for child in children:
        push_manifest(client, repository, sha256(child), child)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, child) for child in children],
    }
    push_manifest(client, repository, "multi", json.dumps(index).encode(), OCI_INDEX)


def test_an_export_imports_back_bit_identical(
    server: RunningServer, client: httpx.Client, tmp_path: Path
) -> None:
    source, copy = unique_repository(), unique_repository()
    push_tags(client, source)
    archive = tmp_path / "backup.tar"

    exported = succeeds(server, "export", source, "-o", str(archive))
    imported = succeeds(server, "import", str(archive), copy)

    assert exported.strip() == f"exported {source} to {archive} ({archive.stat().st_size} bytes)"
    assert imported.startswith(f"imported multi, single into {copy}: 4 manifests, 7 blobs")
    assert tags_of(client, copy) == tags_of(client, source)
    with tarfile.open(archive) as reader:
        for member in reader:
            if member.isfile() and member.name.startswith("blobs/"):
                digest = member.name.removeprefix("blobs/").replace("/", ":")
                served = client.get(f"/v2/{copy}/blobs/{digest}")
                assert sha256(served.content) == digest


def test_an_export_pipes_into_an_import(server: RunningServer, client: httpx.Client) -> None:
    source, copy = unique_repository(), unique_repository()
    push_tags(client, source)
    moorage = [sys.executable, "-m", "moorage"]
    where = ["--data-dir", str(server.data_dir)]

    with subprocess.Popen(
        [*moorage, "export", f"{source}:multi", "-o", "-", *where],
        stdout=subprocess.PIPE,
        env=server.environment,
    ) as exporting:
        imported = subprocess.run(
            [*moorage, "import", "-", copy, *where],
            stdin=exporting.stdout,
            capture_output=True,
            text=True,
            env=server.environment,
            timeout=120,
        )

    assert (exporting.returncode, imported.returncode) == (0, 0), imported.stderr
    assert tags_of(client, copy) == {"multi": tags_of(client, source)["multi"]}


def test_a_damaged_archive_is_refused_and_nothing_is_imported(
    server: RunningServer, client: httpx.Client, tmp_path: Path
) -> None:
    source, target = unique_repository(), unique_repository()
    push_image(client, source, "v1")
    archive = tmp_path / "backup.tar"
    succeeds(server, "export", source, "-o", str(archive))
    whole = archive.read_bytes()
    with tarfile.open(archive) as reader:
        layer = max(reader.getmembers(), key=lambda member: member.size)
    flipped = bytearray(whole)
    flipped[layer.offset_data + 10] ^= 0xFF
    (tmp_path / "flipped.tar").write_bytes(bytes(flipped))
    (tmp_path / "cut.tar").write_bytes(whole[: layer.offset_data + 100])

    digest_refusal = refused(server, "import", str(tmp_path / "flipped.tar"), target)
    cut_refusal = refused(server, "import", str(tmp_path / "cut.tar"), target)

    assert digest_refusal.startswith(f"moorage: archive member {layer.name} has digest sha256:")
    assert digest_refusal.endswith(": the archive is damaged")
    assert cut_refusal.startswith("moorage: the archive is damaged or truncated")
    assert client.get(f"/v2/{target}/tags/list").status_code == 404


def test_with_no_retention_nothing_stays_restorable(tmp_path: Path) -> None:
    running = RunningServer(tmp_path / "data", env={"MOORAGE_DELETED_RETENTION": "0"})
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    api_auth = ("tester", "account-tester-secret")
    try:
        with (
            httpx.Client(base_url=running.url, auth=running.http_auth, timeout=60) as registry,
            httpx.Client(base_url=f"{running.url}/api/v1", auth=api_auth, timeout=60) as api,
        ):
            manifest = image_manifest(registry, "test/kept")
            for tag in ("one", "two", "three"):
                push_manifest(registry, "test/kept", tag, manifest)
            push_image(registry, "test/kept", "other")
            push_image(registry, "test/whole", "v1")

            succeeds(running, "tag", "delete", "test/kept:one")
            assert api.delete("/repositories/test/kept/tags/two").status_code == 204
            assert registry.delete(f"/v2/test/kept/manifests/{sha256(manifest)}").status_code == 202
            deleted = api.delete("/repositories/test/whole", params={"confirm": "test/whole"})
            assert deleted.status_code == 204

            assert api.get("/namespaces/test/deleted").json() == []
            assert succeeds(running, "deleted", "list", "test") == ""
            assert list(tags_of(registry, "test/kept")) == ["other"]
            assert registry.get("/v2/test/whole/tags/list").status_code == 404
            assert refused(running, "restore", "test/kept:one") == (
                "moorage: nothing deleted is restorable as test/kept:one"
            )
    finally:
        running.stop()
    assert "Traceback" not in running.log_text()
