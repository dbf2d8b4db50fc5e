"""Leases: a named lock row in the database, held for a while and renewed by its holder.

Replicas that share one database use a lease so that a job such as garbage collection runs on
one of them at a time. A holder that dies without releasing it loses it when it expires.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import delete, select, update

from moorage.clock import utc_now
from moorage.errors import ConflictError
from moorage.metadata.database import Database
from moorage.metadata.tables import locks


class Lease:
    """One process's claim on the lock row `name`."""

    def __init__(self, database: Database, name: str, duration: timedelta) -> None:
        self._database = database
        self.name = name
        self.duration = duration
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew_at = utc_now()

    async def acquire(self) -> None:
        """Take the lease, or raise `ConflictError` naming who holds it and until when."""
        now = utc_now()
        async with self._database.writing() as connection:
            query = select(locks.c.holder, locks.c.expires_at).where(locks.c.name == self.name)
            current = (await connection.execute(query.with_for_update())).one_or_none()
            if current is not None and current.expires_at > now:
                until = current.expires_at.isoformat(timespec="seconds")
                raise ConflictError(f"{self.name} is held by {current.holder} until {until}")
            values = {"holder": self.holder, "expires_at": now + self.duration}
            if current is None:
                inserted = await connection.execute(
                    self._database.insert_ignoring_duplicates(locks)
                    .values(name=self.name, **values)
                    .returning(locks.c.name)
                )
                if inserted.first() is None:
                    raise ConflictError(f"{self.name} is held by another process that just took it")
            else:
                await connection.execute(
                    update(locks).where(locks.c.name == self.name).values(**values)
                )
        self._renew_at = now + self.duration / 3

    async def keep(self) -> None:
        """Renew the lease once a third of it has passed; `ConflictError` if it was lost."""
        now = utc_now()
        if now < self._renew_at:
            return
        async with self._database.writing() as connection:
            renewed = await connection.execute(
                update(locks)
                .where(locks.c.name == self.name, locks.c.holder == self.holder)
                .values(expires_at=now + self.duration)
            )
        if not renewed.rowcount:
            raise ConflictError(f"{self.name} expired and was taken over by another process")
        self._renew_at = now + self.duration / 3

    async def release(self) -> None:
        """Give the lease up, if this process still holds it."""
        async with self._database.writing() as connection:
            await connection.execute(
                delete(locks).where(locks.c.name == self.name, locks.c.holder == self.holder)
            )
