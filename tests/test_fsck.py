"""`moorage fsck` on a real data dir: a sound store passes, and each kind of damage is named."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
from tests.conftest import RunningServer
from tests.support import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    push_blob,
    push_manifest,
    sha256,
)


def blob_file(server: RunningServer, digest: str) -> Path:
    encoded = digest.removeprefix("sha256:")
    return server.data_dir / "blobs" / "blobs" / "sha256" / encoded[:2] / encoded


def fsck(server: RunningServer, *options: str) -> tuple[int, str]:
    result = server.cli("fsck", *options)
    assert not result.stderr, result.stderr
    return result.returncode, result.stdout


def test_fsck_names_corrupt_missing_and_orphaned_blobs(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "data", env={"MOORAGE_GC_INTERVAL": "0"})
    server.username, server.password = server.create_account("tester", ("test",))
    server.start()
    try:
        with httpx.Client(base_url=server.url, auth=server.http_auth) as client:
            config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
            first, second = os.urandom(4000), os.urandom(6000)
            for blob in (config, first, second):
                push_blob(client, "test/checked", blob)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_CONFIG, config),
                    "layers": [descriptor(OCI_LAYER, first), descriptor(OCI_LAYER, second)],
                }
            ).encode()
            assert push_manifest(client, "test/checked", "v1", manifest).status_code == 201
    finally:
        server.stop()
    status, printed = fsck(server)
    assert status == 0 and "checked 3 blobs, re-hashed 3: 0 problems" in printed

    # One byte flipped, same size: only re-hashing finds it.
    damaged = blob_file(server, sha256(first))
    content = bytearray(damaged.read_bytes())
    content[100] ^= 0xFF
    damaged.write_bytes(bytes(content))
    status, printed = fsck(server)
    assert status == 1, printed
    assert f"corrupt\t{sha256(first)}\tthe content hashes to sha256:" in printed
    assert "the store is not sound" in printed
    damaged.write_bytes(first)

    # A file gone: the blob is missing, and the manifest that names it dangles.
    blob_file(server, sha256(second)).unlink()
    status, printed = fsck(server)
    assert status == 1, printed
    assert f"missing\t{sha256(second)}\t6000 bytes" in printed
    manifest_digest = sha256(manifest)
    assert f"dangling\ttest/checked@{manifest_digest}\tnames blob {sha256(second)}" in printed
    blob_file(server, sha256(second)).write_bytes(second)

    # A file that no blob row knows, left long ago: a crash leftover.
    stray = os.urandom(700)
    orphan = blob_file(server, sha256(stray))
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(stray)
    long_ago = time.time() - 2 * 3600
    os.utime(orphan, (long_ago, long_ago))
    status, printed = fsck(server, "--sample", "1")
    assert status == 1, printed
    assert f"orphan\t{sha256(stray)}\t700 bytes" in printed
    assert "checked 3 blobs, re-hashed 1:" in printed

    collected = server.cli("gc")
    assert f"removed orphan file {sha256(stray)} (700 bytes)" in collected.stdout
    status, printed = fsck(server)
    assert status == 0, printed
    assert "0 problems, 0 garbage" in printed
