"""Quotas: limits per account, enforced inside the transaction that would exceed them.

Usage is counted live from the repositories, tags and namespaces that exist, in the same
write transaction that adds one, with the owning row locked (`FOR NO KEY UPDATE` on
PostgreSQL; SQLite serializes writers already). Two pushes can therefore never both take the
last slot, and a delete gives its slot back the moment it commits.

Why `FOR NO KEY UPDATE` and not `FOR UPDATE`: a push inserts its manifest before it checks
the tag quota, and that row's foreign key takes a `FOR KEY SHARE` lock on the repository.
Two pushes that both then asked for `FOR UPDATE` would each wait for the other's key share
to end: a deadlock. `FOR NO KEY UPDATE` conflicts with itself, so the checks still take
turns, but not with key shares.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.clock import utc_now
from moorage.errors import (
    ConflictError,
    DeniedError,
    FieldInvalidError,
    ResourceUnknownError,
)
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import (
    namespaces,
    quota_changes,
    quota_overrides,
    quota_requests,
    repositories,
    tags,
    users,
)
from moorage.settings import QuotaSettings

log = get_logger(__name__)

LIMIT_MAX = 1_000_000
# The largest id any metadata backend stores; a larger number names no request.
REQUEST_ID_MAX = 2**63 - 1
HOW_TO_ASK = "request more in the console"
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


@dataclass(frozen=True, slots=True)
class Limits:
    """An account's limits."""

    repositories: int
    tags_per_repository: int
    namespaces: int

    def describe(self) -> str:
        """`repositories=500, tags_per_repository=100, namespaces=10`."""
        return ", ".join(f"{key}={value}" for key, value in asdict(self).items())


