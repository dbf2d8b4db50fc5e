"""The metadata database tests run on: SQLite by default, a private PostgreSQL on request.

`MOORAGE_TEST_DATABASE=postgresql` makes every test server use its own database in one
PostgreSQL cluster that the test session starts in a temporary directory (Debian's
`postgresql` package provides the binaries) and stops at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

SELECTED = os.environ.get("MOORAGE_TEST_DATABASE") or "sqlite"
if SELECTED not in ("sqlite", "postgresql"):
    raise RuntimeError(f"MOORAGE_TEST_DATABASE must be sqlite or postgresql, not {SELECTED!r}")


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        raise RuntimeError("PostgreSQL tests need Debian's postgresql package installed")
    return found[-1]


class PostgresCluster:
    """A throwaway PostgreSQL cluster listening only on a Unix socket in a temp dir."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="moorage-pg-"))
        self.socket_dir = self.root / "socket"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root; the cluster belongs to the postgres user.
            shutil.chown(self.root, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_owner, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        os.makedirs(self.socket_dir, exist_ok=True)
        if self._as_owner:
            shutil.chown(self.socket_dir, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres")
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=400",
            "start",
        )

    def create_database(self) -> str:
        """A new empty database; its async SQLAlchemy URL."""
        name = f"moorage_{uuid.uuid4().hex[:12]}"
        subprocess.run(
            ["psql", "-h", str(self.socket_dir), "-U", "postgres", "-c", f"CREATE DATABASE {name}"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}"

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


_cluster: PostgresCluster | None = None


def database_environment() -> dict[str, str]:
    """MOORAGE_* variables giving a new test server its own database."""
    if SELECTED != "postgresql":
        return {}
    return {"MOORAGE_DATABASE_URL": postgresql_database_url()}


def database_url(directory: Path) -> str:
    """The URL of a new empty metadata database: a SQLite file in `directory`, or PostgreSQL."""
    selected = database_environment().get("MOORAGE_DATABASE_URL")
    return selected or f"sqlite+aiosqlite:///{directory / 'moorage.db'}"


def stop_cluster() -> None:
    """Stop the PostgreSQL cluster, if this session started one."""
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


def postgresql_database_url() -> str:
    """A new database in the session's PostgreSQL cluster, whichever database the run selected."""
    global _cluster
    if _cluster is None:
        _cluster = PostgresCluster()
        _cluster.start()
    return _cluster.create_database()
