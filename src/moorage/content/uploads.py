"""Blob uploads: sessions, chunks in order, digest verification, cross-repository mounts."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select, update

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
from moorage.content.repositories import (
    claim_blob,
    ensure_repository,
    hold_blob,
    link_blob,
    linked_blob_size,
)
from moorage.errors import (
    DatabaseUnavailableError,
    DigestInvalidError,
    RangeInvalidError,
    SizeInvalidError,
    UploadUnknownError,
)
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import upload_sessions
from moorage.oci.digest import Digest, Hasher, digest_of_hasher, new_hasher
from moorage.storage.base import BlobStore, UploadMissingError

log = get_logger(__name__)

# Hash states kept between the requests of chunked uploads; a miss costs one re-read.
HASH_CACHE_ENTRIES = 4096
# How long a request's claim on an upload lasts unless renewed; the request renews it every
# third of that while it runs. A replica killed, or cut off from the database, while it wrote
# leaves the upload claimed for at most this long.
CLAIM_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """Where an upload session stands."""

    upload_id: str
    repository: str
    size: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A request body to append, with what the client declared about it."""

    body: AsyncIterator[bytes]
    # Inclusive byte range from Content-Range, when the client sent one.
    content_range: tuple[int, int] | None = None
    content_length: int | None = None


