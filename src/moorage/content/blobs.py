"""Blobs as a repository serves them: existence, streaming, unlinking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.clock import utc_now
from moorage.content.repositories import find_blob_link, find_repository_id, touch_blob_link
from moorage.errors import BlobInUseError, BlobUnknownError
from moorage.metadata.database import Database
from moorage.metadata.tables import manifest_references, manifests, repositories, repository_blobs
from moorage.oci.digest import Digest
from moorage.storage.base import BlobMissingError, BlobStore


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A blob the repository may serve; `content` is set when it is a manifest."""

    digest: Digest
    size: int
    content: bytes | None = None


class BlobService:
    """Answers blob HEAD, GET and DELETE for a repository."""

    def __init__(
        self, database: Database, store: BlobStore, touch_after: timedelta = timedelta(minutes=30)
    ) -> None:
        self._database = database
        self._store = store
        # Half the garbage collection grace period: how stale a link may get before a lookup
        # refreshes it, which costs one write per link that often at most.
        self._touch_after = touch_after

    async def stat(self, repository: str, digest: Digest) -> BlobInfo:
        """The blob, if the repository may serve it; manifests are served as blobs too."""
        async with self._database.reading() as connection:
            link = await find_blob_link(connection, repository, str(digest))
        if link is not None:
            await self._keep_fresh(repository, digest, link.repository_id, link.touched_at)
            return BlobInfo(digest, link.size)
        async with self._database.reading() as connection:
            query = (
                select(manifests.c.content)
                .join(repositories, repositories.c.id == manifests.c.repository_id)
                .where(
                    repositories.c.name == repository,
                    manifests.c.digest == str(digest),
                    manifests.c.deleted_at.is_(None),
                )
            )
            content = (await connection.execute(query)).scalar_one_or_none()
        if content is None:
            raise BlobUnknownError(f"blob {digest} is unknown to repository {repository}")
        return BlobInfo(digest, len(content), content)

    async def _keep_fresh(
        self, repository: str, digest: Digest, repository_id: int, touched_at: datetime
    ) -> None:
        """Refresh a stale link: a client that finds a blob skips uploading it and pushes a
        manifest that needs it, so garbage collection must spare the blob a while longer."""
        if touched_at > utc_now() - self._touch_after:
            return
        async with self._database.writing() as connection:
            if await touch_blob_link(connection, repository_id, str(digest)):
                return
        # Garbage collection removed the link since it was read: the client must upload it.
        raise BlobUnknownError(f"blob {digest} is unknown to repository {repository}")

    async def read(self, blob: BlobInfo, start: int, end: int) -> AsyncIterator[bytes]:
        """Stream bytes `start`..`end` (inclusive) of a blob found by `stat`."""
        if blob.content is not None:
            yield blob.content[start : end + 1]
            return
        try:
            async for chunk in self._store.read_blob(blob.digest, start, end):
                yield chunk
        except BlobMissingError:
            # The metadata says the blob exists but storage lost it: fsck reports this.
            raise BlobUnknownError(f"blob {blob.digest} is missing from storage") from None

    async def redirect_url(self, blob: BlobInfo) -> str | None:
        """Where the client may fetch a blob found by `stat` from storage directly, if it may."""
        if blob.content is not None:
            return None
        return await self._store.redirect_url(blob.digest)

    async def unlink(self, repository: str, digest: Digest) -> None:
        """Stop the repository serving a blob; the bytes go when garbage collection runs."""
        async with self._database.writing() as connection:
            repository_id = await find_repository_id(connection, repository)
            deleted = None
            if repository_id is not None:
                await _refuse_if_used(connection, repository_id, repository, digest)
                deleted = await connection.execute(
                    delete(repository_blobs).where(
                        repository_blobs.c.repository_id == repository_id,
                        repository_blobs.c.digest == str(digest),
                    )
                )
        if deleted is None or deleted.rowcount == 0:
            raise BlobUnknownError(f"blob {digest} is unknown to repository {repository}")


async def _refuse_if_used(
    connection: AsyncConnection, repository_id: int, repository: str, digest: Digest
) -> None:
    """A blob that a manifest of the repository uses, even a restorable one, must stay."""
    query = (
        select(manifests.c.digest)
        .join(manifest_references, manifest_references.c.manifest_id == manifests.c.id)
        .where(
            manifests.c.repository_id == repository_id,
            manifest_references.c.digest == str(digest),
        )
        .limit(1)
    )
    user = (await connection.execute(query)).scalar_one_or_none()
    if user is not None:
        raise BlobInUseError(
            f"blob {digest} is used by manifest {user} of {repository}; delete the manifest"
            " (or its tags) first, and garbage collection removes the blob"
        )
