"""Helpers for tests of accounts and token auth: accounts made through the real management API.

An account made here has an account password (console and management API), a registry
password (`docker login`) and, unless asked otherwise, one namespace of its own. Names are
unique per call, so tests on the shared server never see each other's accounts.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from tests.support import TEST_NAMESPACE

if TYPE_CHECKING:
    from tests.conftest import RunningServer

API = "/api/v1"


@dataclass(frozen=True, slots=True)
class Account:
    """An account a test made, with both of its passwords."""

    name: str
    password: str
    registry_password: str
    namespace: str

    @property
    def registry_auth(self) -> tuple[str, str]:
        """HTTP Basic for /v2 and the token endpoint."""
        return (self.name, self.registry_password)

    @property
    def api_auth(self) -> tuple[str, str]:
        """HTTP Basic for the management API."""
        return (self.name, self.password)

    def creds(self) -> str:
        """`name:registry-password`, as skopeo's and podman's --creds want it."""
        return f"{self.name}:{self.registry_password}"


def unique_name(prefix: str) -> str:
    """A name no other test uses: `prefix` and 10 hex digits."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def new_account(
    server: RunningServer,
    admin: tuple[str, str],
    activate: bool = True,
    with_namespace: bool = True,
) -> Account:
    """An account made by `admin` through the API; activated and given a namespace if asked."""
    name = unique_name("user")
    account = Account(name, f"account-{name}-pw", f"registry-{name}-pw", unique_name("ns"))
    with httpx.Client(base_url=server.url + API, timeout=60, verify=False) as api:
        created = api.post("/users", json={"name": name, "password": account.password}, auth=admin)
        assert created.status_code == 201, created.text
        if activate:
            activated = api.put(
                "/me/registry-password",
                json={"password": account.registry_password},
                auth=account.api_auth,
            )
            assert activated.status_code == 200, activated.text
        if with_namespace:
            made = api.post("/namespaces", json={"name": account.namespace}, auth=account.api_auth)
            assert made.status_code == 201, made.text
    return account


def account_of_tester(server: RunningServer) -> Account:
    """The account the server fixtures make (`RunningServer.create_account`); do not change it."""
    assert server.username is not None and server.password is not None
    name = server.username
    return Account(name, f"account-{name}-secret", server.password, TEST_NAMESPACE)


def new_access_token(
    server: RunningServer, account: Account, scope: str = "pull,push", namespace: str | None = None
) -> dict[str, object]:
    """A new access token of `account`, as the API answers: `secret` is in it this once."""
    body: dict[str, object] = {"name": unique_name("token"), "scope": scope}
    if namespace is not None:
        body["namespace"] = namespace
    created = httpx.post(
        f"{server.url}{API}/tokens", json=body, auth=account.api_auth, timeout=60, verify=False
    )
    assert created.status_code == 201, created.text
    token: dict[str, object] = created.json()
    return token


def token_response(
    server: RunningServer, auth: tuple[str, str] | None, *scopes: str, **params: str
) -> httpx.Response:
    """GET the token endpoint with HTTP Basic `auth` and `scope` parameters."""
    query = [("service", "moorage"), *[("scope", scope) for scope in scopes], *params.items()]
    return httpx.get(f"{server.url}/auth/token", params=query, auth=auth, timeout=60, verify=False)


def bearer_token(server: RunningServer, auth: tuple[str, str], *scopes: str) -> str:
    """A registry token for `scopes`, as a client gets it before /v2 requests."""
    response = token_response(server, auth, *scopes)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying a registry token."""
    return {"Authorization": f"Bearer {token}"}


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without checking anything."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def error_body_without(response: httpx.Response, *names: str) -> str:
    """The response text with `names` blanked out, to compare answers about different things."""
    text = response.text
    for name in names:
        text = text.replace(name, "NAME")
    return text


ADMIN = ("root", "root-account-password")

# The settings of the `tuned_server` fixture.
TUNED_SETTINGS = {
    "MOORAGE_AUTH__TOKEN_LIFETIME_SECONDS": "60",
    "MOORAGE_AUTH__SERVICE": "registry.example.test",
    "MOORAGE_AUTH__ISSUER": "moorage-tests",
    "MOORAGE_AUTH__ALLOW_SIGNUP": "true",
    "MOORAGE_AUTH__LOGIN_FAILURES_PER_WINDOW": "3",
    "MOORAGE_AUTH__LOGIN_WINDOW_SECONDS": "3600",
}


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 reaches the server)."""
    transport = httpx.HTTPTransport(local_address=address, verify=False)
    return httpx.Client(transport=transport, timeout=60)


@contextmanager
def server_with(
    tmp_path: Path,
    settings: dict[str, str] | None = None,
    serve_args: tuple[str, ...] = (),
    scheme: str = "http",
) -> Iterator[RunningServer]:
    """A server of the test's own with `settings` (MOORAGE_* variables) and admin `ADMIN`.

    The admin comes from MOORAGE_ADMIN_USER/MOORAGE_ADMIN_PASSWORD, so no CLI run is needed;
    the server must log no traceback.
    """
    from tests.conftest import RunningServer

    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {"MOORAGE_ADMIN_USER": ADMIN[0], "MOORAGE_ADMIN_PASSWORD": ADMIN[1], **(settings or {})}
    running = RunningServer(tmp_path / "data", env=env, serve_args=list(serve_args), scheme=scheme)
    running.start()
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


def assert_not_logged(server: RunningServer, *secrets: str) -> None:
    """None of `secrets` (passwords, token secrets, JWTs) is anywhere in the server's log."""
    log = server.log_text()
    for secret in secrets:
        assert secret not in log, f"a secret ({secret[:6]}...) is in the server log"
