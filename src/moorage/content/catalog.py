"""Repositories and tags as people browse them: per namespace, with sizes and dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from moorage.accounts.quotas import QuotaService
from moorage.content.repositories import ensure_repository, find_repository_id
from moorage.errors import ConflictError, NameUnknownError
from moorage.metadata.database import Database
from moorage.metadata.tables import manifests, namespaces, repositories, tags
from moorage.oci.reference import validate_repository_name


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    """A repository in a listing."""

    name: str
    tag_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TagSummary:
    """A tag in a listing: what it points at, and when it was pushed."""

    name: str
    digest: str
    media_type: str
    manifest_size: int
    pushed_at: datetime


class RepositoryCatalog:
    """Lists a namespace's repositories and a repository's tags; creates empty repositories."""

    def __init__(self, database: Database, quotas: QuotaService) -> None:
        self._database = database
        self._quotas = quotas

    async def list_repositories(
        self, namespace: str, limit: int, last: str | None, search: str | None = None
    ) -> list[RepositorySummary]:
        """Repositories of `namespace` by name after `last`, optionally containing `search`."""
        tag_count = (
            select(func.count())
            .where(tags.c.repository_id == repositories.c.id)
            .scalar_subquery()
            .label("tag_count")
        )
        query = (
            select(repositories.c.name, repositories.c.created_at, tag_count)
            .join(namespaces, namespaces.c.id == repositories.c.namespace_id)
            .where(namespaces.c.name == namespace)
            .order_by(repositories.c.name)
            .limit(limit)
        )
        if last:
            query = query.where(repositories.c.name > last)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(repositories.c.name.like(f"%{escaped}%", escape="\\"))
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).all()
        return [RepositorySummary(row.name, row.tag_count, row.created_at) for row in rows]

    async def list_tags(self, repository: str, limit: int, last: str | None) -> list[TagSummary]:
        """Tags of `repository` by name after `last`, with their manifests."""
        query = (
            select(
                tags.c.name,
                tags.c.updated_at,
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
            )
            .join(manifests, manifests.c.id == tags.c.manifest_id)
            .join(repositories, repositories.c.id == tags.c.repository_id)
            .where(repositories.c.name == repository)
            .order_by(tags.c.name)
            .limit(limit)
        )
        if last:
            query = query.where(tags.c.name > last)
        async with self._database.reading() as connection:
            if await find_repository_id(connection, repository) is None:
                raise NameUnknownError(f"repository {repository} is unknown")
            rows = (await connection.execute(query)).all()
        return [
            TagSummary(row.name, row.digest, row.media_type, row.size, row.updated_at)
            for row in rows
        ]

    async def create(self, repository: str) -> RepositorySummary:
        """An empty repository, made before its first push."""
        validate_repository_name(repository)
        async with self._database.writing() as connection:
            if await find_repository_id(connection, repository) is not None:
                raise ConflictError(f"repository {repository} exists already")
            repository_id = await ensure_repository(
                self._database, connection, repository, self._quotas
            )
            query = select(repositories.c.created_at).where(repositories.c.id == repository_id)
            created_at = (await connection.execute(query)).scalar_one()
        return RepositorySummary(repository, 0, created_at)
