"""Accounts: creation, sign-in, activation of the registry, password resets."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from moorage.accounts.passwords import hash_password, verify_password
from moorage.accounts.rules import validate_password, validate_user_name
from moorage.clock import utc_now
from moorage.errors import ConflictError, ResourceUnknownError, UnauthorizedError
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import users

log = get_logger(__name__)

# Passwords verified recently, so HTTP Basic on every request does not run argon2 again.
VERIFIED_CACHE_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class User:
    """An account, without its password hashes."""

    id: int
    name: str
    is_admin: bool
    is_activated: bool
    registry_password_generation: int


def _user(row: Row[tuple[object, ...]]) -> User:
    return User(
        id=row.id,
        name=row.name,
        is_admin=row.is_admin,
        is_activated=row.registry_password_hash is not None,
        registry_password_generation=row.registry_password_generation,
    )


class AccountService:
    """Creates accounts, checks their passwords, activates and resets the registry password."""

    def __init__(self, database: Database) -> None:
        self._database = database
        # (user name, sha256 of stored hash and password) -> the stored hash it matched.
        self._verified: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def create(self, name: str, password: str, is_admin: bool = False) -> User:
        """A new account; its registry is not activated yet."""
        validate_user_name(name)
        validate_password(password)
        password_hash = await hash_password(password)
        async with self._database.writing() as connection:
            existing = await connection.execute(select(users.c.id).where(users.c.name == name))
            if existing.first() is not None:
                raise ConflictError(f"an account named {name!r} exists already")
            try:
                await connection.execute(
                    users.insert().values(
                        name=name,
                        password_hash=password_hash,
                        registry_password_hash=None,
                        registry_password_generation=0,
                        is_admin=is_admin,
                        created_at=utc_now(),
                    )
                )
            except IntegrityError:
                # Two creations can pass the check above at once; the unique index decides.
                raise ConflictError(f"an account named {name!r} exists already") from None
        log.info("account created", account=name, admin=is_admin)
        return await self.get(name)

    async def ensure_first_admin(self, name: str, password: str) -> bool:
        """Create the admin account when no account exists yet; whether it did."""
        async with self._database.reading() as connection:
            count = (await connection.execute(select(func.count()).select_from(users))).scalar_one()
        if count:
            return False
        try:
            await self.create(name, password, is_admin=True)
        except ConflictError:
            return False  # another replica created it first
        return True

    async def get(self, name: str) -> User:
        """The account called `name`."""
        row = await self._row(name)
        if row is None:
            raise ResourceUnknownError(f"no account named {name!r}")
        return _user(row)

    async def list(self) -> list[User]:
        """Every account, by name."""
        async with self._database.reading() as connection:
            rows = (await connection.execute(select(users).order_by(users.c.name))).all()
        return [_user(row) for row in rows]

    async def sign_in(self, name: str, password: str) -> User:
        """The account, if `password` is its account password (console and management API)."""
        row = await self._row(name)
        if row is None or not await self._matches(name, password, row.password_hash):
            raise UnauthorizedError("invalid account name or password")
        return _user(row)

    async def registry_login(self, name: str, password: str) -> User:
        """The account, if `password` is its registry password (`docker login`)."""
        row = await self._row(name)
        if row is None:
            raise UnauthorizedError("invalid username or password")
        if row.registry_password_hash is None:
            # Say how to activate only to someone who knows the account password.
            if await verify_password(row.password_hash, password):
                raise UnauthorizedError(
                    f"the registry is not activated for account {name}: set a registry password"
                    f" in the console, or run `moorage user activate {name}`"
                )
            raise UnauthorizedError("invalid username or password")
        if not await self._matches(name, password, row.registry_password_hash):
            raise UnauthorizedError("invalid username or password")
        return _user(row)

    async def set_registry_password(self, name: str, password: str) -> User:
        """Activate the registry, or reset its password; every older refresh token stops working."""
        validate_password(password)
        password_hash = await hash_password(password)
        async with self._database.writing() as connection:
            result = await connection.execute(
                update(users)
                .where(users.c.name == name)
                .values(
                    registry_password_hash=password_hash,
                    registry_password_generation=users.c.registry_password_generation + 1,
                )
            )
        if result.rowcount == 0:
            raise ResourceUnknownError(f"no account named {name!r}")
        log.info("registry password set", account=name)
        return await self.get(name)

    async def set_account_password(self, name: str, password: str) -> None:
        """Replace the account password (console and management API)."""
        validate_password(password)
        password_hash = await hash_password(password)
        async with self._database.writing() as connection:
            result = await connection.execute(
                update(users).where(users.c.name == name).values(password_hash=password_hash)
            )
        if result.rowcount == 0:
            raise ResourceUnknownError(f"no account named {name!r}")
        log.info("account password set", account=name)

    async def _row(self, name: str) -> Row[tuple[object, ...]] | None:
        async with self._database.reading() as connection:
            return (await connection.execute(select(users).where(users.c.name == name))).first()

    async def _matches(self, name: str, password: str, password_hash: str) -> bool:
        """Whether `password` matches; argon2 runs once per password and stored hash."""
        key = (name, hashlib.sha256(f"{password_hash}:{password}".encode()).hexdigest())
        if self._verified.get(key) == password_hash:
            return True
        if not await verify_password(password_hash, password):
            return False
        # A changed password changes the stored hash, so a remembered match stops counting.
        self._verified[key] = password_hash
        while len(self._verified) > VERIFIED_CACHE_ENTRIES:
            self._verified.popitem(last=False)
        return True
