"""Repository rows and blob links, shared by the upload and manifest services."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
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
    await quotas.check_new_repository(connection, namespace_id, name)
    insert = database.insert_ignoring_duplicates(repositories).values(
        name=name, namespace_id=namespace_id, created_at=utc_now()
    )
    await connection.execute(insert)
    created = await find_repository_id(connection, name)
    assert created is not None, "the repository row was just inserted"
    return created


async def link_blob(
    database: Database, connection: AsyncConnection, repository_id: int, digest: Digest, size: int
) -> None:
    """Record that blob `digest` exists and that the repository may serve it."""
    now = utc_now()
    await connection.execute(
        database.insert_ignoring_duplicates(blobs).values(
            digest=str(digest), size=size, created_at=now
        )
    )
    await connection.execute(
        database.insert_ignoring_duplicates(repository_blobs).values(
            repository_id=repository_id, digest=str(digest), touched_at=now
        )
    )


async def linked_blob_size(
    connection: AsyncConnection, repository_name: str, digest: str
) -> int | None:
    """The size of blob `digest` if repository `repository_name` may serve it, else None."""
    query = (
        select(blobs.c.size)
        .select_from(
            repository_blobs.join(
                repositories, repositories.c.id == repository_blobs.c.repository_id
            ).join(blobs, blobs.c.digest == repository_blobs.c.digest)
        )
        .where(repositories.c.name == repository_name, repository_blobs.c.digest == digest)
    )
    return (await connection.execute(query)).scalar_one_or_none()
