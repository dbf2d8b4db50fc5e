"""Leases raced by several processes' connections on one database: one holder at a time.

Each contender has a `Database` of its own, so its own connection pool, as a replica has; on
PostgreSQL (MOORAGE_TEST_DATABASE=postgresql) their transactions really run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.databases import database_url

from moorage.errors import ConflictError
from moorage.metadata.database import Database
from moorage.metadata.leases import Lease

pytestmark = pytest.mark.anyio

CONTENDERS = 6
ROUNDS = 5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[list[Database]]:
    """One migrated database, opened by several independent engines."""
    url = database_url(tmp_path)
    opened = [Database(url) for _ in range(CONTENDERS)]
    await opened[0].migrate()
    yield opened
    for database in opened:
        await database.close()


async def _race(replicas: list[Database], name: str) -> list[Lease]:
    """Every replica tries to take lease `name` at once; the leases that were granted."""
    leases = [Lease(database, name, timedelta(minutes=5)) for database in replicas]
    outcomes = await asyncio.gather(*(lease.acquire() for lease in leases), return_exceptions=True)
    for outcome in outcomes:
        if outcome is not None and not isinstance(outcome, ConflictError):
            raise outcome
    return [lease for lease, outcome in zip(leases, outcomes, strict=True) if outcome is None]


async def test_one_contender_takes_a_new_lease(replicas: list[Database]) -> None:
    for round_number in range(ROUNDS):
        granted = await _race(replicas, f"new-{round_number}")
        assert len(granted) == 1
        await granted[0].keep()


async def test_one_contender_takes_over_an_expired_lease(replicas: list[Database]) -> None:
    for _ in range(ROUNDS):
        stalled = Lease(replicas[0], "expired", timedelta(0))
        await stalled.acquire()

        granted = await _race(replicas, "expired")

        assert len(granted) == 1
        with pytest.raises(ConflictError, match="taken over"):
            await stalled.keep()
        await granted[0].release()


async def test_a_released_lease_is_free_for_the_next_race(replicas: list[Database]) -> None:
    first = await _race(replicas, "gc")
    assert len(first) == 1
    assert await _race(replicas, "gc") == []

    await first[0].release()

    assert len(await _race(replicas, "gc")) == 1
