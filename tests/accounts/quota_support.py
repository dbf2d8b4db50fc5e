"""A moorage server with small quota limits, its admin, and accounts made over the API.

Accounts are made through the management API rather than the CLI: each CLI call starts a
Python process, which would cost seconds per account.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from tests.conftest import RunningServer

ADMIN = "root"
ADMIN_PASSWORD = f"account-{ADMIN}-secret"


def quota_server(
    data_dir: Path, repositories: int = 500, tags: int = 100, namespaces: int = 10
) -> RunningServer:
    """A started server whose default limits are the ones given, with admin `root`."""
    running = RunningServer(
        data_dir,
        env={
            "MOORAGE_QUOTAS__REPOSITORIES_PER_USER": str(repositories),
            "MOORAGE_QUOTAS__TAGS_PER_REPOSITORY": str(tags),
            "MOORAGE_QUOTAS__NAMESPACES_PER_USER": str(namespaces),
            "MOORAGE_ADMIN_USER": ADMIN,
            "MOORAGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        },
    )
    running.start()
    return running


@dataclass(frozen=True)
class Account:
    """An account on a quota server and the namespace it owns (or would own)."""

    server: RunningServer
    name: str
    namespace: str

    @property
    def account_password(self) -> str:
        return f"account-{self.name}-secret"

    @property
    def registry_password(self) -> str:
        return f"registry-{self.name}-secret"

    def repository(self, prefix: str = "repo") -> str:
        """A new repository name in the account's namespace."""
        return f"{self.namespace}/{prefix}-{uuid.uuid4().hex[:8]}"

    @contextmanager
    def api(self) -> Iterator[httpx.Client]:
        """The management API, signed in as this account."""
        with management_api(self.server, self.name, self.account_password) as client:
            yield client

    @contextmanager
    def registry(self) -> Iterator[httpx.Client]:
        """The /v2 API with this account's registry password."""
        auth = (self.name, self.registry_password)
        with httpx.Client(base_url=self.server.url, timeout=60, auth=auth) as client:
            yield client

    def as_client_user(self) -> RunningServer:
        """The server as seen by a client that logs in as this account (skopeo's creds)."""
        return replace(self.server, username=self.name, password=self.registry_password)


@contextmanager
def management_api(server: RunningServer, name: str, password: str) -> Iterator[httpx.Client]:
    """An httpx client for /api/v1 with HTTP Basic and an account password."""
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60, auth=(name, password)) as client:
        yield client


@contextmanager
def admin_api(server: RunningServer) -> Iterator[httpx.Client]:
    """The management API, signed in as the admin."""
    with management_api(server, ADMIN, ADMIN_PASSWORD) as client:
        yield client


def new_account(server: RunningServer, prefix: str = "user", pushes: bool = True) -> Account:
    """A fresh account; one that `pushes` is activated and owns a namespace of its name.

    Every step hashes or checks a password with argon2, so an account that only uses the
    management API skips the two it does not need.
    """
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    account = Account(server, name, name)
    with admin_api(server) as admin:
        created = admin.post("/users", json={"name": name, "password": account.account_password})
        assert created.status_code == 201, created.text
    if not pushes:
        return account
    with account.api() as api:
        activated = api.put("/me/registry-password", json={"password": account.registry_password})
        assert activated.status_code == 200, activated.text
        namespace = api.post("/namespaces", json={"name": name})
        assert namespace.status_code == 201, namespace.text
    return account


def set_limits(server: RunningServer, account: str, **limits: int | None) -> dict[str, object]:
    """Override an account's limits as the admin; the quota the API answers with."""
    with admin_api(server) as admin:
        response = admin.put(f"/users/{account}/quota", json=limits)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def denial_message(response: httpx.Response) -> str:
    """The message of a 403 DENIED answer, after checking that it is one."""
    assert response.status_code == 403, (response.status_code, response.text)
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED", response.text
    message: str = error["message"]
    return message
