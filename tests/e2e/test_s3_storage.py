"""A real `moorage serve` that keeps its blobs in S3 (moto in server mode): skopeo pushes and
pulls, chunked uploads land as multipart objects, redirects are followed, and an S3 that cannot
be reached is a JSON error."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import RunningServer
from tests.e2e.clients import Skopeo
from tests.e2e.layout import OciLayout, build_image, random_files, sha256
from tests.s3server import S3Server, free_port
from tests.support import start_upload, unique_repository

MiB = 1024 * 1024

# Starts a server on S3 with extra MOORAGE_* variables; stopped at the end of the test.
ServerOnS3 = Callable[..., RunningServer]


@pytest.fixture
def server_on_s3(tmp_path: Path, s3_server: S3Server) -> Iterator[ServerOnS3]:
    started: list[RunningServer] = []

    def start(**variables: str) -> RunningServer:
        bucket = s3_server.create_bucket()
        environment = {**s3_server.environment(bucket, prefix="registry"), **variables}
        running = RunningServer(tmp_path / f"data-{len(started)}", env=environment)
        running.username, running.password = running.create_account("tester", ("test",))
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
        assert "Traceback" not in running.log_text(), "the server logged a traceback"


def http_client(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, auth=server.http_auth)


def stored_keys(s3_server: S3Server, server: RunningServer) -> list[str]:
    bucket = server.env["MOORAGE_STORAGE__S3__BUCKET"]
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def push_and_pull(server: RunningServer, tmp_path: Path) -> None:
    """skopeo copies an image with a multi-part layer in and out, bit-identical."""
    image = build_image(
        [random_files("etc/app", count=2, size=1024), random_files("srv", count=1, size=9 * MiB)]
    )
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "v1")
    remote = f"docker://{server.host}/{unique_repository()}:v1"
    skopeo = Skopeo(server, tmp_path / "skopeo")

    skopeo.copy(f"oci:{source.path}:v1", remote)
    pulled = OciLayout(tmp_path / "pulled")
    skopeo.copy(remote, f"oci:{pulled.path}:v1")

    assert pulled.tagged("v1")["digest"] == image.digest
    for digest, content in image.blobs().items():
        assert pulled.blob(digest) == content


def test_skopeo_pushes_and_pulls_through_s3(
    server_on_s3: ServerOnS3, s3_server: S3Server, tmp_path: Path
) -> None:
    server = server_on_s3()

    push_and_pull(server, tmp_path)

    keys = stored_keys(s3_server, server)
    assert len([key for key in keys if key.startswith("registry/blobs/sha256/")]) == 3
    assert [key for key in keys if not key.startswith("registry/blobs/")] == []


def test_a_chunked_upload_becomes_one_blob_object(
    server_on_s3: ServerOnS3, s3_server: S3Server
) -> None:
    server = server_on_s3()
    chunks = [os.urandom(6 * MiB), os.urandom(5 * MiB + 3), os.urandom(1234)]
    content = b"".join(chunks)
    repository = unique_repository()

    with http_client(server) as client:
        location = start_upload(client, repository)
        offset = 0
        for chunk in chunks:
            last = offset + len(chunk) - 1
            headers = {
                "Content-Range": f"{offset}-{last}",
                "Content-Type": "application/octet-stream",
            }
            sent = client.patch(location, content=chunk, headers=headers)
            assert sent.status_code == 202, sent.text
            assert sent.headers["range"] == f"0-{last}"
            location, offset = sent.headers["location"], last + 1
        done = client.put(location, params={"digest": sha256(content)})
        assert done.status_code == 201, done.text
        fetched = client.get(f"/v2/{repository}/blobs/{sha256(content)}")

    assert fetched.content == content
    assert stored_keys(s3_server, server) == [
        f"registry/blobs/sha256/{sha256(content)[7:9]}/{sha256(content)[7:]}"
    ]


def test_with_redirects_blob_gets_go_to_s3_and_skopeo_follows(
    server_on_s3: ServerOnS3, s3_server: S3Server, tmp_path: Path
) -> None:
    server = server_on_s3(MOORAGE_STORAGE__S3__REDIRECT="true")
    content = os.urandom(3 * MiB)
    repository = unique_repository()

    push_and_pull(server, tmp_path)
    with http_client(server) as client:
        done = client.put(
            start_upload(client, repository), params={"digest": sha256(content)}, content=content
        )
        assert done.status_code == 201, done.text
        blob_url = f"/v2/{repository}/blobs/{sha256(content)}"
        head = client.head(blob_url)
        got = client.get(blob_url)
        ranged = client.get(blob_url, headers={"Range": "bytes=10-19"}, follow_redirects=True)

    assert (head.status_code, head.headers["content-length"]) == (200, str(len(content)))
    assert got.status_code == 307
    assert got.headers["location"].startswith(s3_server.endpoint_url)
    assert httpx.get(got.headers["location"]).content == content
    assert (ranged.status_code, ranged.content) == (206, content[10:20])


def test_an_unreachable_s3_is_a_json_error(server_on_s3: ServerOnS3) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    server = server_on_s3(MOORAGE_STORAGE__S3__ENDPOINT_URL=nowhere)

    with http_client(server) as client:
        started = client.post(f"/v2/{unique_repository()}/blobs/uploads/")

    assert started.status_code == 503
    assert started.headers["content-type"] == "application/json"
    assert started.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "blob storage request failed" in server.log_text() or (
        "blob storage unreachable" in server.log_text()
    )
