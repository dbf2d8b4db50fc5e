"""What only the S3 driver does: multipart parts, server-side assembly, prefixes, redirects,
and S3 failures turned into one storage error. Against moto in server mode."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.s3server import S3Server, free_port

from moorage.errors import RangeInvalidError, StorageUnavailableError
from moorage.oci.digest import digest_bytes
from moorage.storage.s3 import MIN_PART_BYTES, S3BlobStore

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket()


@pytest.fixture
def store(s3_server: S3Server, bucket: str) -> S3BlobStore:
    return S3BlobStore(s3_server.settings(bucket))


async def pieces_of(content: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for at in range(0, len(content), size):
        yield content[at : at + size]


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def keys_and_etags(s3_server: S3Server, bucket: str, prefix: str = "") -> dict[str, str]:
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item["ETag"].strip('"') for item in listed.get("Contents", [])}


def open_multipart_uploads(s3_server: S3Server, bucket: str) -> list[str]:
    listed = s3_server.client().list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in listed.get("Uploads", [])]


async def test_a_large_append_goes_up_as_one_multipart_chunk_object(
    s3_server: S3Server, bucket: str, store: S3BlobStore
) -> None:
    content = os.urandom(19 * MiB)
    seen: list[bytes] = []
    await store.create_upload("big")

    size = await store.append_upload("big", pieces_of(content), seen.append)

    assert size == len(content)
    assert b"".join(seen) == content
    stored = keys_and_etags(s3_server, bucket, "uploads/big/")
    # Parts of 8 MiB: 8 + 8 + 3.
    assert stored[f"uploads/big/{0:020d}"].endswith("-3")
    assert open_multipart_uploads(s3_server, bucket) == []
    assert await collect(store.read_upload("big")) == content


async def test_an_append_holds_about_one_part_in_memory(store: S3BlobStore) -> None:
    content = os.urandom(40 * MiB)
    await store.create_upload("bounded")

    tracemalloc.start()
    try:
        await store.append_upload("bounded", pieces_of(content))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # One 8 MiB part pending and its joined copy; nowhere near the 40 MiB streamed.
    assert peak < 24 * MiB
    assert await store.upload_size("bounded") == len(content)


async def test_a_failed_stream_aborts_its_multipart_upload(
    s3_server: S3Server, bucket: str, store: S3BlobStore
) -> None:
    class ClientGoneError(Exception):
        pass

    async def breaks_off() -> AsyncIterator[bytes]:
        async for piece in pieces_of(os.urandom(10 * MiB)):
            yield piece
        raise ClientGoneError

    await store.create_upload("broken")

    with pytest.raises(ClientGoneError):
        await store.append_upload("broken", breaks_off())

    assert open_multipart_uploads(s3_server, bucket) == []
    assert await store.upload_size("broken") == 0


async def test_many_small_chunks_are_streamed_into_the_blob(
    s3_server: S3Server, bucket: str, store: S3BlobStore
) -> None:
    chunks = [os.urandom(100_000 + index) for index in range(30)]
    content = b"".join(chunks)
    digest = digest_bytes(content)
    await store.create_upload("small")
    for chunk in chunks:
        await store.append_upload("small", pieces_of(chunk))

    await store.commit_upload("small", digest)

    assert await collect(store.read_blob(digest)) == content
    assert list(keys_and_etags(s3_server, bucket)) == [store_key(digest)]


async def test_small_chunks_past_a_part_are_streamed_in_parts(
    s3_server: S3Server, bucket: str, store: S3BlobStore
) -> None:
    chunks = [os.urandom(3 * MiB) for _ in range(4)]
    content = b"".join(chunks)
    digest = digest_bytes(content)
    await store.create_upload("streamed")
    for chunk in chunks:
        await store.append_upload("streamed", pieces_of(chunk))

    await store.commit_upload("streamed", digest)

    # 12 MiB in 3 MiB chunks cannot be copied part by part (5 MiB at least): 8 + 4 MiB.
    assert keys_and_etags(s3_server, bucket)[store_key(digest)].endswith("-2")
    assert await collect(store.read_blob(digest)) == content


async def test_chunks_of_five_mib_are_assembled_by_copying_parts(
    s3_server: S3Server, bucket: str, store: S3BlobStore
) -> None:
    chunks = [os.urandom(MIN_PART_BYTES), os.urandom(MIN_PART_BYTES + 7), os.urandom(1000)]
    content = b"".join(chunks)
    digest = digest_bytes(content)
    await store.create_upload("copied")
    for chunk in chunks:
        await store.append_upload("copied", pieces_of(chunk))

    await store.commit_upload("copied", digest)

    assert keys_and_etags(s3_server, bucket)[store_key(digest)].endswith("-3")
    assert await collect(store.read_blob(digest)) == content
    assert (
        await collect(store.read_blob(digest, MIN_PART_BYTES - 2, MIN_PART_BYTES + 2))
        == (content[MIN_PART_BYTES - 2 : MIN_PART_BYTES + 3])
    )
    assert open_multipart_uploads(s3_server, bucket) == []


async def test_one_chunk_past_the_copy_limit_is_copied_in_ranges(
    s3_server: S3Server, bucket: str
) -> None:
    # S3 copies at most 5 GiB at once; a lower limit shows the same path with 11 MiB.
    store = S3BlobStore(s3_server.settings(bucket), max_copy_bytes=6 * MiB)
    content = os.urandom(11 * MiB)
    digest = digest_bytes(content)
    await store.create_upload("huge")
    await store.append_upload("huge", pieces_of(content))

    await store.commit_upload("huge", digest)

    assert keys_and_etags(s3_server, bucket)[store_key(digest)].endswith("-2")
    assert await collect(store.read_blob(digest)) == content


@pytest.mark.parametrize("late_size", [5, 9 * MiB])
async def test_a_chunk_at_an_offset_already_taken_is_refused(
    s3_server: S3Server, bucket: str, late_size: int
) -> None:
    # Two replicas that both saw the upload end at byte 0: the later chunk must not replace
    # the bytes that the first one hashed, whether it goes up in one piece or in parts.
    first, second = (S3BlobStore(s3_server.settings(bucket)) for _ in range(2))
    await first.create_upload("u1")

    async def racing() -> AsyncIterator[bytes]:
        await first.append_upload("u1", pieces_of(b"first"))
        async for piece in pieces_of(os.urandom(late_size)):
            yield piece

    with pytest.raises(RangeInvalidError):
        await second.append_upload("u1", racing())

    assert await collect(second.read_upload("u1")) == b"first"
    assert open_multipart_uploads(s3_server, bucket) == []


async def test_prefixes_keep_two_stores_apart(s3_server: S3Server, bucket: str) -> None:
    first = S3BlobStore(s3_server.settings(bucket, prefix="first"))
    second = S3BlobStore(s3_server.settings(bucket, prefix="second/"))
    content = b"only in the first"
    digest = digest_bytes(content)
    await first.put_blob(digest, content)
    await first.create_upload("u1")

    assert await second.blob_size(digest) is None
    assert [blob async for blob in second.list_blobs()] == []
    assert [upload async for upload in second.list_uploads()] == []
    assert [blob.digest async for blob in first.list_blobs()] == [digest]
    assert all(key.startswith("first/") for key in keys_and_etags(s3_server, bucket))


async def test_a_redirect_url_serves_the_blob_and_its_ranges(
    s3_server: S3Server, bucket: str
) -> None:
    store = S3BlobStore(s3_server.settings(bucket, redirect=True, redirect_expiry_seconds=60))
    content = os.urandom(3 * MiB + 5)
    digest = digest_bytes(content)
    await store.create_upload("u1")
    await store.append_upload("u1", pieces_of(content))
    await store.commit_upload("u1", digest)

    url = await store.redirect_url(digest)

    assert url is not None
    assert "X-Amz-Expires=60" in url
    whole = httpx.get(url)
    assert whole.status_code == 200
    assert digest_bytes(whole.content) == digest
    part = httpx.get(url, headers={"Range": "bytes=1000-2999"})
    assert part.status_code == 206
    assert part.content == content[1000:3000]


async def test_without_redirect_there_is_no_url(store: S3BlobStore) -> None:
    assert await store.redirect_url(digest_bytes(b"anything")) is None


async def test_an_unreachable_endpoint_is_a_storage_error(s3_server: S3Server) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    store = S3BlobStore(s3_server.settings("bucket", endpoint_url=nowhere))

    with pytest.raises(StorageUnavailableError):
        await store.blob_size(digest_bytes(b"x"))
    with pytest.raises(StorageUnavailableError):
        await store.create_upload("u1")
    with pytest.raises(StorageUnavailableError):
        await collect(store.read_blob(digest_bytes(b"x")))


async def test_a_missing_bucket_is_a_storage_error(s3_server: S3Server) -> None:
    store = S3BlobStore(s3_server.settings("no-such-bucket"))

    with pytest.raises(StorageUnavailableError):
        await store.put_blob(digest_bytes(b"x"), b"x")
    with pytest.raises(StorageUnavailableError):
        await store.upload_size("u1")


def store_key(digest: object) -> str:
    algorithm, _, encoded = str(digest).partition(":")
    return f"blobs/{algorithm}/{encoded[:2]}/{encoded}"


def count_requests(store: S3BlobStore) -> list[str]:
    """The S3 operations the store sends from now on, in order (a botocore event hook)."""
    sent: list[str] = []

    def record(model: object, **_: object) -> None:
        sent.append(str(getattr(model, "name", model)))

    store._client.meta.events.register("before-call.s3", record)
    return sent


async def test_an_append_with_a_known_size_lists_nothing(store: S3BlobStore) -> None:
    await store.create_upload("u1")
    await store.append_upload("u1", pieces_of(b"abc"))
    sent = count_requests(store)

    size = await store.append_upload("u1", pieces_of(b"defg"), known_size=3)

    assert size == 7
    assert sent == ["PutObject"]
    assert await collect(store.read_upload("u1")) == b"abcdefg"


async def test_an_append_with_a_stale_known_size_is_refused(store: S3BlobStore) -> None:
    await store.create_upload("u1")
    await store.append_upload("u1", pieces_of(b"abc"))
    await store.append_upload("u1", pieces_of(b"def"))

    with pytest.raises(RangeInvalidError):
        await store.append_upload("u1", pieces_of(b"late"), known_size=3)

    assert await collect(store.read_upload("u1")) == b"abcdef"


async def test_a_commit_lists_the_upload_once_and_leaves_nothing_of_it(
    s3_server: S3Server, bucket: str, store: S3BlobStore
) -> None:
    content = b"one small blob"
    digest = digest_bytes(content)
    await store.create_upload("u1")
    await store.append_upload("u1", pieces_of(content))
    sent = count_requests(store)

    await store.commit_upload("u1", digest)

    assert sent == ["ListObjectsV2", "HeadObject", "CopyObject", "DeleteObjects"]
    assert list(keys_and_etags(s3_server, bucket, "uploads/")) == []
    assert await collect(store.read_blob(digest)) == content
