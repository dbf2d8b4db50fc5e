"""One conformance suite that every blob storage driver passes, through the BlobStore interface."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.storage.drivers import DRIVERS, driver_settings

from moorage.errors import RangeInvalidError
from moorage.oci.digest import Digest, digest_bytes
from moorage.storage import BlobStore, create_blob_store
from moorage.storage.base import IO_CHUNK_BYTES, BlobMissingError, UploadMissingError
from moorage.storage.filesystem import FilesystemBlobStore
from moorage.storage.memory import MemoryBlobStore
from moorage.storage.s3 import S3BlobStore

pytestmark = pytest.mark.anyio

# Builds a driver; a filesystem driver built again on the same folder sees what was stored.
StoreFactory = Callable[[], BlobStore]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DRIVERS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    settings = driver_settings(request.param, tmp_path, request)
    return lambda: create_blob_store(settings)


@pytest.fixture
def store(open_store: StoreFactory) -> BlobStore:
    return open_store()


async def pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def uploaded(store: BlobStore, upload_id: str, content: bytes) -> Digest:
    await store.create_upload(upload_id)
    await store.append_upload(upload_id, pieces(content))
    return digest_bytes(content)


def test_drivers_are_chosen_by_name(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    classes = {"filesystem": FilesystemBlobStore, "memory": MemoryBlobStore, "s3": S3BlobStore}
    for driver in DRIVERS:
        settings = driver_settings(driver, tmp_path, request)
        assert isinstance(create_blob_store(settings), classes[driver])


async def test_a_new_upload_is_empty(store: BlobStore) -> None:
    await store.create_upload("u1")

    assert await store.upload_size("u1") == 0
    assert await collect(store.read_upload("u1")) == b""


async def test_appends_accumulate_and_are_observed_in_order(store: BlobStore) -> None:
    seen: list[bytes] = []
    await store.create_upload("u1")

    first = await store.append_upload("u1", pieces(b"abc", b"def"), seen.append)
    second = await store.append_upload("u1", pieces(b"ghij"), seen.append)

    assert (first, second) == (6, 10)
    assert b"".join(seen) == b"abcdefghij"
    assert await store.upload_size("u1") == 10
    assert await collect(store.read_upload("u1")) == b"abcdefghij"


async def test_a_stream_larger_than_the_io_buffer(store: BlobStore) -> None:
    content = os.urandom(2 * IO_CHUNK_BYTES + 12345)
    seen: list[bytes] = []
    await store.create_upload("u1")

    size = await store.append_upload(
        "u1",
        pieces(*[content[at : at + 65536] for at in range(0, len(content), 65536)]),
        seen.append,
    )

    assert size == len(content)
    assert b"".join(seen) == content
    assert await collect(store.read_upload("u1")) == content


async def test_truncate_undoes_a_refused_chunk(store: BlobStore) -> None:
    await store.create_upload("u1")
    await store.append_upload("u1", pieces(b"keep"))
    await store.append_upload("u1", pieces(b"refused"))

    await store.truncate_upload("u1", 4)

    assert await store.upload_size("u1") == 4
    assert await store.append_upload("u1", pieces(b"-more")) == 9
    assert await collect(store.read_upload("u1")) == b"keep-more"


async def test_uploads_are_independent(store: BlobStore) -> None:
    await store.create_upload("u1")
    await store.create_upload("u2")

    await store.append_upload("u1", pieces(b"one"))
    await store.append_upload("u2", pieces(b"two!"))
    await store.delete_upload("u1")

    assert await collect(store.read_upload("u2")) == b"two!"
    with pytest.raises(UploadMissingError):
        await store.upload_size("u1")


async def test_commit_turns_an_upload_into_a_blob(store: BlobStore) -> None:
    content = os.urandom(1000)
    digest = await uploaded(store, "u1", content)

    await store.commit_upload("u1", digest)

    assert await store.blob_size(digest) == len(content)
    assert await collect(store.read_blob(digest)) == content
    with pytest.raises(UploadMissingError):
        await store.upload_size("u1")


async def test_a_commit_refuses_an_upload_that_grew_after_it_was_verified(
    store: BlobStore,
) -> None:
    verified = os.urandom(1000)
    digest = await uploaded(store, "u1", verified)
    # Another request, whose claim began when this one's lapsed, appended meanwhile.
    await store.append_upload("u1", pieces(b"appended later"))

    with pytest.raises(RangeInvalidError):
        await store.commit_upload("u1", digest, len(verified))

    assert await store.blob_size(digest) is None
    assert await store.upload_size("u1") == len(verified) + len(b"appended later")


async def test_committing_the_same_content_twice_keeps_one_blob(store: BlobStore) -> None:
    content = os.urandom(1000)
    digest = await uploaded(store, "u1", content)
    await uploaded(store, "u2", content)

    await store.commit_upload("u1", digest)
    await store.commit_upload("u2", digest)

    assert await collect(store.read_blob(digest)) == content
    for upload_id in ("u1", "u2"):
        with pytest.raises(UploadMissingError):
            await store.upload_size(upload_id)


async def test_the_empty_blob(store: BlobStore) -> None:
    digest = await uploaded(store, "u1", b"")

    await store.commit_upload("u1", digest)

    assert await store.blob_size(digest) == 0
    assert await collect(store.read_blob(digest)) == b""
    assert await collect(store.read_blob(digest, 0, -1)) == b""


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 0),
        (5, 9),
        (5, None),
        (IO_CHUNK_BYTES - 3, IO_CHUNK_BYTES + 3),
        (IO_CHUNK_BYTES + 7, None),
        (IO_CHUNK_BYTES * 2 + 99, IO_CHUNK_BYTES * 2 + 99),
    ],
)
async def test_read_blob_ranges_are_inclusive(
    store: BlobStore, start: int, end: int | None
) -> None:
    content = os.urandom(2 * IO_CHUNK_BYTES + 100)
    digest = await uploaded(store, "u1", content)
    await store.commit_upload("u1", digest)

    read = await collect(store.read_blob(digest, start, end))

    assert read == content[start : None if end is None else end + 1]


async def test_put_blob_and_delete_blob(store: BlobStore) -> None:
    content = b'{"small":"config"}'
    digest = digest_bytes(content)

    await store.put_blob(digest, content)
    await store.put_blob(digest, content)

    assert await collect(store.read_blob(digest)) == content
    await store.delete_blob(digest)
    await store.delete_blob(digest)
    assert await store.blob_size(digest) is None


async def test_a_missing_blob(store: BlobStore) -> None:
    digest = digest_bytes(b"never stored")

    assert await store.blob_size(digest) is None
    with pytest.raises(BlobMissingError):
        await collect(store.read_blob(digest))


async def test_a_missing_upload(store: BlobStore) -> None:
    digest = digest_bytes(b"x")

    with pytest.raises(UploadMissingError):
        await store.append_upload("gone", pieces(b"x"))
    with pytest.raises(UploadMissingError):
        await store.truncate_upload("gone", 0)
    with pytest.raises(UploadMissingError):
        await store.upload_size("gone")
    with pytest.raises(UploadMissingError):
        await collect(store.read_upload("gone"))
    with pytest.raises(UploadMissingError):
        await store.commit_upload("gone", digest)
    await store.delete_upload("gone")


async def test_sha512_blobs(store: BlobStore) -> None:
    content = os.urandom(300)
    digest = digest_bytes(content, "sha512")
    await store.create_upload("u1")
    await store.append_upload("u1", pieces(content))

    await store.commit_upload("u1", digest)

    assert await collect(store.read_blob(digest)) == content
    assert await store.blob_size(digest_bytes(content)) is None


@pytest.fixture(params=["filesystem", "s3"])
def open_persisting_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    # Only drivers that persist: the memory driver keeps nothing beyond its own instance.
    settings = driver_settings(request.param, tmp_path, request)
    return lambda: create_blob_store(settings)


async def test_a_reopened_store_keeps_blobs_and_uploads(
    open_persisting_store: StoreFactory,
) -> None:
    open_store = open_persisting_store
    first = open_store()
    digest = await uploaded(first, "done", b"stored blob")
    await first.commit_upload("done", digest)
    await first.create_upload("open")
    await first.append_upload("open", pieces(b"half"))

    again = open_store()

    assert await collect(again.read_blob(digest)) == b"stored blob"
    assert await again.upload_size("open") == 4
    assert await again.append_upload("open", pieces(b"-way")) == 8
