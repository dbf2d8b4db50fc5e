"""Shared fixtures: a real moorage server on a free loopback port, with its own data dir."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.account_support import TUNED_SETTINGS, Account, new_account, server_with
from tests.databases import SELECTED, database_environment, stop_cluster
from tests.ports import free_port, wait_until_answering
from tests.s3server import S3Server, moto_s3_server

from moorage.services import build_services
from moorage.settings import Settings, load_settings


@dataclass
class RunningServer:
    """A `moorage serve` process started by a test."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # The metadata database of this server: SQLite in data_dir, or its own PostgreSQL one.
    database_env: dict[str, str] = field(default_factory=database_environment)
    # The account tests act as; None while the registry has no accounts.
    username: str | None = None
    password: str | None = None
    # More `moorage serve` arguments; with --tls-cert and --tls-key, set scheme to "https".
    serve_args: list[str] = field(default_factory=list)
    scheme: str = "http"

    @property
    def http_auth(self) -> tuple[str, str] | None:
        """Credentials for httpx, or None."""
        if self.username is None or self.password is None:
            return None
        return (self.username, self.password)

    def creds_args(self, flag: str = "--creds") -> list[str]:
        """Command-line credentials for skopeo, podman, buildah, oras (`--creds`, ...)."""
        if self.username is None or self.password is None:
            return []
        return [flag, f"{self.username}:{self.password}"]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        """`host:port`, as image references spell the registry."""
        return f"127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        # Tests share 127.0.0.1, so the per-address login limit is raised out of their way.
        return {
            **os.environ,
            "MOORAGE_LOG_LEVEL": "debug",
            "MOORAGE_AUTH__LOGIN_FAILURES_PER_WINDOW": "100000",
            **self.database_env,
            **self.env,
        }

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `moorage ARGS --data-dir DATA_DIR`; the result, whatever its exit status."""
        return subprocess.run(
            [sys.executable, "-m", "moorage", *args, "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.environment,
            timeout=120,
        )

    def create_account(self, name: str, namespaces: tuple[str, ...] = ()) -> tuple[str, str]:
        """An activated account owning `namespaces`; returns (name, registry password)."""
        registry_password = f"registry-{name}-secret"
        # Through moorage's own services in this process: three CLI runs cost seconds each.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(
                asyncio.run,
                _make_account(
                    self.settings(), name, f"account-{name}-secret", registry_password, namespaces
                ),
            ).result()
        return name, registry_password

    def settings(self) -> Settings:
        """The settings this server runs with."""
        saved = dict(os.environ)
        os.environ.update(self.environment)
        try:
            return load_settings(data_dir=self.data_dir)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start(self) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        environment = self.environment
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "moorage",
                    "serve",
                    "--listen",
                    self.host,
                    "--data-dir",
                    str(self.data_dir),
                    *self.serve_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
        wait_until_answering(f"{self.url}/v2/", self.process, "moorage", self.log_path)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


async def _make_account(
    settings: Settings,
    name: str,
    account_password: str,
    registry_password: str,
    namespaces: tuple[str, ...],
) -> None:
    services = build_services(settings)
    try:
        await services.start()
        await services.accounts.create(name, account_password)
        await services.accounts.set_registry_password(name, registry_password)
        for namespace in namespaces:
            await services.namespaces.create(namespace, name)
    finally:
        await services.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One moorage server shared by the whole session; tests use their own repositories."""
    running = RunningServer(tmp_path_factory.mktemp("moorage") / "data")
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A moorage server for one test, which may restart or kill it."""
    running = RunningServer(tmp_path / "data")
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client pointed at the shared server."""
    with httpx.Client(base_url=server.url, timeout=60, auth=server.http_auth) as http:
        yield http


@pytest.fixture(scope="session")
def admin(server: RunningServer) -> tuple[str, str]:
    """An administrator of the shared server: (name, account password)."""
    name, password = "admin", "admin-account-password"
    result = server.cli("user", "create", name, "--admin", stdin=f"{password}\n")
    assert result.returncode == 0, result.stderr
    return name, password


@pytest.fixture
def account(server: RunningServer, admin: tuple[str, str]) -> Account:
    """A fresh activated account on the shared server, owning one namespace."""
    return new_account(server, admin)


@pytest.fixture(scope="session")
def tuned_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second shared server with auth settings changed, and admin `ADMIN` from the settings.

    Three failed logins per account or address block it for the hour: tests that fail logins
    on purpose do it from a loopback address of their own (`from_address`), never 127.0.0.1.
    """
    with server_with(tmp_path_factory.mktemp("tuned"), TUNED_SETTINGS) as running:
        yield running


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server for the session; tests make their own bucket or prefix in it."""
    with moto_s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def metadata_database() -> Iterator[str]:
    """Which metadata database the session's servers use; stops PostgreSQL at the end."""
    yield SELECTED
    stop_cluster()


def pytest_report_header() -> str:
    """Say which metadata database the run uses."""
    return f"moorage metadata database: {SELECTED}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the database again just above the closing line: CI runs the suite once on each."""
    terminalreporter.write_sep("=", f"moorage metadata database: {SELECTED}")
