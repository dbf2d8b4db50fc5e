"""Failed-login limits per account and per client address, counted in the shared database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from moorage.clock import utc_now
from moorage.errors import TooManyRequestsError
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import login_failures

log = get_logger(__name__)


class LoginRateLimiter:
    """Refuses logins for a key once it has failed `limit` times in the current window."""

    def __init__(self, database: Database, limit: int, window_seconds: int) -> None:
        self._database = database
        self._limit = limit
        self._window = window_seconds

    def _window_start(self, now: datetime) -> datetime:
        epoch_seconds = int(now.timestamp())
        return datetime.fromtimestamp(epoch_seconds - epoch_seconds % self._window, now.tzinfo)

    async def check(self, keys: list[str]) -> None:
        """Raise `TooManyRequestsError` if any key has used up its failures in this window."""
        now = utc_now()
        start = self._window_start(now)
        query = select(login_failures.c.count).where(
            login_failures.c.key.in_(keys), login_failures.c.window_start == start
        )
        async with self._database.reading() as connection:
            counts = list((await connection.execute(query)).scalars())
        if any(count >= self._limit for count in counts):
            retry_after = max(
                1, int((start + timedelta(seconds=self._window) - now).total_seconds())
            )
            raise TooManyRequestsError(
                f"too many failed logins; try again in {retry_after} seconds", retry_after
            )

    async def record_failure(self, keys: list[str]) -> None:
        """Count one failed login against every key."""
        start = self._window_start(utc_now())
        async with self._database.writing() as connection:
            for key in keys:
                await connection.execute(
                    self._database.insert_ignoring_duplicates(login_failures).values(
                        key=key, window_start=start, count=0
                    )
                )
                await connection.execute(
                    update(login_failures)
                    .where(login_failures.c.key == key, login_failures.c.window_start == start)
                    .values(count=login_failures.c.count + 1)
                )
            await connection.execute(
                delete(login_failures).where(login_failures.c.window_start < start)
            )
        log.info("login failed", keys=keys)