LIMIT_NAMES = tuple(field.name for field in fields(Limits))


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of its limits an account uses; tags are counted per repository."""

    account: str
    limits: Limits
    repositories: int
    namespaces: int
    tags: dict[str, int]


@dataclass(frozen=True, slots=True)
class QuotaRequest:
    """A request for higher limits and, once decided, the answer."""

    id: int
    account: str
    wanted: dict[str, int | None]
    reason: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None


def validate_limits(wanted: dict[str, int | None]) -> dict[str, int | None]:
    """Limits an operator or user may ask for: whole numbers from 0 to a million."""
    for name, value in wanted.items():
        if name not in LIMIT_NAMES:
            raise FieldInvalidError(name, f"unknown limit {name!r}; limits are {LIMIT_NAMES}")
        if value is not None and (isinstance(value, bool) or not 0 <= value <= LIMIT_MAX):
            raise FieldInvalidError(name, f"{name} must be a whole number from 0 to {LIMIT_MAX}")
    return wanted


class QuotaService:
    """Limits, their enforcement, usage, overrides and requests for more."""

    def __init__(self, database: Database, defaults: QuotaSettings) -> None:
        self._database = database
        self._defaults = Limits(
            repositories=defaults.repositories_per_user,
            tags_per_repository=defaults.tags_per_repository,
            namespaces=defaults.namespaces_per_user,
        )

    async def limits_of(self, connection: AsyncConnection, user_id: int) -> Limits:
        """The account's limits: its overrides over the deployment's defaults."""
        query = select(quota_overrides).where(quota_overrides.c.user_id == user_id)
        row = (await connection.execute(query)).first()
        if row is None:
            return self._defaults
        return Limits(
            **{
                name: getattr(row, name) if getattr(row, name) is not None else default
                for name, default in asdict(self._defaults).items()
            }
        )

    async def check_new_repository(
        self, connection: AsyncConnection, namespace_id: int | None, repository: str
    ) -> None:
        """Refuse a repository that would put its owner over the limit; locks the owner."""
        owner = await _lock_namespace_owner(connection, namespace_id)
        if owner is None:
            return
        owner_id, owner_name = owner
        limits = await self.limits_of(connection, owner_id)
        used = await _count_repositories(connection, owner_id)
        if used >= limits.repositories:
            raise DeniedError(
                f"repository quota exceeded: {limits.repositories} repositories per user for"
                f" {owner_name}, so {repository} cannot be created; {HOW_TO_ASK}"
            )

    async def refuse_if_repository_would_exceed(self, repository: str) -> None:
        """Before any byte of a push: refuse now if its new repository could not be created."""
        async with self._database.reading() as connection:
            exists = await connection.execute(
                select(repositories.c.id).where(repositories.c.name == repository)
            )
            if exists.first() is not None:
                return
            namespace_id = (
                await connection.execute(
                    select(namespaces.c.id).where(namespaces.c.name == repository.split("/", 1)[0])
                )
            ).scalar_one_or_none()
            await self.check_new_repository(connection, namespace_id, repository)

    async def check_new_tag(
        self, connection: AsyncConnection, repository_id: int, repository: str
    ) -> None:
        """Refuse a new tag over the repository's limit; locks the repository row."""
        locked = select(repositories.c.namespace_id).where(repositories.c.id == repository_id)
        namespace_id = (
            await connection.execute(locked.with_for_update(key_share=True))
        ).scalar_one()
        owner = await _namespace_owner(connection, namespace_id)
        if owner is None:
            return
        limits = await self.limits_of(connection, owner[0])
        count = select(func.count()).select_from(tags).where(tags.c.repository_id == repository_id)
        if (await connection.execute(count)).scalar_one() >= limits.tags_per_repository:
            raise DeniedError(
                f"tag quota exceeded: {limits.tags_per_repository} tags per repository"
                f" {repository}; {HOW_TO_ASK}"
            )

    async def check_new_namespace(self, connection: AsyncConnection, owner_id: int) -> None:
        """Refuse a namespace over the account's limit; locks the account row."""
        locked = select(users.c.name).where(users.c.id == owner_id)
        owner_name = (await connection.execute(locked.with_for_update(key_share=True))).scalar_one()
        limits = await self.limits_of(connection, owner_id)
        count = (
            select(func.count()).select_from(namespaces).where(namespaces.c.owner_id == owner_id)
        )
        if (await connection.execute(count)).scalar_one() >= limits.namespaces:
            raise DeniedError(
                f"namespace quota exceeded: {limits.namespaces} namespaces per user for"
                f" {owner_name}; {HOW_TO_ASK}"
            )

    async def usage(self, account: str) -> Usage:
        """What the account uses of each limit."""
        async with self._database.reading() as connection:
            user_id = await _user_id(connection, account)
            limits = await self.limits_of(connection, user_id)
            namespace_count = select(func.count()).where(namespaces.c.owner_id == user_id)
            tag_counts = (
                select(repositories.c.name, func.count(tags.c.name))
                .join(namespaces, namespaces.c.id == repositories.c.namespace_id)
                .outerjoin(tags, tags.c.repository_id == repositories.c.id)
                .where(namespaces.c.owner_id == user_id)
                .group_by(repositories.c.name)
                .order_by(repositories.c.name)
            )
            per_repository = {
                row[0]: row[1] for row in (await connection.execute(tag_counts)).all()
            }
            return Usage(
                account=account,
                limits=limits,
                repositories=len(per_repository),
                namespaces=(await connection.execute(namespace_count)).scalar_one(),
                tags=per_repository,
            )

    async def set_limits(
        self,
        account: str,
        wanted: dict[str, int | None],
        changed_by: str,
        request_id: int | None = None,
    ) -> Limits:
        """Override some of the account's limits (None: back to the default), recorded."""
        validate_limits(wanted)
        if not wanted:
            raise FieldInvalidError("limits", f"give at least one of {', '.join(LIMIT_NAMES)}")
        async with self._database.writing() as connection:
            user_id = await _user_id(connection, account)
            return await self._set_limits(connection, user_id, wanted, changed_by, request_id)

    async def history(self, account: str) -> list[dict[str, object]]:
        """Every change of the account's limits, oldest first."""
        async with self._database.reading() as connection:
            user_id = await _user_id(connection, account)
            query = (
                select(quota_changes)
                .where(quota_changes.c.user_id == user_id)
                .order_by(quota_changes.c.id)
            )
            rows = (await connection.execute(query)).all()
        return [
            {
                "changed_by": row.changed_by,
                "changed_at": row.changed_at,
                "old": json.loads(row.old_limits),
                "new": json.loads(row.new_limits),
                "request_id": row.request_id,
            }
            for row in rows
        ]

    async def request_more(
        self, account: str, wanted: dict[str, int | None], reason: str
    ) -> QuotaRequest:
        """Ask the administrators for higher limits."""
        validate_limits(wanted)
        if all(value is None for value in wanted.values()):
            raise FieldInvalidError("repositories", "ask for at least one higher limit")
        if not reason.strip() or len(reason) > 2000:
            raise FieldInvalidError("reason", "say why, in 1 to 2000 characters")
        async with self._database.writing() as connection:
            user_id = await _user_id(connection, account)
            result = await connection.execute(
                quota_requests.insert().values(
                    user_id=user_id,
                    reason=reason.strip(),
                    status=PENDING,
                    created_at=utc_now(),
                    **{name: wanted.get(name) for name in LIMIT_NAMES},
                )
            )
            assert result.inserted_primary_key is not None
            request_id = int(result.inserted_primary_key[0])
        log.info("quota requested", account=account, quota_request=request_id)
        return await self.get_request(request_id)

    async def get_request(self, request_id: int) -> QuotaRequest:
        """One request."""
        _check_request_id(request_id)
        found = await self._requests(quota_requests.c.id == request_id)
        if not found:
            raise ResourceUnknownError(f"no quota request {request_id}")
        return found[0]

    async def list_requests(
        self, account: str | None = None, status: str | None = None
    ) -> list[QuotaRequest]:
        """Requests of one account (or all), optionally of one status, newest first."""
        conditions = []
        if account is not None:
            conditions.append(users.c.name == account)
        if status is not None:
            if status not in (PENDING, APPROVED, REJECTED):
                raise FieldInvalidError("status", "status is pending, approved or rejected")
            conditions.append(quota_requests.c.status == status)
        return await self._requests(*conditions)

    async def decide(
        self,
        request_id: int,
        admin: str,
        approve: bool,
        comment: str | None,
        granted: dict[str, int | None] | None = None,
    ) -> QuotaRequest:
        """Approve (applying the request's numbers, or `granted`) or reject a pending request."""
        _check_request_id(request_id)
        if granted:
            validate_limits(granted)
        async with self._database.writing() as connection:
            query = select(quota_requests).where(quota_requests.c.id == request_id)
            row = (await connection.execute(query.with_for_update())).first()
            if row is None:
                raise ResourceUnknownError(f"no quota request {request_id}")
            if row.status != PENDING:
                raise ConflictError(f"quota request {request_id} was {row.status} already")
            if approve:
                wanted = {name: getattr(row, name) for name in LIMIT_NAMES}
                wanted.update({k: v for k, v in (granted or {}).items() if v is not None})
                changes = {name: value for name, value in wanted.items() if value is not None}
                await self._set_limits(connection, row.user_id, changes, admin, request_id)
            await connection.execute(
                update(quota_requests)
                .where(quota_requests.c.id == request_id)
                .values(
                    status=APPROVED if approve else REJECTED,
                    decided_at=utc_now(),
                    decided_by=admin,
                    comment=comment,
                )
            )
        log.info("quota request decided", quota_request=request_id, approved=approve, admin=admin)
        return await self.get_request(request_id)

    async def recount(self) -> list[str]:
        """Problems found by counting usage anew from names rather than from links.

        Usage is never stored, so it cannot drift; this recount by repository name prefix
        catches repositories whose namespace link is wrong, and accounts over a limit (an
        operator lowered it).
        """
        problems = []
        # A deleted repository waiting out its restore window is in no namespace on purpose.
        live = (
            select(repositories.c.name, namespaces.c.name.label("namespace"))
            .outerjoin(namespaces, namespaces.c.id == repositories.c.namespace_id)
            .where(repositories.c.deleted_at.is_(None))
        )
        async with self._database.reading() as connection:
            for row in (await connection.execute(live)).all():
                if row.namespace != row.name.split("/", 1)[0]:
                    problems.append(
                        f"repository {row.name} is counted in namespace {row.namespace}"
                        if row.namespace
                        else f"repository {row.name} is counted in no namespace"
                    )
            accounts = (await connection.execute(select(users.c.name))).scalars().all()
        for account in accounts:
            usage = await self.usage(account)
            if usage.repositories > usage.limits.repositories:
                problems.append(
                    f"{account} has {usage.repositories} repositories;"
                    f" the limit is {usage.limits.repositories}"
                )
            if usage.namespaces > usage.limits.namespaces:
                problems.append(
                    f"{account} has {usage.namespaces} namespaces;"
                    f" the limit is {usage.limits.namespaces}"
                )
            for repository, count in usage.tags.items():
                if count > usage.limits.tags_per_repository:
                    problems.append(
                        f"{repository} has {count} tags;"
                        f" the limit is {usage.limits.tags_per_repository}"
                    )
        return problems

    async def _set_limits(
        self,
        connection: AsyncConnection,
        user_id: int,
        wanted: dict[str, int | None],
        changed_by: str,
        request_id: int | None,
    ) -> Limits:
        old = await self.limits_of(connection, user_id)
        existing = await connection.execute(
            select(quota_overrides).where(quota_overrides.c.user_id == user_id).with_for_update()
        )
        values: dict[str, int | None] = dict.fromkeys(LIMIT_NAMES)
        row = existing.first()
        if row is not None:
            values.update({name: getattr(row, name) for name in LIMIT_NAMES})
        values.update(wanted)
        if row is None:
            await connection.execute(
                quota_overrides.insert().values(user_id=user_id, updated_at=utc_now(), **values)
            )
        else:
            await connection.execute(
                update(quota_overrides)
                .where(quota_overrides.c.user_id == user_id)
                .values(updated_at=utc_now(), **values)
            )
        new = await self.limits_of(connection, user_id)
        await connection.execute(
            quota_changes.insert().values(
                user_id=user_id,
                changed_by=changed_by,
                changed_at=utc_now(),
                old_limits=json.dumps(asdict(old)),
                new_limits=json.dumps(asdict(new)),
                request_id=request_id,
            )
        )
        log.info("quota changed", user_id=user_id, limits=new.describe(), changed_by=changed_by)
        return new

    async def _requests(self, *conditions: object) -> list[QuotaRequest]:
        query = (
            select(quota_requests, users.c.name.label("account"))
            .join(users, users.c.id == quota_requests.c.user_id)
            .where(*conditions)  # type: ignore[arg-type]
            .order_by(quota_requests.c.id.desc())
        )
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).all()
        return [
            QuotaRequest(
                id=row.id,
                account=row.account,
                wanted={name: getattr(row, name) for name in LIMIT_NAMES},
                reason=row.reason,
                status=row.status,
                created_at=row.created_at,
                decided_at=row.decided_at,
                decided_by=row.decided_by,
                comment=row.comment,
            )
            for row in rows
        ]


