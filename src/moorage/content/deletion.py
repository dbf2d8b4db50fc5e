"""Deleting tags, manifests and repositories, with a window in which they can be restored.

A deleted tag moves to `deleted_tags`; a manifest deleted by digest is marked `deleted_at`
and its tags move with it; a deleted repository keeps its row under a tombstone name, out of
its namespace, so it is invisible to pulls and counts against no quota. When the window
(`deleted_retention`) ends, `purge_expired` removes them for good; with a window of zero,
deletion is immediate.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
from moorage.content.repositories import find_repository_id
from moorage.errors import (
    ConflictError,
    DeniedError,
    FieldInvalidError,
    ManifestUnknownError,
    NameUnknownError,
)
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import deleted_tags, manifests, namespaces, repositories, tags
from moorage.oci.digest import Digest

log = get_logger(__name__)

TOMBSTONE_PREFIX = "~deleted/"


@dataclass(frozen=True, slots=True)
class DeletedItem:
    """Something restorable: a tag (with the digest it pointed at) or a whole repository."""

    id: str
    kind: str
    repository: str
    tag: str | None
    digest: str | None
    deleted_at: datetime
    deleted_by: str | None
    restorable_until: datetime


class DeletionService:
    """Deletes and restores tags, manifests and repositories."""

    def __init__(self, database: Database, quotas: QuotaService, retention: timedelta) -> None:
        self._database = database
        self._quotas = quotas
        self._retention = retention

    @property
    def keeps_deleted(self) -> bool:
        """Whether deleted things stay restorable for a while."""
        return self._retention > timedelta(0)

    async def delete_tag(self, repository: str, tag: str, deleted_by: str | None) -> None:
        """Delete one tag; its manifest stays for other tags, indexes and the restore window."""
        async with self._database.writing() as connection:
            repository_id = await find_repository_id(connection, repository)
            # Locked, so that of concurrent deletes of one tag only the first finds it.
            row = (
                await connection.execute(
                    select(tags.c.manifest_id)
                    .where(tags.c.repository_id == repository_id, tags.c.name == tag)
                    .with_for_update()
                )
            ).first()
            if repository_id is None or row is None:
                raise ManifestUnknownError(f"tag {tag} is unknown to repository {repository}")
            await self._move_tags_out(connection, repository_id, deleted_by, tags.c.name == tag)
        log.info("tag deleted", repository=repository, tag=tag, deleted_by=deleted_by)

    async def delete_manifest(
        self, repository: str, digest: Digest, deleted_by: str | None
    ) -> None:
        """Delete a manifest and every tag that points at it."""
        async with self._database.writing() as connection:
            repository_id = await find_repository_id(connection, repository)
            manifest_id = (
                await connection.execute(
                    select(manifests.c.id)
                    .where(
                        manifests.c.repository_id == repository_id,
                        manifests.c.digest == str(digest),
                        manifests.c.deleted_at.is_(None),
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if repository_id is None or manifest_id is None:
                raise ManifestUnknownError(f"manifest {digest} is unknown to {repository}")
            await self._move_tags_out(
                connection, repository_id, deleted_by, tags.c.manifest_id == manifest_id
            )
            if self.keeps_deleted:
                await connection.execute(
                    update(manifests)
                    .where(manifests.c.id == manifest_id)
                    .values(deleted_at=utc_now())
                )
            else:
                await connection.execute(delete(manifests).where(manifests.c.id == manifest_id))
        log.info("manifest deleted", repository=repository, digest=str(digest))

    async def delete_repository(
        self, repository: str, confirmation: str | None, deleted_by: str | None
    ) -> None:
        """Delete a repository with all its tags; `confirmation` must repeat its name."""
        if confirmation != repository:
            raise FieldInvalidError(
                "confirm",
                f"deleting {repository} removes every tag in it; to confirm, repeat its name"
                f" exactly: confirm={repository}",
            )
        async with self._database.writing() as connection:
            repository_id = await _live_repository_id(connection, repository)
            if not self.keeps_deleted:
                await connection.execute(
                    delete(repositories).where(repositories.c.id == repository_id)
                )
            else:
                await connection.execute(
                    update(repositories)
                    .where(repositories.c.id == repository_id)
                    .values(
                        name=f"{TOMBSTONE_PREFIX}{repository_id}",
                        deleted_name=repository,
                        deleted_namespace_id=repositories.c.namespace_id,
                        namespace_id=None,
                        deleted_at=utc_now(),
                        deleted_by=deleted_by,
                    )
                )
        log.info("repository deleted", repository=repository, deleted_by=deleted_by)

    async def list_deleted(self, namespace: str) -> list[DeletedItem]:
        """What can still be restored in a namespace, newest first."""
        cutoff = utc_now() - self._retention
        namespace_id = select(namespaces.c.id).where(namespaces.c.name == namespace)
        deleted_repositories = select(
            repositories.c.id,
            repositories.c.deleted_name,
            repositories.c.deleted_at,
            repositories.c.deleted_by,
        ).where(
            repositories.c.deleted_namespace_id == namespace_id.scalar_subquery(),
            repositories.c.deleted_at > cutoff,
        )
        deleted_tag_rows = (
            select(
                deleted_tags.c.id,
                deleted_tags.c.name,
                deleted_tags.c.deleted_at,
                deleted_tags.c.deleted_by,
                repositories.c.name.label("repository"),
                manifests.c.digest,
            )
            .join(repositories, repositories.c.id == deleted_tags.c.repository_id)
            .join(manifests, manifests.c.id == deleted_tags.c.manifest_id)
            .where(
                repositories.c.namespace_id == namespace_id.scalar_subquery(),
                deleted_tags.c.deleted_at > cutoff,
            )
        )
        async with self._database.reading() as connection:
            items = [
                DeletedItem(
                    f"repository-{row.id}",
                    "repository",
                    row.deleted_name,
                    None,
                    None,
                    row.deleted_at,
                    row.deleted_by,
                    row.deleted_at + self._retention,
                )
                for row in (await connection.execute(deleted_repositories)).all()
            ]
            items += [
                DeletedItem(
                    f"tag-{row.id}",
                    "tag",
                    row.repository,
                    row.name,
                    row.digest,
                    row.deleted_at,
                    row.deleted_by,
                    row.deleted_at + self._retention,
                )
                for row in (await connection.execute(deleted_tag_rows)).all()
            ]
        return sorted(items, key=lambda item: item.deleted_at, reverse=True)

    async def restore(self, namespace: str, item_id: str) -> DeletedItem:
        """Bring back a deleted tag or repository with its exact digests."""
        found = [item for item in await self.list_deleted(namespace) if item.id == item_id]
        if not found:
            raise NameUnknownError(f"nothing restorable with id {item_id!r} in {namespace}")
        item = found[0]
        kind, _, row_id = item_id.partition("-")
        async with self._database.writing() as connection:
            if kind == "repository":
                await self._restore_repository(connection, int(row_id), item.repository)
            else:
                await self._restore_tag(connection, int(row_id), item)
        log.info("restored", namespace=namespace, item=item_id)
        return item

    async def restore_reference(self, reference: str) -> DeletedItem:
        """Restore `NAMESPACE/REPO` or `NAMESPACE/REPO:TAG`, the newest deletion of it."""
        repository, _, tag = reference.partition(":")
        namespace = repository.split("/", 1)[0]
        for item in await self.list_deleted(namespace):
            if item.repository == repository and item.tag == (tag or None):
                return await self.restore(namespace, item.id)
        raise NameUnknownError(f"nothing deleted is restorable as {reference}")

    def purge_cutoff(self) -> datetime:
        """Whatever was deleted at or before this moment is past its restore window."""
        return utc_now() - self._retention

    async def purge_expired(self) -> int:
        """Remove for good what has passed its restore window; how many rows went."""
        async with self._database.writing() as connection:
            removed = 0
            for table, condition in _expired(self.purge_cutoff()):
                removed += (await connection.execute(delete(table).where(condition))).rowcount or 0
        return removed

    async def count_expired(self) -> int:
        """How many rows `purge_expired` would remove now."""
        async with self._database.reading() as connection:
            counted = 0
            for table, condition in _expired(self.purge_cutoff()):
                query = select(func.count()).select_from(table).where(condition)
                counted += (await connection.execute(query)).scalar_one()
        return counted

    async def _move_tags_out(
        self,
        connection: AsyncConnection,
        repository_id: int,
        deleted_by: str | None,
        condition: object,
    ) -> None:
        chosen = and_(tags.c.repository_id == repository_id, condition)  # type: ignore[arg-type]
        if self.keeps_deleted:
            moved = (
                await connection.execute(select(tags.c.name, tags.c.manifest_id).where(chosen))
            ).all()
            if moved:
                now = utc_now()
                await connection.execute(
                    deleted_tags.insert(),
                    [
                        {
                            "repository_id": repository_id,
                            "name": row.name,
                            "manifest_id": row.manifest_id,
                            "deleted_at": now,
                            "deleted_by": deleted_by,
                        }
                        for row in moved
                    ],
                )
        await connection.execute(delete(tags).where(chosen))

    async def _restore_repository(
        self, connection: AsyncConnection, repository_id: int, name: str
    ) -> None:
        if await find_repository_id(connection, name) is not None:
            raise ConflictError(
                f"repository {name} cannot be restored: the name has since been reused;"
                " delete the new one first"
            )
        namespace_id = (
            await connection.execute(
                select(namespaces.c.id).where(namespaces.c.name == name.split("/", 1)[0])
            )
        ).scalar_one_or_none()
        await _within_quota(
            self._quotas.check_new_repository(connection, namespace_id, name),
            f"repository {name}",
        )
        await connection.execute(
            update(repositories)
            .where(repositories.c.id == repository_id)
            .values(
                name=name,
                namespace_id=namespace_id,
                deleted_name=None,
                deleted_namespace_id=None,
                deleted_at=None,
                deleted_by=None,
            )
        )

    async def _restore_tag(
        self, connection: AsyncConnection, deleted_id: int, item: DeletedItem
    ) -> None:
        row = (
            await connection.execute(select(deleted_tags).where(deleted_tags.c.id == deleted_id))
        ).one()
        taken = await connection.execute(
            select(tags.c.name).where(
                tags.c.repository_id == row.repository_id, tags.c.name == row.name
            )
        )
        if taken.first() is not None:
            raise ConflictError(
                f"tag {item.repository}:{row.name} cannot be restored: the tag name has since"
                " been reused"
            )
        await _within_quota(
            self._quotas.check_new_tag(connection, row.repository_id, item.repository),
            f"tag {item.repository}:{row.name}",
        )
        await connection.execute(
            update(manifests).where(manifests.c.id == row.manifest_id).values(deleted_at=None)
        )
        await connection.execute(
            tags.insert().values(
                repository_id=row.repository_id,
                name=row.name,
                manifest_id=row.manifest_id,
                updated_at=utc_now(),
            )
        )
        await connection.execute(delete(deleted_tags).where(deleted_tags.c.id == deleted_id))


def _expired(cutoff: datetime) -> list[tuple[Table, ColumnElement[bool]]]:
    """What is past its restore window at `cutoff`, table by table, in the order it goes."""
    restorable_tag = (
        select(deleted_tags.c.id)
        .where(deleted_tags.c.manifest_id == manifests.c.id, deleted_tags.c.deleted_at > cutoff)
        .exists()
    )
    return [
        (deleted_tags, deleted_tags.c.deleted_at <= cutoff),
        (manifests, and_(manifests.c.deleted_at <= cutoff, ~restorable_tag)),
        (repositories, repositories.c.deleted_at <= cutoff),
    ]


async def _within_quota(check: Awaitable[None], restored: str) -> None:
    """Run a quota check; a restore it refuses conflicts with what is stored (409)."""
    try:
        await check
    except DeniedError as exc:
        raise ConflictError(f"{restored} cannot be restored: {exc.message}") from None


async def _live_repository_id(connection: AsyncConnection, repository: str) -> int:
    repository_id = await find_repository_id(connection, repository)
    if repository_id is None:
        raise NameUnknownError(f"repository {repository} is unknown")
    return repository_id
