"""Fixtures for console tests: an administrator, and fresh accounts made through the API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.conftest import RunningServer

API = "/api/v1"


@dataclass(frozen=True, slots=True)
class ConsoleAccount:
    """An account a test made: both of its passwords and the namespace it owns."""

    name: str
    password: str
    registry_password: str
    namespace: str

    @property
    def api_auth(self) -> tuple[str, str]:
        """HTTP Basic for the management API: the account password."""
        return (self.name, self.password)

    @property
    def registry_auth(self) -> tuple[str, str]:
        """HTTP Basic for /v2 and the token endpoint: the registry password."""
        return (self.name, self.registry_password)


def make_account(
    server: RunningServer, admin: tuple[str, str], activate: bool = True, namespace: bool = True
) -> ConsoleAccount:
    """A fresh account made by `admin`, activated and owning a namespace unless told not to."""
    suffix = uuid.uuid4().hex[:10]
    account = ConsoleAccount(
        f"web{suffix}", f"account-{suffix}-pw", f"registry-{suffix}-pw", f"space{suffix}"
    )
    with httpx.Client(base_url=server.url + API, timeout=60) as api:
        made = api.post(
            "/users", json={"name": account.name, "password": account.password}, auth=admin
        )
        assert made.status_code == 201, made.text
        if activate:
            body = {"password": account.registry_password}
            done = api.put("/me/registry-password", json=body, auth=account.api_auth)
            assert done.status_code == 200, done.text
        if namespace:
            body = {"name": account.namespace}
            done = api.post("/namespaces", json=body, auth=account.api_auth)
            assert done.status_code == 201, done.text
    return account


@pytest.fixture(scope="session")
def console_admin(server: RunningServer) -> tuple[str, str]:
    """An administrator of the shared server: (name, account password)."""
    name, password = "console-admin", "console-admin-password"
    result = server.cli("user", "create", name, "--admin", stdin=f"{password}\n")
    assert result.returncode == 0, result.stderr
    return name, password


@pytest.fixture
def account(server: RunningServer, console_admin: tuple[str, str]) -> ConsoleAccount:
    """A fresh activated account on the shared server, owning one namespace."""
    return make_account(server, console_admin)
