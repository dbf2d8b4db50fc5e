"""Namespaces: the first part of a repository name, owned by one account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from moorage.accounts.quotas import QuotaService
from moorage.accounts.rules import validate_namespace_name
from moorage.clock import utc_now
from moorage.errors import ConflictError, ResourceUnknownError
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import namespaces, repositories, users

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace, its owner and how many repositories it holds."""

    name: str
    owner: str
    repository_count: int
    created_at: datetime


class NamespaceService:
    """Creates, lists and deletes namespaces, and answers who owns one."""

    def __init__(self, database: Database, quotas: QuotaService) -> None:
        self._database = database
        self._quotas = quotas

    async def create(self, name: str, owner: str) -> Namespace:
        """A new, empty namespace owned by account `owner`."""
        validate_namespace_name(name)
        async with self._database.writing() as connection:
            owner_id = (
                await connection.execute(select(users.c.id).where(users.c.name == owner))
            ).scalar_one_or_none()
            if owner_id is None:
                raise ResourceUnknownError(f"no account named {owner!r}")
            taken = await connection.execute(
                select(namespaces.c.id).where(namespaces.c.name == name)
            )
            if taken.first() is not None:
                raise ConflictError(f"the namespace {name!r} is taken; choose another name")
            await self._quotas.check_new_namespace(connection, owner_id)
            try:
                await connection.execute(
                    namespaces.insert().values(name=name, owner_id=owner_id, created_at=utc_now())
                )
            except IntegrityError:
                # Two creations can pass the check above at once; the unique index decides.
                raise ConflictError(
                    f"the namespace {name!r} is taken; choose another name"
                ) from None
        log.info("namespace created", namespace=name, owner=owner)
        return await self.get(name, owner)

    async def get(self, name: str, owner: str) -> Namespace:
        """Namespace `name`, if `owner` owns it; unknown otherwise, whether or not it exists."""
        found = [
            namespace for namespace in await self._query(owner, name) if namespace.name == name
        ]
        if not found:
            raise ResourceUnknownError(f"you have no namespace named {name!r}")
        return found[0]

    async def list_owned(self, owner: str) -> list[Namespace]:
        """The namespaces account `owner` owns, by name."""
        owned = await self._query(owner, None)
        if not owned:
            async with self._database.reading() as connection:
                query = select(users.c.id).where(users.c.name == owner)
                if (await connection.execute(query)).first() is None:
                    raise ResourceUnknownError(f"no account named {owner!r}")
        return owned

    async def delete(self, name: str, owner: str) -> None:
        """Delete an empty namespace of `owner`."""
        await self.get(name, owner)
        async with self._database.writing() as connection:
            # Counted under the row lock, so that no push can slip a repository in meanwhile.
            locked = select(namespaces.c.id).where(namespaces.c.name == name).with_for_update()
            namespace_id = (await connection.execute(locked)).scalar_one()
            count = select(func.count()).where(repositories.c.namespace_id == namespace_id)
            held = (await connection.execute(count)).scalar_one()
            if held:
                raise ConflictError(
                    f"namespace {name} still holds {held} repositories; delete them first"
                )
            await connection.execute(namespaces.delete().where(namespaces.c.id == namespace_id))
        log.info("namespace deleted", namespace=name, owner=owner)

    async def owner_id(self, name: str) -> int | None:
        """The id of the account that owns namespace `name`, or None if nobody does."""
        async with self._database.reading() as connection:
            query = select(namespaces.c.owner_id).where(namespaces.c.name == name)
            return (await connection.execute(query)).scalar_one_or_none()

    async def _query(self, owner: str, name: str | None) -> list[Namespace]:
        repository_count = (
            select(func.count())
            .where(repositories.c.namespace_id == namespaces.c.id)
            .scalar_subquery()
        )
        query = (
            select(
                namespaces.c.name,
                users.c.name.label("owner"),
                repository_count.label("repository_count"),
                namespaces.c.created_at,
            )
            .join(users, users.c.id == namespaces.c.owner_id)
            .where(users.c.name == owner)
            .order_by(namespaces.c.name)
        )
        if name is not None:
            query = query.where(namespaces.c.name == name)
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).all()
        return [
            Namespace(row.name, row.owner, row.repository_count, row.created_at) for row in rows
        ]
