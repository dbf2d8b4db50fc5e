"""What garbage collection and fsck ask of every driver: listing blobs and uploads with their
size and age, and flushing an upload before its commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.storage.drivers import DRIVERS, driver_settings

from moorage.clock import utc_now
from moorage.oci.digest import digest_bytes
from moorage.settings import Settings
from moorage.storage import BlobStore, create_blob_store
from moorage.storage.base import UploadMissingError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=DRIVERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return create_blob_store(driver_settings(request.param, tmp_path, request))


async def one_piece(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def test_blobs_are_listed_with_their_size_and_age(store: BlobStore) -> None:
    committed, put = b"committed" * 100, b"put" * 10
    await store.create_upload("first")
    await store.append_upload("first", one_piece(committed))
    await store.flush_upload("first")
    await store.commit_upload("first", digest_bytes(committed))
    await store.put_blob(digest_bytes(put), put)

    listed = {str(blob.digest): blob async for blob in store.list_blobs()}

    assert {digest: blob.size for digest, blob in listed.items()} == {
        str(digest_bytes(committed)): len(committed),
        str(digest_bytes(put)): len(put),
    }
    for blob in listed.values():
        assert utc_now() - timedelta(minutes=1) < blob.modified_at <= utc_now()
    assert [upload async for upload in store.list_uploads()] == []


async def test_uploads_in_progress_are_listed_until_committed(store: BlobStore) -> None:
    await store.create_upload("open")
    await store.append_upload("open", one_piece(b"12345"))
    await store.create_upload("empty")

    listed = {upload.upload_id: upload.size async for upload in store.list_uploads()}

    assert listed == {"open": 5, "empty": 0}
    assert [blob async for blob in store.list_blobs()] == []
    await store.delete_upload("open")
    assert [upload.upload_id async for upload in store.list_uploads()] == ["empty"]


async def test_a_deleted_blob_is_no_longer_listed(store: BlobStore) -> None:
    content = b"going"
    await store.put_blob(digest_bytes(content), content)
    await store.delete_blob(digest_bytes(content))

    assert [blob async for blob in store.list_blobs()] == []


async def test_flushing_a_missing_upload_says_so(store: BlobStore) -> None:
    with pytest.raises(UploadMissingError):
        await store.flush_upload("never-started")


async def test_files_not_named_by_a_digest_are_not_listed(tmp_path: Path) -> None:
    store = create_blob_store(Settings(data_dir=tmp_path))
    stray = tmp_path / "blobs" / "blobs" / "sha256" / "ab" / "not-a-digest"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"?")

    assert [blob async for blob in store.list_blobs()] == []
