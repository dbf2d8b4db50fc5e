"""Build jobs in the metadata database: queued, claimed by exactly one worker, finished once.

A claim is one guarded UPDATE (`... WHERE state = 'queued'`), so two workers never run the
same job; PostgreSQL also skips rows another claim holds locked. A running job's worker
refreshes its heartbeat; any worker fails the jobs of one that went silent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.engine import Row

from moorage.builds.rule_store import BuildRule
from moorage.clock import utc_now
from moorage.errors import ConflictError, ResourceUnknownError
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import builds

log = get_logger(__name__)

QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
TIMED_OUT: Final = "timed_out"
FINISHED_STATES: Final = frozenset({SUCCEEDED, FAILED, CANCELLED, TIMED_OUT})
Trigger = Literal["manual", "webhook"]
LIST_MAX = 1000


@dataclass(frozen=True, slots=True)
class Build:
    """One build job and what became of it."""

    id: str
    rule_id: str
    user_id: int
    ref: str | None
    resolved_ref: str | None
    trigger: str
    state: str
    commit: str | None
    image: str | None
    image_digest: str | None
    reason: str | None
    worker_id: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether the build reached its final state."""
        return self.state in FINISHED_STATES

    @property
    def duration_seconds(self) -> float | None:
        """How long it ran, once it has finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def _build(row: Row[tuple[object, ...]]) -> Build:
    return Build(**{name: getattr(row, name) for name in Build.__dataclass_fields__})


class BuildJobService:
    """Queues, claims, tracks and finishes build jobs."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def enqueue(self, rule: BuildRule, ref: str | None, trigger: Trigger) -> Build:
        """A new queued build of `rule`, at `ref` or the rule's own ref."""
        build_id = uuid.uuid4().hex
        async with self._database.writing() as connection:
            await connection.execute(
                builds.insert().values(
                    id=build_id,
                    rule_id=rule.id,
                    user_id=rule.user_id,
                    ref=ref,
                    trigger=trigger,
                    state=QUEUED,
                    cancel_requested=False,
                    created_at=utc_now(),
                )
            )
        log.info("build queued", build_id=build_id, rule_id=rule.id, ref=ref, trigger=trigger)
        return await self.get(build_id)

    async def get(self, build_id: str, user_id: int | None = None) -> Build:
        """Build `build_id`, if `user_id` owns it (anyone's when None); unknown otherwise."""
        query = select(builds).where(builds.c.id == build_id[:64])
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).first()
        if row is None or (user_id is not None and row.user_id != user_id):
            raise ResourceUnknownError(f"no build {build_id[:64]}")
        return _build(row)

    async def history(
        self, user_id: int, rule_id: str | None = None, limit: int = 100
    ) -> list[Build]:
        """The builds of `user_id` (of one rule), newest first."""
        query = select(builds).where(builds.c.user_id == user_id)
        if rule_id is not None:
            query = query.where(builds.c.rule_id == rule_id)
        query = query.order_by(builds.c.created_at.desc(), builds.c.id).limit(min(limit, LIST_MAX))
        async with self._database.reading() as connection:
            return [_build(row) for row in await connection.execute(query)]

    async def cancel(self, build_id: str, user_id: int) -> Build:
        """Cancel a queued build now, or ask the worker running it to stop."""
        build = await self.get(build_id, user_id)
        if build.finished:
            raise ConflictError(f"build {build_id} has already finished: {build.state}")
        async with self._database.writing() as connection:
            await connection.execute(
                update(builds)
                .where(builds.c.id == build_id, builds.c.state == QUEUED)
                .values(
                    state=CANCELLED,
                    finished_at=utc_now(),
                    reason="cancelled before it started",
                    cancel_requested=True,
                )
            )
            await connection.execute(
                update(builds)
                .where(builds.c.id == build_id, builds.c.state == RUNNING)
                .values(cancel_requested=True)
            )
        log.info("build cancel requested", build_id=build_id)
        return await self.get(build_id)

    async def claim(self, worker_id: str) -> Build | None:
        """The oldest queued build, now running on `worker_id`; None when nothing waits."""
        # Idle polls only read: SQLite has one writer, and pushes need it more.
        if not await self._any(builds.c.state == QUEUED):
            return None
        async with self._database.writing() as connection:
            candidate = (
                select(builds.c.id)
                .where(builds.c.state == QUEUED)
                .order_by(builds.c.created_at, builds.c.id)
                .limit(1)
            )
            if not self._database.is_sqlite:
                candidate = candidate.with_for_update(skip_locked=True)
            build_id = (await connection.execute(candidate)).scalar_one_or_none()
            if build_id is None:
                return None
            now = utc_now()
            claimed = await connection.execute(
                update(builds)
                .where(builds.c.id == build_id, builds.c.state == QUEUED)
                .values(state=RUNNING, worker_id=worker_id, started_at=now, heartbeat_at=now)
            )
            if claimed.rowcount != 1:
                return None
        log.info("build claimed", build_id=build_id, worker_id=worker_id)
        return await self.get(build_id)

    async def record_source(
        self, build_id: str, worker_id: str, resolved_ref: str, commit: str, image: str
    ) -> None:
        """What the build checked out and the image it will push."""
        async with self._database.writing() as connection:
            await connection.execute(
                update(builds)
                .where(builds.c.id == build_id, builds.c.worker_id == worker_id)
                .values(resolved_ref=resolved_ref, commit=commit, image=image)
            )

    async def heartbeat(self, worker_id: str, build_ids: list[str]) -> set[str]:
        """Prove `worker_id` alive for its running builds; the ids whose cancel was asked."""
        if not build_ids:
            return set()
        mine = and_(
            builds.c.id.in_(build_ids), builds.c.worker_id == worker_id, builds.c.state == RUNNING
        )
        async with self._database.writing() as connection:
            await connection.execute(update(builds).where(mine).values(heartbeat_at=utc_now()))
            cancelled = await connection.execute(
                select(builds.c.id).where(mine, builds.c.cancel_requested.is_(True))
            )
            return {row.id for row in cancelled}

    async def finish(
        self,
        build_id: str,
        worker_id: str,
        state: str,
        reason: str | None = None,
        image_digest: str | None = None,
    ) -> bool:
        """Record the end of a build this worker runs; False if it was not running here."""
        async with self._database.writing() as connection:
            done = await connection.execute(
                update(builds)
                .where(
                    builds.c.id == build_id,
                    builds.c.worker_id == worker_id,
                    builds.c.state == RUNNING,
                )
                .values(
                    state=state, reason=reason, image_digest=image_digest, finished_at=utc_now()
                )
            )
        log.info("build finished", build_id=build_id, state=state, reason=reason)
        return bool(done.rowcount == 1)

    async def reap(self, silent_for: float) -> list[str]:
        """Fail the running builds whose worker has not been heard of for `silent_for` seconds."""
        cutoff = utc_now() - timedelta(seconds=silent_for)
        stale = and_(builds.c.state == RUNNING, builds.c.heartbeat_at < cutoff)
        if not await self._any(stale):
            return []
        async with self._database.writing() as connection:
            found = [row.id for row in await connection.execute(select(builds.c.id).where(stale))]
            if not found:
                return []
            await connection.execute(
                update(builds)
                .where(builds.c.id.in_(found), stale)
                .values(
                    state=FAILED,
                    finished_at=utc_now(),
                    reason=(
                        f"the worker running the build stopped answering for {silent_for:g}"
                        " seconds (it was killed or lost); run the build again"
                    ),
                )
            )
        log.warning("builds of a lost worker failed", build_ids=found)
        return found

    async def release_worker(self, worker_id: str, reason: str) -> None:
        """Fail every build still running on `worker_id`, as it stops."""
        async with self._database.writing() as connection:
            await connection.execute(
                update(builds)
                .where(builds.c.worker_id == worker_id, builds.c.state == RUNNING)
                .values(state=FAILED, finished_at=utc_now(), reason=reason)
            )

    async def _any(self, condition: ColumnElement[bool]) -> bool:
        async with self._database.reading() as connection:
            found = await connection.execute(select(builds.c.id).where(condition).limit(1))
            return found.first() is not None
