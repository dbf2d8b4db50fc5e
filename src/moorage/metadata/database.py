"""The metadata database: one async engine, reads and writes, migrations on start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, event, text
from sqlalchemy import exc as sql_errors
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from moorage.errors import ConflictError, DatabaseUnavailableError
from moorage.log import get_logger

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock that serializes migrations of one database (any fixed number).
MIGRATION_LOCK_KEY = 0x6D6F6F72


class Database:
    """Connections to the metadata database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=False)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        # SQLite takes the write lock at BEGIN, so that two writers never deadlock on upgrade.
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries that change nothing."""
        with _outage_is_unavailable():
            async with self.engine.connect() as connection:
                yield connection

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed when the block ends without an exception."""
        with _outage_is_unavailable(), _race_is_conflict():
            async with self._write_engine.begin() as connection:
                yield connection

    def insert_ignoring_duplicates(self, table: Table) -> Insert:
        """An INSERT that does nothing where the primary key or a unique key already exists."""
        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    async def migrate(self) -> None:
        """Bring the schema up to the newest migration; replicas starting together take turns."""
        # On SQLite the write engine's BEGIN IMMEDIATE serializes them the same way.
        with _outage_is_unavailable():
            async with self._write_engine.begin() as connection:
                if not self.is_sqlite:
                    # Released at commit; the next replica then finds the schema upgraded.
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                await connection.run_sync(_upgrade)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


@contextmanager
def _outage_is_unavailable() -> Iterator[None]:
    """A database that is down, restarting or out of connections fails the request with 503."""
    try:
        yield
    except (sql_errors.OperationalError, sql_errors.InterfaceError, sql_errors.TimeoutError) as exc:
        # A lost connection is dropped from the pool; the next request opens a fresh one.
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        log.error("metadata database unavailable", error=type(exc).__name__, reason=reason)
        raise DatabaseUnavailableError("the metadata database is unavailable") from None


@contextmanager
def _race_is_conflict() -> Iterator[None]:
    """A unique key that a concurrent writer took first fails the request with 409, not 500.

    The services handle the races they expect; this is the net under the ones they do not.
    """
    try:
        yield
    except sql_errors.IntegrityError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        log.warning("write conflicted with a concurrent one", reason=reason)
        raise ConflictError("the change conflicted with a concurrent one; try again") from None


def _upgrade(connection: Connection) -> None:
    # Alembic is imported only when migrating: it is slow to load.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