class _HashCache:
    """The sha256 state of recent uploads, valid only at the size it was taken."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[int, Hasher]] = OrderedDict()

    def take(self, upload_id: str, size: int) -> Hasher | None:
        entry = self._entries.pop(upload_id, None)
        if entry is None or entry[0] != size:
            return None
        return entry[1]

    def put(self, upload_id: str, size: int, hasher: Hasher) -> None:
        self._entries[upload_id] = (size, hasher)
        while len(self._entries) > HASH_CACHE_ENTRIES:
            self._entries.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        self._entries.pop(upload_id, None)


class UploadService:
    """Starts, extends, completes and cancels blob uploads."""

    def __init__(
        self,
        database: Database,
        store: BlobStore,
        expiry_seconds: int,
        quotas: QuotaService,
        claim_seconds: float = CLAIM_SECONDS,
    ) -> None:
        self._database = database
        self._claim = timedelta(seconds=claim_seconds)
        self._quotas = quotas
        self._store = store
        self._expiry = timedelta(seconds=expiry_seconds)
        self._hashes = _HashCache()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def start(self, repository: str) -> UploadStatus:
        """Open a new, empty upload session; refused at once if the push could not land."""
        await self._quotas.refuse_if_repository_would_exceed(repository)
        upload_id = str(uuid.uuid4())
        await self._store.create_upload(upload_id)
        now = utc_now()
        async with self._database.writing() as connection:
            await connection.execute(
                upload_sessions.insert().values(
                    id=upload_id, repository_name=repository, size=0, created_at=now, updated_at=now
                )
            )
        self._hashes.put(upload_id, 0, new_hasher("sha256"))
        return UploadStatus(upload_id, repository, 0)

    async def status(self, repository: str, upload_id: str) -> UploadStatus:
        """How many bytes an upload session holds."""
        await self._load_session(repository, upload_id)
        return UploadStatus(upload_id, repository, await self._stored_size(upload_id))

    async def append(self, repository: str, upload_id: str, chunk: Chunk) -> UploadStatus:
        """Append one chunk, which must start where the upload ends."""
        async with self._claimed(repository, upload_id), _lost_is_unknown(upload_id):
            size = await self._append(upload_id, chunk)
            await self._record_size(upload_id, size)
        return UploadStatus(upload_id, repository, size)

    async def complete(
        self, repository: str, upload_id: str, digest: Digest, chunk: Chunk | None
    ) -> int:
        """Append a last chunk, verify the whole upload against `digest`, store the blob."""
        async with self._claimed(repository, upload_id), _lost_is_unknown(upload_id):
            size = (
                await self._append(upload_id, chunk)
                if chunk is not None
                else await self._stored_size(upload_id)
            )
            actual = await self._digest_of_upload(upload_id, size, digest.algorithm)
            if actual != digest:
                await self._record_size(upload_id, size)
                raise DigestInvalidError(f"upload has digest {actual}, not the {digest} declared")

            # The slow part of a commit, outside the write transaction that SQLite serializes.
            await self._store.flush_upload(upload_id)
            async with self._database.writing() as connection:
                repository_id = await ensure_repository(
                    self._database, connection, repository, self._quotas
                )
                # The file goes into place with the blob's row locked, in the transaction that
                # links it: garbage collection cannot delete it in between (see repositories).
                await claim_blob(self._database, connection, digest, size)
                await self._store.commit_upload(upload_id, digest, size)
                await link_blob(self._database, connection, repository_id, digest)
                await connection.execute(
                    delete(upload_sessions).where(upload_sessions.c.id == upload_id)
                )
            self._hashes.forget(upload_id)
        log.info("blob stored", repository=repository, digest=str(digest), size=size)
        return size

    async def upload_whole(self, repository: str, digest: Digest, chunk: Chunk) -> int:
        """A monolithic upload: one request that carries the whole blob and its digest."""
        status = await self.start(repository)
        try:
            return await self.complete(repository, status.upload_id, digest, chunk)
        except BaseException:
            await self.cancel(repository, status.upload_id)
            raise

    async def cancel(self, repository: str, upload_id: str) -> None:
        """Drop an upload session and what it holds, once no request is writing to it."""
        async with self._claimed(repository, upload_id):
            await self._forget(upload_id)

    async def mount(self, repository: str, digest: Digest, source: str) -> int | None:
        """Link blob `digest` from repository `source`; its size, or None if source lacks it."""
        async with self._database.writing() as connection:
            # Locked before the source is asked, so garbage collection cannot take it meanwhile.
            if not await hold_blob(connection, str(digest)):
                return None
            size = await linked_blob_size(connection, source, str(digest))
            if size is None:
                return None
            repository_id = await ensure_repository(
                self._database, connection, repository, self._quotas
            )
            await link_blob(self._database, connection, repository_id, digest)
        return size

    async def expire(self) -> int:
        """Remove sessions idle for longer than the expiry; return how many."""
        cutoff = utc_now() - self._expiry
        async with self._database.reading() as connection:
            query = select(upload_sessions.c.id).where(upload_sessions.c.updated_at < cutoff)
            expired = list((await connection.execute(query)).scalars())
        for upload_id in expired:
            await self._forget(upload_id)
        if expired:
            log.info("upload sessions expired", count=len(expired))
        return len(expired)

    @contextlib.asynccontextmanager
    async def _claimed(self, repository: str, upload_id: str) -> AsyncIterator[None]:
        """The upload, for this request alone: requests on this replica wait their turn, and
        one on another replica is refused while the claim lasts (chunks come one at a time)."""
        async with self._lock(upload_id):
            await self._load_session(repository, upload_id)
            now = utc_now()
            async with self._database.writing() as connection:
                claimed = await connection.execute(
                    update(upload_sessions)
                    .where(
                        upload_sessions.c.id == upload_id,
                        or_(
                            upload_sessions.c.claimed_until.is_(None),
                            upload_sessions.c.claimed_until < now,
                        ),
                    )
                    .values(claimed_until=now + self._claim)
                )
            if claimed.rowcount == 0:
                await self._load_session(repository, upload_id)
                raise RangeInvalidError(
                    f"another request is writing to upload {upload_id}: send one chunk at a time"
                )
            # Recording the new size ends the claim, and so does completing or cancelling.
            renewal = asyncio.create_task(self._renew_claim(upload_id))
            try:
                yield
            except BaseException:
                async with self._database.writing() as connection:
                    await connection.execute(
                        update(upload_sessions)
                        .where(upload_sessions.c.id == upload_id)
                        .values(claimed_until=None)
                    )
                raise
            finally:
                renewal.cancel()

    async def _renew_claim(self, upload_id: str) -> None:
        """Keep a running request's claim from lapsing, however long its body takes."""
        while True:
            await asyncio.sleep(self._claim.total_seconds() / 3)
            try:
                async with self._database.writing() as connection:
                    # A claim already ended stays ended: the next request may claim it.
                    await connection.execute(
                        update(upload_sessions)
                        .where(
                            upload_sessions.c.id == upload_id,
                            upload_sessions.c.claimed_until.is_not(None),
                        )
                        .values(claimed_until=utc_now() + self._claim)
                    )
            except DatabaseUnavailableError:
                log.warning("upload claim not renewed", upload_id=upload_id)

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[upload_id] = lock
        return lock

    async def _load_session(self, repository: str, upload_id: str) -> None:
        async with self._database.reading() as connection:
            query = select(upload_sessions.c.repository_name, upload_sessions.c.updated_at).where(
                upload_sessions.c.id == upload_id
            )
            row = (await connection.execute(query)).one_or_none()
        if row is None or row.repository_name != repository:
            raise UploadUnknownError(f"upload {upload_id} is unknown to repository {repository}")
        updated_at = row.updated_at
        if updated_at.tzinfo is None:
            updated_at = updated_at.replace(tzinfo=utc_now().tzinfo)
        if updated_at < utc_now() - self._expiry:
            await self._forget(upload_id)
            raise UploadUnknownError(f"upload {upload_id} expired")

    async def _stored_size(self, upload_id: str) -> int:
        try:
            return await self._store.upload_size(upload_id)
        except UploadMissingError:
            raise UploadUnknownError(f"upload {upload_id} holds no data") from None

    async def _append(self, upload_id: str, chunk: Chunk) -> int:
        start = await self._stored_size(upload_id)
        expected_length = _declared_length(chunk, start)
        hasher = self._hashes.take(upload_id, start)
        hashed = 0

        def observe(content: bytes) -> None:
            nonlocal hashed
            hashed += len(content)
            if hasher is not None:
                hasher.update(content)

        size = await self._store.append_upload(upload_id, chunk.body, observe, known_size=start)
        written = size - start
        if expected_length is not None and written != expected_length:
            await self._store.truncate_upload(upload_id, start)
            raise SizeInvalidError(f"chunk declared {expected_length} bytes but carried {written}")
        if hasher is not None and hashed == written:
            self._hashes.put(upload_id, size, hasher)
        return size

    async def _digest_of_upload(self, upload_id: str, size: int, algorithm: str) -> Digest:
        if algorithm == "sha256":
            cached = self._hashes.take(upload_id, size)
            if cached is not None:
                return digest_of_hasher(algorithm, cached)
        # After a restart, on another replica, or for sha512: hash what is stored.
        hasher = new_hasher(algorithm)
        async for content in self._store.read_upload(upload_id):
            hasher.update(content)
        return digest_of_hasher(algorithm, hasher)

    async def _record_size(self, upload_id: str, size: int) -> None:
        async with self._database.writing() as connection:
            await connection.execute(
                update(upload_sessions)
                .where(upload_sessions.c.id == upload_id)
                .values(size=size, updated_at=utc_now(), claimed_until=None)
            )

    async def _forget(self, upload_id: str) -> None:
        self._hashes.forget(upload_id)
        await self._store.delete_upload(upload_id)
        async with self._database.writing() as connection:
            await connection.execute(
                delete(upload_sessions).where(upload_sessions.c.id == upload_id)
            )


@contextlib.asynccontextmanager
async def _lost_is_unknown(upload_id: str) -> AsyncIterator[None]:
    """Storage that no longer holds the upload (it expired meanwhile) makes it unknown."""
    try:
        yield
    except UploadMissingError:
        raise UploadUnknownError(f"upload {upload_id} is gone") from None


def _declared_length(chunk: Chunk, start: int) -> int | None:
    """The chunk's length as the client declared it, after checking that it starts at `start`."""
    if chunk.content_range is None:
        return chunk.content_length
    first, last = chunk.content_range
    if first != start:
        raise RangeInvalidError(f"chunk starts at byte {first} but the upload holds {start} bytes")
    length = last - first + 1
    if chunk.content_length is not None and chunk.content_length != length:
        raise SizeInvalidError(
            f"Content-Range covers {length} bytes but Content-Length says {chunk.content_length}"
        )
    return length
