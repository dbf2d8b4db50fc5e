"""The management API's accounts: the caller, passwords, activation, sign-up, admin management."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.account_support import (
    API,
    Account,
    assert_not_logged,
    new_account,
    unique_name,
)

if TYPE_CHECKING:
    from tests.conftest import RunningServer


@pytest.fixture(scope="module")
def member(server: RunningServer, admin: tuple[str, str]) -> Account:
    """An account for the tests that change nothing of it."""
    return new_account(server, admin)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, timeout=60) as client:
        yield client


def assert_api_error(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error answer in the registry's error format."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert error["code"] == code
    message: str = error["message"]
    return message


def assert_invalid_field(response: httpx.Response, field: str) -> str:
    message = assert_api_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": field}
    return message


def test_me(api: httpx.Client, member: Account) -> None:
    response = api.get("/me", auth=member.api_auth)

    assert response.json() == {"name": member.name, "is_admin": False, "is_activated": True}


@pytest.mark.parametrize("credentials", ["none", "wrong", "registry", "bearer"])
def test_me_needs_the_account_password(
    api: httpx.Client, member: Account, credentials: str
) -> None:
    auth = {
        "none": None,
        "wrong": (member.name, "not-the-password"),
        "registry": member.registry_auth,
        "bearer": None,
    }[credentials]
    headers = {"Authorization": "Bearer abc.def.ghi"} if credentials == "bearer" else {}

    response = api.get("/me", auth=auth, headers=headers)

    assert_api_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Basic realm=")


def test_changing_the_account_password(
    server: RunningServer, api: httpx.Client, account: Account
) -> None:
    new = "a-brand-new-account-password"

    wrong = api.put(
        "/me/password",
        json={"current_password": "not-it", "new_password": new},
        auth=account.api_auth,
    )
    short = api.put(
        "/me/password",
        json={"current_password": account.password, "new_password": "short"},
        auth=account.api_auth,
    )
    changed = api.put(
        "/me/password",
        json={"current_password": account.password, "new_password": new},
        auth=account.api_auth,
    )

    assert "current password is wrong" in assert_invalid_field(wrong, "current_password")
    assert "8 to 256" in assert_invalid_field(short, "new_password")
    assert changed.status_code == 204
    assert_api_error(api.get("/me", auth=account.api_auth), 401, "UNAUTHORIZED")
    assert api.get("/me", auth=(account.name, new)).status_code == 200
    assert_not_logged(server, account.password, new)


def test_activation_and_reset_of_the_registry_password(
    server: RunningServer, api: httpx.Client, admin: tuple[str, str]
) -> None:
    account = new_account(server, admin, activate=False, with_namespace=False)
    assert api.get("/me", auth=account.api_auth).json()["is_activated"] is False

    activated = api.put(
        "/me/registry-password", json={"password": "first-registry-pw"}, auth=account.api_auth
    )
    assert activated.status_code == 200
    assert activated.json() == {
        "account": account.name,
        "login_commands": [
            f"docker login {server.host} -u {account.name}",
            f"podman login {server.host} -u {account.name}",
        ],
    }
    assert api.get("/me", auth=account.api_auth).json()["is_activated"] is True
    assert httpx.get(f"{server.url}/v2/", auth=(account.name, "first-registry-pw")).is_success

    reset = api.put(
        "/me/registry-password", json={"password": "second-registry-pw"}, auth=account.api_auth
    )
    assert reset.status_code == 200
    assert (
        httpx.get(f"{server.url}/v2/", auth=(account.name, "first-registry-pw")).status_code == 401
    )
    assert httpx.get(f"{server.url}/v2/", auth=(account.name, "second-registry-pw")).is_success
    assert_not_logged(server, account.password, "first-registry-pw", "second-registry-pw")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "short"}, "password"),
        ({}, "password"),
        ({"password": 12345678}, "password"),
        ({"password": None}, "password"),
        ([], "body"),
        ("not json", "body"),
    ],
    ids=repr,
)
def test_bad_registry_passwords_name_the_field(
    api: httpx.Client, member: Account, body: object, field: str
) -> None:
    if isinstance(body, str):
        response = api.put(
            "/me/registry-password",
            content=body,
            headers={"content-type": "application/json"},
            auth=member.api_auth,
        )
    else:
        response = api.put("/me/registry-password", json=body, auth=member.api_auth)

    assert_invalid_field(response, field)


def test_admin_only_endpoints_refuse_other_accounts(api: httpx.Client, member: Account) -> None:
    attempts = [
        api.get("/users", auth=member.api_auth),
        api.post(
            "/users",
            json={"name": "x" + member.name, "password": "long-enough"},
            auth=member.api_auth,
        ),
        api.put(
            f"/users/{member.name}/password",
            json={"password": "long-enough"},
            auth=member.api_auth,
        ),
    ]

    for response in attempts:
        assert assert_api_error(response, 403, "DENIED") == "only administrators may do this"
    assert api.get("/users").status_code == 401


def test_admins_list_create_and_reset_accounts(
    api: httpx.Client, admin: tuple[str, str], account: Account
) -> None:
    name = unique_name("made")

    created = api.post(
        "/users", json={"name": name, "password": "made-by-admin", "is_admin": True}, auth=admin
    )
    listed = api.get("/users", auth=admin)
    reset = api.put(
        f"/users/{account.name}/password", json={"password": "reset-by-admin"}, auth=admin
    )

    assert created.status_code == 201
    assert created.json() == {"name": name, "is_admin": True, "is_activated": False}
    names = [user["name"] for user in listed.json()]
    assert {name, account.name, admin[0]} <= set(names)
    assert names == sorted(names)
    assert reset.status_code == 204
    assert api.get("/me", auth=(account.name, "reset-by-admin")).status_code == 200
    assert api.get("/me", auth=(name, "made-by-admin")).json()["is_admin"] is True


def test_admin_mistakes(api: httpx.Client, admin: tuple[str, str], member: Account) -> None:
    duplicate = api.post(
        "/users", json={"name": member.name, "password": "long-enough"}, auth=admin
    )
    bad_name = api.post("/users", json={"name": "Not Valid", "password": "long-enough"}, auth=admin)
    short = api.post("/users", json={"name": unique_name("u"), "password": "short"}, auth=admin)
    missing = api.put(
        f"/users/{unique_name('nobody')}/password", json={"password": "long-enough"}, auth=admin
    )

    assert "exists already" in assert_api_error(duplicate, 409, "CONFLICT")
    assert "account names" in assert_invalid_field(bad_name, "name")
    assert_invalid_field(short, "password")
    assert_api_error(missing, 404, "NOT_FOUND")


def test_sign_up_is_off_unless_the_operator_turns_it_on(api: httpx.Client) -> None:
    response = api.post("/signup", json={"name": unique_name("u"), "password": "long-enough"})

    assert "sign-up is turned off" in assert_api_error(response, 403, "DENIED")


def test_sign_up_when_allowed(tuned_server: RunningServer) -> None:
    name = unique_name("newcomer")
    api = httpx.Client(base_url=tuned_server.url + API, timeout=60)

    signed_up = api.post("/signup", json={"name": name, "password": "my-own-password"})
    again = api.post("/signup", json={"name": name, "password": "my-own-password"})
    bad = api.post("/signup", json={"name": "New Comer", "password": "my-own-password"})
    short = api.post("/signup", json={"name": unique_name("u"), "password": "short"})
    me = api.get("/me", auth=(name, "my-own-password"))
    not_admin = api.get("/users", auth=(name, "my-own-password"))

    assert signed_up.status_code == 201
    assert signed_up.json() == {"name": name, "is_admin": False, "is_activated": False}
    assert_api_error(again, 409, "CONFLICT")
    assert_invalid_field(bad, "name")
    assert_invalid_field(short, "password")
    assert me.json()["name"] == name
    assert_api_error(not_admin, 403, "DENIED")
    assert_not_logged(tuned_server, "my-own-password")
