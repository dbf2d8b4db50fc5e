"""oras-py pushes an artifact and a referrer to it; moorage lists the referrer and serves both back.

oras-py can attach a referrer (`push(subject=...)`) but has no call that lists referrers, so the
listing is read with plain HTTP from the referrers API.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from oras.client import OrasClient
from oras.defaults import default_chunksize
from oras.oci import Subject
from tests.e2e.clients import oras_client, registry_manifest
from tests.e2e.layout import OCI_INDEX, OCI_MANIFEST, sha256
from tests.support import unique_repository

if TYPE_CHECKING:
    from tests.conftest import RunningServer

BUNDLE_TYPE = "application/vnd.moorage.e2e.bundle.v1+json"
SIGNATURE_TYPE = "application/vnd.moorage.e2e.signature.v1+json"


@dataclass
class Pushed:
    """An artifact as pushed: its files by path, and its manifest as moorage serves it."""

    files: dict[str, bytes]
    digest: str
    manifest: bytes


def write_files(directory: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)


def read_files(directory: Path) -> dict[str, bytes]:
    """Every regular file under `directory`, by path relative to it."""
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


def push_bundle(
    oras: OrasClient,
    client: httpx.Client,
    target: str,
    work: Path,
    chunk_size: int | None = None,
) -> Pushed:
    """Push a file with its own media type, one with the default type, and a directory.

    With `chunk_size`, each blob goes up in PATCH requests of that many bytes.
    """
    files = {
        "readme.txt": b"an artifact pushed by oras-py\n",
        "model.bin": os.urandom(2 * 1024 * 1024),
        "assets/one.json": b'{"one": 1}',
        "assets/sub/two.bin": os.urandom(4096),
    }
    write_files(work / "bundle", files)
    (work / "config.json").write_bytes(b'{"kind": "bundle"}')

    response = oras.push(
        target=target,
        # oras-py sends a directory as one tar.gz layer and unpacks it on pull.
        files=[
            f"{work / 'bundle/readme.txt'}:text/plain",
            *map(str, (work / "bundle").glob("[ma]*")),
        ],
        manifest_config=f"{work / 'config.json'}:{BUNDLE_TYPE}",
        manifest_annotations={"org.opencontainers.image.description": "e2e bundle"},
        disable_path_validation=True,
        do_chunked=chunk_size is not None,
        chunk_size=chunk_size or default_chunksize,
        quiet=True,
    )

    repository, _, tag = target.partition("/")[2].rpartition(":")
    return Pushed(
        files,
        response.headers["Docker-Content-Digest"],
        registry_manifest(client, repository, tag),
    )


def attach_signature(
    oras: OrasClient, client: httpx.Client, target: str, subject: Pushed, work: Path
) -> Pushed:
    """Push a signature artifact whose subject is `subject`, tagged `target`."""
    files = {"signature.json": b'{"signed": "' + subject.digest.encode() + b'"}'}
    write_files(work / "signature", files)
    (work / "empty.json").write_bytes(b"{}")

    response = oras.push(
        target=target,
        files=[f"{work / 'signature/signature.json'}:application/json"],
        manifest_config=f"{work / 'empty.json'}:{SIGNATURE_TYPE}",
        subject=Subject(OCI_MANIFEST, subject.digest, len(subject.manifest)),
        disable_path_validation=True,
        quiet=True,
    )

    assert response.headers["OCI-Subject"] == subject.digest
    repository = target.partition("/")[2].rpartition(":")[0]
    digest = response.headers["Docker-Content-Digest"]
    return Pushed(files, digest, registry_manifest(client, repository, digest))


@pytest.mark.parametrize("chunk_size", [None, 300 * 1024], ids=["monolithic", "chunked"])
def test_artifact_goes_in_and_out_bit_identical(
    server: RunningServer, client: httpx.Client, tmp_path: Path, chunk_size: int | None
) -> None:
    oras = oras_client(server)
    target = f"{server.host}/{unique_repository()}:v1"

    bundle = push_bundle(oras, client, target, tmp_path, chunk_size)

    assert sha256(bundle.manifest) == bundle.digest
    assert oras.get_manifest(target) == json.loads(bundle.manifest)
    oras.pull(target=target, outdir=str(tmp_path / "pulled"))
    assert read_files(tmp_path / "pulled") == bundle.files


def test_referrer_is_listed_under_its_subject_and_pulled_back(
    server: RunningServer, client: httpx.Client, tmp_path: Path
) -> None:
    oras = oras_client(server)
    repository = unique_repository()
    bundle = push_bundle(oras, client, f"{server.host}/{repository}:v1", tmp_path)

    signature = attach_signature(oras, client, f"{server.host}/{repository}:sig", bundle, tmp_path)

    assert json.loads(signature.manifest)["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": bundle.digest,
        "size": len(bundle.manifest),
    }
    listed = client.get(f"/v2/{repository}/referrers/{bundle.digest}")
    assert listed.status_code == 200, listed.text
    assert listed.headers["content-type"] == OCI_INDEX
    (entry,) = listed.json()["manifests"]
    assert (entry["mediaType"], entry["digest"], entry["size"], entry["artifactType"]) == (
        OCI_MANIFEST,
        signature.digest,
        len(signature.manifest),
        SIGNATURE_TYPE,
    )

    referrers = f"/v2/{repository}/referrers/{bundle.digest}"
    filtered = client.get(referrers, params={"artifactType": SIGNATURE_TYPE})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [signature.digest]
    assert client.get(referrers, params={"artifactType": BUNDLE_TYPE}).json()["manifests"] == []

    oras.pull(target=f"{server.host}/{repository}@{signature.digest}", outdir=str(tmp_path / "out"))
    assert read_files(tmp_path / "out") == signature.files
