"""Blob uploads over a real server: sessions, chunks, streams, mounts, digests, restarts."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import RunningServer
from tests.support import (
    assert_error,
    push_blob,
    sha256,
    sha512,
    start_upload,
    unique_repository,
)

OCTET_STREAM = {"Content-Type": "application/octet-stream"}


def patch_chunk(client: httpx.Client, location: str, content: bytes, start: int) -> httpx.Response:
    """PATCH one chunk with its Content-Range, as the conformance suites send it."""
    return client.patch(
        location,
        content=content,
        headers={**OCTET_STREAM, "Content-Range": f"{start}-{start + len(content) - 1}"},
    )


def streamed(content: bytes, piece: int = 7) -> Iterator[bytes]:
    """A body httpx sends with chunked transfer encoding, without a Content-Length."""
    for offset in range(0, len(content), piece):
        yield content[offset : offset + piece]


def assert_stored(client: httpx.Client, repository: str, content: bytes, digest: str) -> None:
    pulled = client.get(f"/v2/{repository}/blobs/{digest}")
    assert pulled.status_code == 200
    assert pulled.content == content
    assert pulled.headers["docker-content-digest"] == digest


def assert_session(response: httpx.Response, repository: str, last_byte: int) -> None:
    """An answer about a session: Location in this repository, the bytes held, the id."""
    assert response.headers["location"].startswith(f"/v2/{repository}/blobs/uploads/")
    assert response.headers["range"] == f"0-{last_byte}"
    assert response.headers["docker-upload-uuid"]
    # RFC 9110: a 204 carries no Content-Length at all.
    assert response.headers.get("content-length") == (None if response.status_code == 204 else "0")


def test_post_opens_an_empty_session(client: httpx.Client) -> None:
    repository = unique_repository()

    started = client.post(f"/v2/{repository}/blobs/uploads/", headers={"Content-Length": "0"})

    assert started.status_code == 202
    assert_session(started, repository, 0)
    assert started.headers["location"].endswith(started.headers["docker-upload-uuid"])


def test_monolithic_post_with_digest_stores_the_blob(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(1000)
    digest = sha256(content)

    created = client.post(
        f"/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        content=content,
        headers=OCTET_STREAM,
    )

    assert created.status_code == 201
    assert created.headers["location"] == f"/v2/{repository}/blobs/{digest}"
    assert created.headers["docker-content-digest"] == digest
    assert_stored(client, repository, content, digest)


def test_monolithic_post_whose_bytes_do_not_match_stores_nothing(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(500)
    digest = sha256(content)

    refused = client.post(
        f"/v2/{repository}/blobs/uploads/",
        params={"digest": digest},
        content=content + b"oh no",
        headers=OCTET_STREAM,
    )

    assert_error(refused, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repository}/blobs/{digest}").status_code == 404
    assert client.head(f"/v2/{repository}/blobs/{sha256(content + b'oh no')}").status_code == 404


def test_put_with_the_whole_body_completes(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(2048)
    digest = sha256(content)

    done = client.put(start_upload(client, repository), params={"digest": digest}, content=content)

    assert done.status_code == 201
    assert done.headers["location"] == f"/v2/{repository}/blobs/{digest}"
    assert done.headers["docker-content-digest"] == digest
    assert_stored(client, repository, content, digest)


def test_streamed_patch_without_content_range_then_empty_put(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(42)
    location = start_upload(client, repository)

    appended = client.patch(location, content=streamed(content), headers=OCTET_STREAM)

    assert "content-length" not in appended.request.headers
    assert appended.request.headers["transfer-encoding"] == "chunked"
    assert appended.status_code == 202
    assert_session(appended, repository, 41)
    done = client.put(
        appended.headers["location"],
        params={"digest": sha256(content)},
        headers={"Content-Length": "0"},
    )
    assert done.status_code == 201
    assert done.headers["location"] == f"/v2/{repository}/blobs/{sha256(content)}"
    assert_stored(client, repository, content, sha256(content))


def test_chunks_in_order_report_their_range(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(42)
    location = start_upload(client, repository)

    first = patch_chunk(client, location, content[:22], 0)
    second = patch_chunk(client, first.headers["location"], content[22:], 22)

    assert first.status_code == 202
    assert_session(first, repository, 21)
    assert second.status_code == 202
    assert_session(second, repository, 41)
    done = client.put(second.headers["location"], params={"digest": sha256(content)})
    assert done.status_code == 201
    assert_stored(client, repository, content, sha256(content))


def test_out_of_order_chunk_is_refused_and_the_session_survives(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(42)
    location = start_upload(client, repository)

    skipped_ahead = patch_chunk(client, location, content[22:], 22)
    first = patch_chunk(client, location, content[:22], 0)
    repeated = patch_chunk(client, location, content[:22], 0)
    status = client.get(location)
    second = patch_chunk(client, status.headers["location"], content[22:], 22)

    assert_error(skipped_ahead, 416, "BLOB_UPLOAD_INVALID")
    assert first.status_code == 202
    assert first.headers["range"] == "0-21"
    assert_error(repeated, 416, "BLOB_UPLOAD_INVALID")
    assert status.status_code == 204
    assert_session(status, repository, 21)
    assert second.status_code == 202
    assert second.headers["range"] == "0-41"
    done = client.put(location, params={"digest": sha256(content)})
    assert done.status_code == 201
    assert_stored(client, repository, content, sha256(content))


@pytest.mark.parametrize("header", ["garbage", "5-2", "-1-3", "0-", "bytes=0-9"])
def test_malformed_content_range_is_416(client: httpx.Client, header: str) -> None:
    repository = unique_repository()
    location = start_upload(client, repository)

    refused = client.patch(location, content=b"0123456789", headers={"Content-Range": header})

    assert_error(refused, 416, "BLOB_UPLOAD_INVALID")
    assert client.get(location).headers["range"] == "0-0"


def test_content_length_that_contradicts_the_range_is_refused(client: httpx.Client) -> None:
    repository = unique_repository()
    location = start_upload(client, repository)

    refused = client.patch(location, content=b"0123456789", headers={"Content-Range": "0-19"})

    assert_error(refused, 400, "SIZE_INVALID")
    assert client.get(location).headers["range"] == "0-0"


def test_final_put_may_carry_the_last_chunk(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(3067)
    location = start_upload(client, repository)

    first = patch_chunk(client, location, content[:1024], 0)
    done = client.put(
        first.headers["location"],
        params={"digest": sha256(content)},
        content=content[1024:],
        headers={**OCTET_STREAM, "Content-Range": f"1024-{len(content) - 1}"},
    )

    assert done.status_code == 201
    assert_stored(client, repository, content, sha256(content))


def test_final_put_with_a_bad_content_range_is_416(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(3000)
    location = start_upload(client, repository)
    patch_chunk(client, location, content[:1000], 0)

    skipped = client.put(
        location,
        params={"digest": sha256(content)},
        content=content[2000:],
        headers={"Content-Range": "2000-2999"},
    )
    malformed = client.put(
        location,
        params={"digest": sha256(content)},
        content=content[1000:],
        headers={"Content-Range": "nonsense"},
    )

    assert_error(skipped, 416, "BLOB_UPLOAD_INVALID")
    assert_error(malformed, 416, "BLOB_UPLOAD_INVALID")
    assert client.get(location).headers["range"] == "0-999"
    patch_chunk(client, location, content[1000:2000], 1000)
    done = client.put(
        location,
        params={"digest": sha256(content)},
        content=content[2000:],
        headers={"Content-Range": "2000-2999"},
    )
    assert done.status_code == 201
    assert_stored(client, repository, content, sha256(content))


def test_put_whose_bytes_do_not_match_the_digest_stores_nothing(client: httpx.Client) -> None:
    repository, content = unique_repository(), os.urandom(100)
    location = start_upload(client, repository)

    refused = client.put(location, params={"digest": sha256(content)}, content=content + b"!")

    assert_error(refused, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repository}/blobs/{sha256(content)}").status_code == 404
    assert client.head(f"/v2/{repository}/blobs/{sha256(content + b'!')}").status_code == 404


@pytest.mark.parametrize(
    "params", [{}, {"digest": "sha256:abc"}, {"digest": "md5:" + "0" * 32}, {"digest": "nocolon"}]
)
def test_put_without_a_valid_digest_is_digest_invalid(
    client: httpx.Client, params: dict[str, str]
) -> None:
    location = start_upload(client, unique_repository())

    refused = client.put(location, params=params, content=b"content")

    assert_error(refused, 400, "DIGEST_INVALID")


def test_upload_status_of_a_session_with_data(client: httpx.Client) -> None:
    repository = unique_repository()
    location = start_upload(client, repository)
    patch_chunk(client, location, b"x" * 10, 0)

    status = client.get(location)

    assert status.status_code == 204
    assert status.content == b""
    assert_session(status, repository, 9)


def test_cancel_drops_the_session(client: httpx.Client) -> None:
    repository = unique_repository()
    location = start_upload(client, repository)
    patch_chunk(client, location, b"x" * 10, 0)

    cancelled = client.delete(location)

    assert cancelled.status_code == 204
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_unknown_upload_is_blob_upload_unknown(client: httpx.Client, method: str) -> None:
    repository = unique_repository()
    params = {"digest": sha256(b"")} if method == "PUT" else {}

    response = client.request(
        method, f"/v2/{repository}/blobs/uploads/no-such-upload", params=params, content=b""
    )

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_a_session_belongs_to_its_repository(client: httpx.Client) -> None:
    location = start_upload(client, unique_repository())
    upload_id = location.rsplit("/", 1)[1]

    elsewhere = client.get(f"/v2/{unique_repository()}/blobs/uploads/{upload_id}")

    assert_error(elsewhere, 404, "BLOB_UPLOAD_UNKNOWN")


def test_cross_mount_from_a_repository_holding_the_blob(client: httpx.Client) -> None:
    source, target, content = unique_repository(), unique_repository(), os.urandom(300)
    digest = push_blob(client, source, content)

    mounted = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})

    assert mounted.status_code == 201
    assert mounted.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert mounted.headers["docker-content-digest"] == digest
    assert_stored(client, target, content, digest)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"from": "{source}"}, id="blob-absent-in-source"),
        pytest.param({}, id="without-from"),
        pytest.param({"from": "Not_A/Valid//Name"}, id="invalid-from"),
        pytest.param({"from": "{source}", "mount": "sha256:nonsense"}, id="invalid-digest"),
    ],
)
def test_mount_that_cannot_happen_falls_back_to_an_upload(
    client: httpx.Client, params: dict[str, str]
) -> None:
    source, target, content = unique_repository(), unique_repository(), os.urandom(64)
    push_blob(client, source, os.urandom(8))
    query = {"mount": sha256(content), **params}
    query = {key: value.format(source=source) for key, value in query.items()}

    fallback = client.post(f"/v2/{target}/blobs/uploads/", params=query)

    assert fallback.status_code == 202
    assert_session(fallback, target, 0)
    done = client.put(
        fallback.headers["location"], params={"digest": sha256(content)}, content=content
    )
    assert done.status_code == 201
    assert_stored(client, target, content, sha256(content))


def test_sha512_blob_by_chunks_and_by_mount(client: httpx.Client) -> None:
    source, target, content = unique_repository(), unique_repository(), os.urandom(5000)
    digest = sha512(content)
    location = start_upload(client, source)
    patch_chunk(client, location, content[:2000], 0)

    done = client.put(location, params={"digest": digest}, content=content[2000:])
    mounted = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})

    assert done.status_code == 201
    assert done.headers["docker-content-digest"] == digest
    assert_stored(client, source, content, digest)
    assert mounted.status_code == 201
    assert_stored(client, target, content, digest)


def test_empty_blob(client: httpx.Client) -> None:
    repository = unique_repository()

    digest = push_blob(client, repository, b"")

    assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert_stored(client, repository, b"", digest)


def test_eight_clients_pushing_the_same_blob_store_it_once(server: RunningServer) -> None:
    repository, content = unique_repository(), os.urandom(3 * 1024 * 1024 + 17)
    digest = sha256(content)
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    upload_ids: list[str] = []

    def push() -> None:
        with httpx.Client(base_url=server.url, timeout=60, auth=server.http_auth) as own:
            location = start_upload(own, repository)
            upload_ids.append(location.rsplit("/", 1)[1])
            patch_chunk(own, location, content[:1_000_000], 0)
            barrier.wait(timeout=30)
            done = own.put(location, params={"digest": digest}, content=content[1_000_000:])
            statuses.append(done.status_code)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [201] * 8
    with httpx.Client(base_url=server.url, timeout=60, auth=server.http_auth) as check:
        assert_stored(check, repository, content, digest)
    stored = list(server.data_dir.rglob(digest.split(":")[1]))
    assert len(stored) == 1
    assert stored[0].read_bytes() == content
    assert not [name for name in upload_ids if list(server.data_dir.rglob(name))]


def test_upload_survives_a_restart_and_a_kill(own_server: RunningServer) -> None:
    repository, content = unique_repository(), os.urandom(300_000)
    digest, location = sha256(content), ""

    def session() -> httpx.Client:
        return httpx.Client(base_url=own_server.url, timeout=60, auth=own_server.http_auth)

    with session() as before:
        location = start_upload(before, repository)
        assert patch_chunk(before, location, content[:100_000], 0).status_code == 202
    own_server.restart()
    with session() as after_restart:
        assert after_restart.get(location).headers["range"] == "0-99999"
        chunk = patch_chunk(after_restart, location, content[100_000:200_000], 100_000)
        assert chunk.status_code == 202
    own_server.stop(kill=True)
    own_server.start()
    with session() as after_kill:
        status = after_kill.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == "0-199999"
        done = after_kill.put(location, params={"digest": digest}, content=content[200_000:])
        assert done.status_code == 201
        assert_stored(after_kill, repository, content, digest)
    assert "Traceback" not in own_server.log_text()


def test_64_mib_blob_in_chunks_pulls_back_identical(client: httpx.Client) -> None:
    repository, chunk_size = unique_repository(), 8 * 1024 * 1024
    content = os.urandom(64 * 1024 * 1024)
    location = start_upload(client, repository)

    for start in range(0, len(content), chunk_size):
        appended = patch_chunk(client, location, content[start : start + chunk_size], start)
        assert appended.status_code == 202
        location = appended.headers["location"]
    done = client.put(location, params={"digest": sha256(content)})

    assert done.status_code == 201
    pulled = hashlib.sha256()
    size = 0
    with client.stream("GET", f"/v2/{repository}/blobs/{sha256(content)}") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(content))
        for piece in response.iter_bytes():
            pulled.update(piece)
            size += len(piece)
    assert size == len(content)
    assert "sha256:" + pulled.hexdigest() == sha256(content)
