"""UploadService over a real database: sessions, verification, restarts, races, expiry, mounts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from tests.content.conftest import Content

from moorage.clock import utc_now
from moorage.content.uploads import Chunk, UploadService
from moorage.errors import (
    BlobUnknownError,
    DigestInvalidError,
    RangeInvalidError,
    SizeInvalidError,
    UploadUnknownError,
)
from moorage.metadata.tables import upload_sessions
from moorage.oci.digest import digest_bytes

pytestmark = pytest.mark.anyio

REPOSITORY = "test/uploads"


async def body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def chunk(content: bytes, start: int | None = None) -> Chunk:
    """A chunk with its Content-Range (when `start` is given) and Content-Length."""
    content_range = None if start is None else (start, start + len(content) - 1)
    return Chunk(body(content), content_range, len(content))


async def test_chunks_then_complete_store_the_blob(content: Content) -> None:
    blob = os.urandom(5000)
    status = await content.uploads.start(REPOSITORY)

    await content.uploads.append(REPOSITORY, status.upload_id, chunk(blob[:2000], 0))
    size = await content.uploads.complete(
        REPOSITORY, status.upload_id, digest_bytes(blob), chunk(blob[2000:], 2000)
    )

    assert size == len(blob)
    stored = await content.blobs.stat(REPOSITORY, digest_bytes(blob))
    assert b"".join([part async for part in content.blobs.read(stored, 0, size - 1)]) == blob
    with pytest.raises(UploadUnknownError):
        await content.uploads.status(REPOSITORY, status.upload_id)


async def test_a_restarted_service_verifies_by_reading_the_upload(content: Content) -> None:
    blob = os.urandom(3000)
    status = await content.uploads.start(REPOSITORY)
    await content.uploads.append(REPOSITORY, status.upload_id, chunk(blob[:1000], 0))

    restarted = content.restarted_uploads()
    await restarted.append(REPOSITORY, status.upload_id, chunk(blob[1000:2000], 1000))
    size = await restarted.complete(
        REPOSITORY, status.upload_id, digest_bytes(blob), chunk(blob[2000:])
    )

    assert size == len(blob)
    assert (await content.blobs.stat(REPOSITORY, digest_bytes(blob))).size == len(blob)


async def test_sha512_is_verified_too(content: Content) -> None:
    blob = os.urandom(700)
    status = await content.uploads.start(REPOSITORY)

    await content.uploads.complete(
        REPOSITORY, status.upload_id, digest_bytes(blob, "sha512"), chunk(blob)
    )

    assert (await content.blobs.stat(REPOSITORY, digest_bytes(blob, "sha512"))).size == 700


async def test_a_wrong_digest_keeps_the_session_for_the_right_one(content: Content) -> None:
    blob = os.urandom(100)
    status = await content.uploads.start(REPOSITORY)
    await content.uploads.append(REPOSITORY, status.upload_id, chunk(blob, 0))

    with pytest.raises(DigestInvalidError):
        await content.uploads.complete(REPOSITORY, status.upload_id, digest_bytes(b"other"), None)
    with pytest.raises(BlobUnknownError):
        await content.blobs.stat(REPOSITORY, digest_bytes(b"other"))

    assert (await content.uploads.status(REPOSITORY, status.upload_id)).size == 100
    await content.uploads.complete(REPOSITORY, status.upload_id, digest_bytes(blob), None)


async def test_a_monolithic_upload_that_fails_leaves_no_session(content: Content) -> None:
    with pytest.raises(DigestInvalidError):
        await content.uploads.upload_whole(REPOSITORY, digest_bytes(b"a"), chunk(b"b"))

    assert content.store._uploads == {}


async def test_a_chunk_out_of_order_or_of_the_wrong_length_changes_nothing(
    content: Content,
) -> None:
    status = await content.uploads.start(REPOSITORY)
    await content.uploads.append(REPOSITORY, status.upload_id, chunk(b"0123456789", 0))

    with pytest.raises(RangeInvalidError):
        await content.uploads.append(REPOSITORY, status.upload_id, chunk(b"abc", 20))
    with pytest.raises(SizeInvalidError):
        short = Chunk(body(b"abc"), (10, 19), None)
        await content.uploads.append(REPOSITORY, status.upload_id, short)

    assert (await content.uploads.status(REPOSITORY, status.upload_id)).size == 10


async def test_a_session_is_only_known_to_its_repository(content: Content) -> None:
    status = await content.uploads.start(REPOSITORY)

    with pytest.raises(UploadUnknownError):
        await content.uploads.status("test/elsewhere", status.upload_id)
    with pytest.raises(UploadUnknownError):
        await content.uploads.cancel("test/elsewhere", status.upload_id)


class SlowMemoryStore:
    """Storage that pauses while an upload is read back: a fake at the storage edge, to
    make a request arriving during verification deterministic."""

    def __init__(self, content: Content) -> None:
        self.inner = content.store

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def read_upload(self, upload_id: str) -> AsyncIterator[bytes]:
        async for piece in self.inner.read_upload(upload_id):
            await asyncio.sleep(0.05)
            yield piece


async def test_cancel_during_completion_waits_for_it(content: Content) -> None:
    uploads = UploadService(content.database, SlowMemoryStore(content), 3600, content.quotas)
    blob = os.urandom(100)
    status = await uploads.start(REPOSITORY)
    await uploads.append(REPOSITORY, status.upload_id, chunk(blob, 0))

    # sha512 is never cached, so completing reads the upload back, slowly.
    completed, cancelled = await asyncio.gather(
        uploads.complete(REPOSITORY, status.upload_id, digest_bytes(blob, "sha512"), None),
        uploads.cancel(REPOSITORY, status.upload_id),
        return_exceptions=True,
    )

    assert completed == len(blob)
    assert isinstance(cancelled, UploadUnknownError)
    assert (await content.blobs.stat(REPOSITORY, digest_bytes(blob, "sha512"))).size == 100


async def test_an_upload_lost_from_storage_is_unknown(content: Content) -> None:
    status = await content.uploads.start(REPOSITORY)
    await content.store.delete_upload(status.upload_id)

    with pytest.raises(UploadUnknownError):
        await content.uploads.status(REPOSITORY, status.upload_id)
    with pytest.raises(UploadUnknownError):
        await content.uploads.complete(REPOSITORY, status.upload_id, digest_bytes(b""), None)


async def test_expiry_removes_idle_sessions(content: Content) -> None:
    idle = await content.uploads.start(REPOSITORY)
    busy = await content.uploads.start(REPOSITORY)
    async with content.database.writing() as connection:
        await connection.execute(
            update(upload_sessions)
            .where(upload_sessions.c.id == idle.upload_id)
            .values(updated_at=utc_now() - timedelta(days=2))
        )

    assert await content.uploads.expire() == 1

    with pytest.raises(UploadUnknownError):
        await content.uploads.status(REPOSITORY, idle.upload_id)
    assert idle.upload_id not in content.store._uploads
    assert (await content.uploads.status(REPOSITORY, busy.upload_id)).size == 0


async def test_an_expired_session_is_unknown_before_expiry_runs(content: Content) -> None:
    status = await content.uploads.start(REPOSITORY)
    async with content.database.writing() as connection:
        await connection.execute(
            update(upload_sessions)
            .where(upload_sessions.c.id == status.upload_id)
            .values(updated_at=utc_now() - timedelta(days=2))
        )

    with pytest.raises(UploadUnknownError):
        await content.uploads.append(REPOSITORY, status.upload_id, chunk(b"late", 0))


async def test_mount_links_only_what_the_source_holds(content: Content) -> None:
    blob = os.urandom(50)
    await content.uploads.upload_whole("test/source", digest_bytes(blob), chunk(blob))

    absent = await content.uploads.mount("test/target", digest_bytes(b"absent"), "test/source")
    mounted = await content.uploads.mount("test/target", digest_bytes(blob), "test/source")

    assert absent is None
    assert mounted == len(blob)
    assert (await content.blobs.stat("test/target", digest_bytes(blob))).size == len(blob)


async def test_a_blob_lost_from_storage_is_unknown_when_read(content: Content) -> None:
    blob = os.urandom(50)
    digest = digest_bytes(blob)
    await content.uploads.upload_whole(REPOSITORY, digest, chunk(blob))
    await content.store.delete_blob(digest)

    stored = await content.blobs.stat(REPOSITORY, digest)

    with pytest.raises(BlobUnknownError):
        _ = [part async for part in content.blobs.read(stored, 0, 49)]


async def test_a_request_on_another_replica_cannot_write_while_one_writes(
    content: Content,
) -> None:
    # Two upload services on one database and storage stand for two replicas.
    first, second = content.uploads, content.restarted_uploads()
    status = await first.start(REPOSITORY)
    upload_id = status.upload_id
    streaming, finish = asyncio.Event(), asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"a" * 100
        streaming.set()
        await finish.wait()
        yield b"b" * 100

    writing = asyncio.create_task(first.append(REPOSITORY, upload_id, Chunk(slow_body())))
    await streaming.wait()

    with pytest.raises(RangeInvalidError, match="another request is writing"):
        await second.append(REPOSITORY, upload_id, chunk(b"c" * 50, 0))
    with pytest.raises(RangeInvalidError, match="another request is writing"):
        await second.complete(REPOSITORY, upload_id, digest_bytes(b"x"), None)
    finish.set()
    assert (await writing).size == 200

    # Once the first request has ended, the other replica takes the next chunk and completes.
    whole = b"a" * 100 + b"b" * 100 + b"c" * 50
    assert await second.complete(REPOSITORY, upload_id, digest_bytes(whole), chunk(b"c" * 50, 200))
    stored = await content.blobs.stat(REPOSITORY, digest_bytes(whole))
    assert b"".join([part async for part in content.blobs.read(stored, 0, 249)]) == whole


async def test_a_claim_outlives_its_duration_while_the_request_runs_and_lapses_without_it(
    content: Content,
) -> None:
    # Two replicas whose claims last 0.6 s unless renewed.
    first, second = (
        UploadService(content.database, content.store, 3600, content.quotas, claim_seconds=0.6)
        for _ in range(2)
    )
    upload_id = (await first.start(REPOSITORY)).upload_id
    streaming = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"a" * 100
        streaming.set()
        await asyncio.sleep(1.5)
        yield b"b" * 100

    writing = asyncio.create_task(first.append(REPOSITORY, upload_id, Chunk(slow_body())))
    await streaming.wait()
    await asyncio.sleep(1.0)
    with pytest.raises(RangeInvalidError, match="another request is writing"):
        await second.append(REPOSITORY, upload_id, chunk(b"c" * 50, 0))
    assert (await writing).size == 200

    # A replica killed while it wrote leaves its last claim behind, unrenewed.
    async with content.database.writing() as connection:
        await connection.execute(
            update(upload_sessions)
            .where(upload_sessions.c.id == upload_id)
            .values(claimed_until=utc_now() + timedelta(seconds=0.6))
        )
    with pytest.raises(RangeInvalidError, match="another request is writing"):
        await second.append(REPOSITORY, upload_id, chunk(b"c" * 50, 200))
    await asyncio.sleep(0.8)
    assert (await second.append(REPOSITORY, upload_id, chunk(b"c" * 50, 200))).size == 250


async def test_a_failed_request_leaves_the_upload_free_for_the_next(content: Content) -> None:
    first, second = content.uploads, content.restarted_uploads()
    status = await first.start(REPOSITORY)

    with pytest.raises(SizeInvalidError):
        await first.append(REPOSITORY, status.upload_id, Chunk(body(b"short"), None, 10))

    assert (await second.append(REPOSITORY, status.upload_id, chunk(b"fine", 0))).size == 4
