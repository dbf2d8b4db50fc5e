"""The management API's access tokens: created with the secret shown once, listed, revoked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.account_support import (
    API,
    Account,
    account_of_tester,
    assert_not_logged,
    new_account,
    unique_name,
)

if TYPE_CHECKING:
    from tests.conftest import RunningServer

LISTED_FIELDS = {"id", "name", "scope", "namespace", "expires_at", "created_at", "last_used_at"}


@pytest.fixture(scope="module")
def member(server: RunningServer, admin: tuple[str, str]) -> Account:
    """The account whose tokens this module makes, each under a name of its own."""
    return new_account(server, admin)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, timeout=60) as client:
        yield client


def field_error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "INVALID_FIELD"
    field: str = error["detail"]["field"]
    return field


def test_the_secret_is_shown_once_and_never_listed(
    server: RunningServer, api: httpx.Client, member: Account
) -> None:
    name = unique_name("ci")
    created = api.post("/tokens", json={"name": name, "scope": "pull,push"}, auth=member.api_auth)
    assert created.status_code == 201, created.text
    token = created.json()
    secret = token.pop("secret")

    listed = api.get("/tokens", auth=member.api_auth)

    assert set(token) == LISTED_FIELDS
    assert (token["name"], token["scope"], token["namespace"]) == (name, "pull,push", None)
    assert token["expires_at"] is None
    assert token in listed.json()
    assert all(set(item) == LISTED_FIELDS for item in listed.json())
    assert secret not in listed.text
    assert httpx.get(f"{server.url}/v2/", auth=(member.name, secret)).status_code == 200
    (used,) = [
        item
        for item in api.get("/tokens", auth=member.api_auth).json()
        if item["id"] == token["id"]
    ]
    assert used["last_used_at"] is not None
    assert_not_logged(server, secret, member.password)


def test_tokens_are_listed_newest_first_and_only_to_their_owner(
    server: RunningServer, api: httpx.Client, member: Account
) -> None:
    other = account_of_tester(server)
    names = [unique_name("first"), unique_name("second")]
    for name in names:
        created = api.post("/tokens", json={"name": name}, auth=member.api_auth)
        assert created.status_code == 201

    mine = api.get("/tokens", auth=member.api_auth).json()
    theirs = api.get("/tokens", auth=other.api_auth).json()

    assert [token["name"] for token in mine if token["name"] in names] == names[::-1]
    assert [token["scope"] for token in mine if token["name"] in names] == ["pull", "pull"]
    assert not {token["id"] for token in mine} & {token["id"] for token in theirs}


def test_expiry_and_namespace(api: httpx.Client, member: Account) -> None:
    created = api.post(
        "/tokens",
        json={"name": unique_name("limited"), "expires_in_days": 7, "namespace": member.namespace},
        auth=member.api_auth,
    )

    token = created.json()
    expires_at = datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00"))
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    assert token["namespace"] == member.namespace


def test_revoking(server: RunningServer, api: httpx.Client, member: Account) -> None:
    token = api.post("/tokens", json={"name": unique_name("ci")}, auth=member.api_auth).json()
    auth = (member.name, token["secret"])
    assert httpx.get(f"{server.url}/v2/", auth=auth).status_code == 200

    revoked = api.delete(f"/tokens/{token['id']}", auth=member.api_auth)
    again = api.delete(f"/tokens/{token['id']}", auth=member.api_auth)

    assert revoked.status_code == 204
    assert httpx.get(f"{server.url}/v2/", auth=auth).status_code == 401
    listed = api.get("/tokens", auth=member.api_auth).json()
    assert token["id"] not in {item["id"] for item in listed}
    assert again.status_code == 404


def test_someone_elses_token_is_unknown_like_a_missing_one(
    server: RunningServer, api: httpx.Client, member: Account
) -> None:
    other = account_of_tester(server)
    token = api.post("/tokens", json={"name": unique_name("ci")}, auth=member.api_auth).json()

    theirs = api.delete(f"/tokens/{token['id']}", auth=other.api_auth)
    missing = api.delete("/tokens/0123456789abcdef", auth=other.api_auth)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.text.replace(token["id"], "ID") == missing.text.replace("0123456789abcdef", "ID")
    assert httpx.get(f"{server.url}/v2/", auth=(member.name, token["secret"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "tab\there"}, "name"),
        ({}, "name"),
        ({"name": "t", "scope": "push"}, "scope"),
        ({"name": "t", "scope": "pull,push,delete"}, "scope"),
        ({"name": "t", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "t", "expires_in_days": 100_000}, "expires_in_days"),
        ({"name": "t", "namespace": "X"}, "namespace"),
        ({"name": "t", "namespace": "not-mine-at-all"}, "namespace"),
    ],
    ids=repr,
)
def test_bad_fields_are_named(
    api: httpx.Client, member: Account, body: dict[str, object], field: str
) -> None:
    response = api.post("/tokens", json=body, auth=member.api_auth)

    assert field_error(response) == field


def test_duplicate_names_conflict(api: httpx.Client, member: Account) -> None:
    name = unique_name("ci")
    assert api.post("/tokens", json={"name": name}, auth=member.api_auth).status_code == 201

    response = api.post("/tokens", json={"name": name}, auth=member.api_auth)

    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "CONFLICT"


def test_tokens_need_the_account_password(api: httpx.Client, member: Account) -> None:
    assert api.get("/tokens").status_code == 401
    assert api.get("/tokens", auth=member.registry_auth).status_code == 401
    assert api.post("/tokens", json={"name": "x"}, auth=member.registry_auth).status_code == 401
