"""The metadata database's writes: a unique key taken by another writer is a conflict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.databases import database_url

from moorage.clock import utc_now
from moorage.errors import ConflictError
from moorage.metadata.database import Database
from moorage.metadata.tables import secret_keys

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    opened = Database(database_url(tmp_path))
    await opened.migrate()
    yield opened
    await opened.close()


async def test_a_unique_key_taken_first_is_a_conflict_and_the_first_write_stays(
    database: Database,
) -> None:
    row = {"name": "example", "value": b"first", "created_at": utc_now()}
    async with database.writing() as connection:
        await connection.execute(secret_keys.insert().values(**row))

    with pytest.raises(ConflictError, match="conflicted with a concurrent one"):
        async with database.writing() as connection:
            await connection.execute(secret_keys.insert().values(**{**row, "value": b"second"}))

    async with database.reading() as connection:
        stored = (await connection.execute(select(secret_keys.c.value))).scalars().all()
    assert [bytes(value) for value in stored] == [b"first"]
