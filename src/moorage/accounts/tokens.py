"""Access tokens: named, scoped, expiring secrets usable as a `docker login` password."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.accounts.rules import (
    parse_token_actions,
    validate_namespace_name,
    validate_token_name,
)
from moorage.clock import as_utc, utc_now
from moorage.errors import ConflictError, FieldInvalidError, ResourceUnknownError
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import access_tokens, namespaces, users

log = get_logger(__name__)

TOKEN_PREFIX = "mrt_"


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An access token as listed: never its secret."""

    id: str
    name: str
    actions: frozenset[str]
    namespace: str | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenLogin:
    """Who an access token acts for, and what it limits them to."""

    token_id: str
    user_name: str
    actions: frozenset[str]
    namespace: str | None


def looks_like_access_token(secret: str) -> bool:
    """Whether a password has the shape of an access token rather than a registry password."""
    return secret.startswith(TOKEN_PREFIX) and secret.count("_") >= 2


def _secret_hash(secret: str) -> str:
    # Token secrets are 256 random bits: a fast hash is as safe as argon2 here.
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessTokenService:
    """Creates, lists, revokes and checks access tokens."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(
        self,
        owner: str,
        name: str,
        actions: str,
        namespace: str | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[AccessToken, str]:
        """A new token and its secret, which is shown this once and never stored."""
        validate_token_name(name)
        allowed = parse_token_actions(actions)
        if expires_at is not None and expires_at <= utc_now():
            raise FieldInvalidError("expires_at", "the expiry must be in the future")
        token_id = secrets.token_hex(8)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        async with self._database.writing() as connection:
            owner_id = await _user_id(connection, owner)
            if namespace is not None:
                validate_namespace_name(namespace, field="namespace")
                owned = await connection.execute(
                    select(namespaces.c.id).where(
                        namespaces.c.name == namespace, namespaces.c.owner_id == owner_id
                    )
                )
                if owned.first() is None:
                    raise FieldInvalidError("namespace", f"you have no namespace {namespace!r}")
            duplicate = await connection.execute(
                select(access_tokens.c.id).where(
                    access_tokens.c.user_id == owner_id, access_tokens.c.name == name
                )
            )
            if duplicate.first() is not None:
                raise ConflictError(f"you have a token named {name!r} already")
            try:
                await connection.execute(
                    access_tokens.insert().values(
                        id=token_id,
                        user_id=owner_id,
                        name=name,
                        secret_hash=_secret_hash(secret),
                        actions=",".join(sorted(allowed)),
                        namespace=namespace,
                        expires_at=expires_at,
                        created_at=utc_now(),
                    )
                )
            except IntegrityError:
                # Two creations can pass the check above at once; the unique index decides.
                raise ConflictError(f"you have a token named {name!r} already") from None
        log.info("access token created", account=owner, token_id=token_id)
        tokens = [token for token in await self.list(owner) if token.id == token_id]
        return tokens[0], secret

    async def list(self, owner: str) -> list[AccessToken]:
        """The tokens of account `owner`, newest first."""
        query = (
            select(access_tokens)
            .join(users, users.c.id == access_tokens.c.user_id)
            .where(users.c.name == owner)
            .order_by(access_tokens.c.created_at.desc())
        )
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).all()
        return [
            AccessToken(
                id=row.id,
                name=row.name,
                actions=frozenset(row.actions.split(",")),
                namespace=row.namespace,
                expires_at=row.expires_at,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
            )
            for row in rows
        ]

    async def revoke(self, owner: str, token_id: str) -> None:
        """Delete a token of `owner`; it stops working at once."""
        async with self._database.writing() as connection:
            owner_id = await _user_id(connection, owner)
            result = await connection.execute(
                delete(access_tokens).where(
                    access_tokens.c.id == token_id, access_tokens.c.user_id == owner_id
                )
            )
        if result.rowcount == 0:
            raise ResourceUnknownError(f"you have no token with id {token_id!r}")
        log.info("access token revoked", account=owner, token_id=token_id)

    async def login(self, user_name: str, secret: str) -> TokenLogin | None:
        """Who the token acts for, if `secret` is a live token of `user_name`; else None."""
        token_id = secret[len(TOKEN_PREFIX) :].split("_", 1)[0]
        row = await self._row(token_id)
        if row is None or not hmac.compare_digest(row.secret_hash, _secret_hash(secret)):
            return None
        token = _live_token(row)
        if token is None or token.user_name != user_name:
            return None
        async with self._database.writing() as connection:
            await connection.execute(
                update(access_tokens)
                .where(access_tokens.c.id == token_id)
                .values(last_used_at=utc_now())
            )
        return token

    async def find(self, token_id: str) -> TokenLogin | None:
        """The limits of a live token, or None if it was revoked or has expired."""
        row = await self._row(token_id)
        return None if row is None else _live_token(row)

    async def _row(self, token_id: str) -> Row[Any] | None:
        query = (
            select(access_tokens, users.c.name.label("user_name"))
            .join(users, users.c.id == access_tokens.c.user_id)
            .where(access_tokens.c.id == token_id)
        )
        async with self._database.reading() as connection:
            return (await connection.execute(query)).first()


def _live_token(row: Row[Any]) -> TokenLogin | None:
    if row.expires_at is not None and as_utc(row.expires_at) <= utc_now():
        return None
    return TokenLogin(row.id, row.user_name, frozenset(row.actions.split(",")), row.namespace)


async def _user_id(connection: AsyncConnection, name: str) -> int:
    result = await connection.execute(select(users.c.id).where(users.c.name == name))
    user_id: int | None = result.scalar_one_or_none()
    if user_id is None:
        raise ResourceUnknownError(f"no account named {name!r}")
    return user_id