def _check_request_id(request_id: int) -> None:
    if not 0 < request_id <= REQUEST_ID_MAX:
        raise ResourceUnknownError(f"no quota request {request_id}")


async def _user_id(connection: AsyncConnection, account: str) -> int:
    user_id = (
        await connection.execute(select(users.c.id).where(users.c.name == account))
    ).scalar_one_or_none()
    if user_id is None:
        raise ResourceUnknownError(f"no account named {account!r}")
    return int(user_id)


async def _namespace_owner(
    connection: AsyncConnection, namespace_id: int | None
) -> tuple[int, str] | None:
    if namespace_id is None:
        return None
    query = (
        select(users.c.id, users.c.name)
        .join(namespaces, namespaces.c.owner_id == users.c.id)
        .where(namespaces.c.id == namespace_id)
    )
    row = (await connection.execute(query)).first()
    return None if row is None else (row.id, row.name)


async def _lock_namespace_owner(
    connection: AsyncConnection, namespace_id: int | None
) -> tuple[int, str] | None:
    owner = await _namespace_owner(connection, namespace_id)
    if owner is not None:
        locked = select(users.c.id).where(users.c.id == owner[0])
        await connection.execute(locked.with_for_update(key_share=True))
    return owner


async def _count_repositories(connection: AsyncConnection, owner_id: int) -> int:
    query = (
        select(func.count())
        .select_from(repositories)
        .join(namespaces, namespaces.c.id == repositories.c.namespace_id)
        .where(namespaces.c.owner_id == owner_id)
    )
    return int((await connection.execute(query)).scalar_one())
