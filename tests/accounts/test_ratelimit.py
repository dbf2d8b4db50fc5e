"""Failed logins are limited per account and per client address: 429 with Retry-After.

The tuned server allows three failures per hour. Each test fails its logins from loopback
addresses of its own (any of 127.0.0.0/8 reaches a server on 127.0.0.1), so the per-address
limit of one test never blocks another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from tests.account_support import ADMIN, API, Account, from_address, new_account, unique_name

if TYPE_CHECKING:
    from tests.conftest import RunningServer

SERVICE = {"service": "registry.example.test"}


def assert_too_many(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "TOOMANYREQUESTS"
    assert "too many failed logins" in error["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 3600


def fail_logins(server: RunningServer, address: str, names: list[str]) -> None:
    """One failed registry login per name, from `address`."""
    with from_address(address) as client:
        for name in names:
            response = client.get(
                f"{server.url}/auth/token", params=SERVICE, auth=(name, "a-wrong-password")
            )
            assert response.status_code == 401, response.text


def logins(server: RunningServer, address: str, account: Account) -> list[httpx.Response]:
    """A registry login at the token endpoint, one on /v2 and one on the management API."""
    with from_address(address) as client:
        return [
            client.get(f"{server.url}/auth/token", params=SERVICE, auth=account.registry_auth),
            client.get(f"{server.url}/v2/", auth=account.registry_auth),
            client.get(f"{server.url}{API}/me", auth=account.api_auth),
        ]


def test_an_account_is_blocked_after_its_failures_from_any_address(
    tuned_server: RunningServer,
) -> None:
    victim = new_account(tuned_server, ADMIN, with_namespace=False)
    bystander = new_account(tuned_server, ADMIN, with_namespace=False)

    fail_logins(tuned_server, "127.0.0.11", [victim.name] * 3)

    # Even the right password, from a fresh address, is refused until the window ends.
    for response in logins(tuned_server, "127.0.0.12", victim):
        assert_too_many(response)
    for response in logins(tuned_server, "127.0.0.12", bystander):
        assert response.status_code == 200, response.text


def test_an_address_is_blocked_after_failures_for_any_accounts(
    tuned_server: RunningServer,
) -> None:
    account = new_account(tuned_server, ADMIN, with_namespace=False)

    fail_logins(tuned_server, "127.0.0.21", [unique_name("guess") for _ in range(3)])

    for response in logins(tuned_server, "127.0.0.21", account):
        assert_too_many(response)
    for response in logins(tuned_server, "127.0.0.22", account):
        assert response.status_code == 200, response.text


def test_failures_on_the_management_api_count_too(tuned_server: RunningServer) -> None:
    account = new_account(tuned_server, ADMIN, with_namespace=False)
    with from_address("127.0.0.31") as client:
        for _ in range(3):
            refused = client.get(f"{tuned_server.url}{API}/me", auth=(account.name, "wrong-pw"))
            assert refused.status_code == 401

    for response in logins(tuned_server, "127.0.0.32", account):
        assert_too_many(response)


def test_successful_logins_are_not_counted(tuned_server: RunningServer) -> None:
    account = new_account(tuned_server, ADMIN, with_namespace=False)

    for _ in range(3):
        for response in logins(tuned_server, "127.0.0.41", account):
            assert response.status_code == 200, response.text


def test_the_oauth2_password_grant_is_limited_too(tuned_server: RunningServer) -> None:
    account = new_account(tuned_server, ADMIN, with_namespace=False)
    form = {**SERVICE, "client_id": "tests", "grant_type": "password", "username": account.name}

    with from_address("127.0.0.51") as client:
        for _ in range(3):
            refused = client.post(
                f"{tuned_server.url}/auth/token", data={**form, "password": "wrong-pw"}
            )
            assert refused.status_code == 401
        blocked = client.post(
            f"{tuned_server.url}/auth/token", data={**form, "password": account.registry_password}
        )

    assert_too_many(blocked)
