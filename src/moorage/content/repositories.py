"""Repository rows and blob links, shared by the upload and manifest services.

Garbage collection removes a blob's row and its file in one write transaction that locks the
row first. Whoever is about to rely on a blob therefore locks its row too (`claim_blob` when
the file is about to be written, `hold_blob` when it must already exist), in the transaction
that links it: the two can never interleave. SQLite serializes write transactions anyway; the
row locks are what makes this hold on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
from moorage.errors import DeniedError
from moorage.metadata.database import Database
from moorage.metadata.tables import blobs, namespaces, repositories, repository_blobs
from moorage.oci.digest import Digest


async def find_repository_id(connection: AsyncConnection, name: str) -> int | None:
    """The id of repository `name`, or None if it has never been pushed to."""
    query = select(repositories.c.id).where(repositories.c.name == name)
    return (await connection.execute(query)).scalar_one_or_none()


async def ensure_repository(
    database: Database, connection: AsyncConnection, name: str, quotas: QuotaService
) -> int:
    """The id of repository `name`, created by this push if it is new and within quota."""
    existing = await find_repository_id(connection, name)
    if existing is not None:
        return existing
    namespace_query = select(namespaces.c.id).where(namespaces.c.name == name.split("/", 1)[0])
    namespace_id = (await connection.execute(namespace_query)).scalar_one_or_none()
    try:
        await quotas.check_new_repository(connection, namespace_id, name)
    except DeniedError:
        # On PostgreSQL, a concurrent push into the same repository may have created it while
        # this one waited for the owner lock the check takes: then it is no new repository.
        if (existing := await find_repository_id(connection, name)) is not None:
            return existing
        raise
    insert = database.insert_ignoring_duplicates(repositories).values(
        name=name, namespace_id=namespace_id, created_at=utc_now()
    )
    await connection.execute(insert)
    created = await find_repository_id(connection, name)
    assert created is not None, "the repository row was just inserted"
    return created


@dataclass(frozen=True, slots=True)
class BlobLink:
    """A blob a repository may serve, and when the link was last pushed or looked up."""

    repository_id: int
    size: int
    touched_at: datetime


async def claim_blob(
    database: Database, connection: AsyncConnection, digest: Digest, size: int
) -> None:
    """Create the row of blob `digest` if needed, and lock it until the transaction ends."""
    while True:
        await connection.execute(
            database.insert_ignoring_duplicates(blobs).values(
                digest=str(digest), size=size, created_at=utc_now()
            )
        )
        if await hold_blob(connection, str(digest)):
            return
        # Garbage collection removed the row between the insert and the lock: insert it anew.


async def hold_blob(connection: AsyncConnection, digest: str) -> bool:
    """Lock the row of blob `digest` until the transaction ends; False if there is none."""
    held = select(blobs.c.digest).where(blobs.c.digest == digest).with_for_update(read=True)
    return (await connection.execute(held)).first() is not None


async def link_blob(
    database: Database, connection: AsyncConnection, repository_id: int, digest: Digest
) -> None:
    """Let the repository serve blob `digest`, as of now; the caller holds the blob's row."""
    now = utc_now()
    # RETURNING says whether a row went in: PostgreSQL's rowcount is -1 after ON CONFLICT.
    linked = await connection.execute(
        database.insert_ignoring_duplicates(repository_blobs)
        .values(repository_id=repository_id, digest=str(digest), touched_at=now)
        .returning(repository_blobs.c.digest)
    )
    if linked.first() is None:
        # Pushed again: the manifest that follows needs the link to outlive the grace period.
        await touch_blob_link(connection, repository_id, str(digest))


async def find_blob_link(
    connection: AsyncConnection, repository_name: str, digest: str
) -> BlobLink | None:
    """The link of blob `digest` in repository `repository_name`, or None."""
    query = (
        select(repository_blobs.c.repository_id, blobs.c.size, repository_blobs.c.touched_at)
        .select_from(
            repository_blobs.join(
                repositories, repositories.c.id == repository_blobs.c.repository_id
            ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
        )
        .where(repositories.c.name == repository_name, repository_blobs.c.digest == digest)
    )
    row = (await connection.execute(query)).one_or_none()
    return None if row is None else BlobLink(row.repository_id, row.size, row.touched_at)


async def touch_blob_link(connection: AsyncConnection, repository_id: int, digest: str) -> bool:
    """Mark a link as used now, so garbage collection spares it; False if it is gone."""
    touched = await connection.execute(
        update(repository_blobs)
        .where(
            repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest
        )
        .values(touched_at=utc_now())
    )
    return bool(touched.rowcount)


async def linked_blob_size(
    connection: AsyncConnection, repository_name: str, digest: str
) -> int | None:
    """The size of blob `digest` if repository `repository_name` may serve it, else None."""
    link = await find_blob_link(connection, repository_name, digest)
    return None if link is None else link.size
