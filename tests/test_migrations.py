"""`moorage migrate` upgrades a database in place, and replicas migrating at once take turns."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Connection, select, text
from tests.conftest import RunningServer

from moorage.metadata.database import MIGRATIONS, Database
from moorage.metadata.tables import secret_keys, upload_sessions, users
from moorage.secret_keys import CONSOLE_SESSION, LEGACY_FILES

HEAD = "0007"


def alembic(url: str, action: str, revision: str) -> None:
    """Run alembic's upgrade or downgrade to `revision` on the database at `url`."""

    def run(connection: Connection) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)

    async def on_database() -> None:
        database = Database(url)
        try:
            async with database.engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await database.close()

    asyncio.run(on_database())


def query(url: str, statement: object) -> list[tuple[object, ...]]:
    async def on_database() -> list[tuple[object, ...]]:
        database = Database(url)
        try:
            async with database.reading() as connection:
                return [tuple(row) for row in await connection.execute(statement)]  # type: ignore[arg-type]
        finally:
            await database.close()

    return asyncio.run(on_database())


def test_migrate_upgrades_an_older_database_in_place(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "data")
    server.create_account("tester", ("test",))
    url = server.settings().resolved_database_url
    alembic(url, "downgrade", "0006")
    # Before 0007 the keys were files in the data dir; they must survive the upgrade.
    (server.data_dir / LEGACY_FILES[CONSOLE_SESSION]).write_bytes(b"k" * 32)

    migrated = server.cli("migrate")

    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout
    assert query(url, text("SELECT version_num FROM alembic_version")) == [(HEAD,)]
    assert query(url, select(users.c.name)) == [("tester",)]
    stored = query(url, select(secret_keys.c.value).where(secret_keys.c.name == CONSOLE_SESSION))
    assert [bytes(value) for (value,) in stored] == [b"k" * 32]  # type: ignore[arg-type]
    assert query(url, select(upload_sessions.c.claimed_until)) == []


def test_every_migration_can_be_undone_and_done_again(tmp_path: Path) -> None:
    server = RunningServer(tmp_path / "data")
    server.create_account("tester", ("test",))
    url = server.settings().resolved_database_url

    alembic(url, "downgrade", "base")
    assert query(url, text("SELECT count(*) FROM alembic_version")) == [(0,)]
    alembic(url, "upgrade", "head")

    assert query(url, text("SELECT version_num FROM alembic_version")) == [(HEAD,)]


def test_replicas_migrating_one_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    url = RunningServer(tmp_path / "data").settings().resolved_database_url

    async def migrate_together() -> None:
        databases = [Database(url) for _ in range(4)]
        try:
            await asyncio.gather(*(database.migrate() for database in databases))
        finally:
            for database in databases:
                await database.close()

    asyncio.run(migrate_together())

    assert query(url, text("SELECT version_num FROM alembic_version")) == [(HEAD,)]
