"""Build logs: every line, timestamped and masked, kept in the metadata database."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select

from moorage.clock import utc_now
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import build_log_lines

log = get_logger(__name__)

MASK: Final = "****"
LINE_MAX: Final = 4000
# A runaway build cannot fill the database: past this, lines are counted, not kept.
LINES_PER_BUILD_MAX: Final = 50_000
READ_MAX: Final = 5000
FLUSH_SECONDS: Final = 0.3
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_SHORTEST_SECRET = 4


class Masker:
    """Hides known secrets, passwords in URLs and signed tokens in a line of text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted(
            {secret for secret in secrets if len(secret) >= _SHORTEST_SECRET},
            key=len,
            reverse=True,
        )

    def add(self, secret: str) -> None:
        """Mask `secret` too from now on."""
        if len(secret) >= _SHORTEST_SECRET and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
        return _JWT.sub(MASK, text)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One stored line; `id` orders lines and lets a reader continue after one."""

    id: int
    at: datetime
    line: str


class BuildLogService:
    """Appends to and reads the logs of builds."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def append(self, build_id: str, lines: list[tuple[datetime, str]]) -> None:
        """Store lines of one build, in order."""
        if not lines:
            return
        rows = [{"build_id": build_id, "at": at, "line": line[:LINE_MAX]} for at, line in lines]
        async with self._database.writing() as connection:
            await connection.execute(build_log_lines.insert(), rows)

    async def read(self, build_id: str, after: int = 0, limit: int = READ_MAX) -> list[LogLine]:
        """The lines of a build after line id `after`, oldest first."""
        query = (
            select(build_log_lines.c.id, build_log_lines.c.at, build_log_lines.c.line)
            .where(build_log_lines.c.build_id == build_id, build_log_lines.c.id > after)
            .order_by(build_log_lines.c.id)
            .limit(min(limit, READ_MAX))
        )
        async with self._database.reading() as connection:
            return [LogLine(row.id, row.at, row.line) for row in await connection.execute(query)]

    async def follow(
        self,
        build_id: str,
        is_finished: Callable[[], Awaitable[bool]],
        after: int = 0,
        poll: float = 0.3,
    ) -> AsyncIterator[LogLine]:
        """The lines of a build after `after`, waiting for new ones until the build has ended."""
        while True:
            finished = await is_finished()
            lines = await self.read(build_id, after)
            for line in lines:
                yield line
            if lines:
                after = lines[-1].id
                continue
            if finished:
                return
            await asyncio.sleep(poll)


class LogWriter:
    """Collects a running build's lines, masks them, and stores them in small batches."""

    def __init__(self, logs: BuildLogService, build_id: str, masker: Masker) -> None:
        self._logs = logs
        self._build_id = build_id
        self.masker = masker
        self._pending: list[tuple[datetime, str]] = []
        self._written = 0
        self._dropped = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __call__(self, line: str) -> None:
        """Take one line of output."""
        if self._written + len(self._pending) >= LINES_PER_BUILD_MAX:
            self._dropped += 1
            return
        self._pending.append((utc_now(), self.masker(line.rstrip())))

    async def __aenter__(self) -> LogWriter:
        self._task = asyncio.create_task(self._flush_forever())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._dropped:
            self._pending.append((utc_now(), f"[moorage] {self._dropped} more lines were not kept"))
        # Not cancelled: a batch being stored (waiting for the database's write lock, say)
        # would be lost. The flusher ends after one last flush of everything pending.
        self._stopping.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    async def flush(self) -> None:
        """Store what has come in so far."""
        batch, self._pending = self._pending, []
        try:
            await self._logs.append(self._build_id, batch)
        except Exception:
            log.exception("build log lines lost", build_id=self._build_id, lines=len(batch))
        self._written += len(batch)

    async def _flush_forever(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), FLUSH_SECONDS)
            await self.flush()
