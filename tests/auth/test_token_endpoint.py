"""The token endpoint against a real server: GET with HTTP Basic, and the OAuth2 POST grants."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.account_support import (
    ADMIN,
    API,
    Account,
    account_of_tester,
    assert_not_logged,
    jwt_claims,
    new_access_token,
    new_account,
    token_response,
)

from moorage.errors import ConfigurationError
from moorage.settings import load_settings

if TYPE_CHECKING:
    from tests.conftest import RunningServer


def post_token(server: RunningServer, **form: str) -> httpx.Response:
    """POST the OAuth2 form to the token endpoint."""
    fields = {"service": "moorage", "client_id": "moorage-tests", **form}
    return httpx.post(f"{server.url}/auth/token", data=fields, timeout=60)


def granted(response: httpx.Response) -> dict[str, list[str]]:
    """What the token in a 200 answer grants: `type:name` -> actions."""
    assert response.status_code == 200, response.text
    access = jwt_claims(response.json()["token"])["access"]
    assert isinstance(access, list)
    return {f"{item['type']}:{item['name']}": item["actions"] for item in access}


@pytest.fixture(scope="module")
def owner(server: RunningServer, admin: tuple[str, str]) -> Account:
    """An account the tests of this module share; none changes its passwords."""
    return new_account(server, admin)


def unauthorized_message(response: httpx.Response) -> str:
    """The message of a 401 answer, which must carry a challenge."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Basic ")
    (error,) = response.json()["errors"]
    assert error["code"] == "UNAUTHORIZED"
    message: str = error["message"]
    return message


def test_granted_is_the_intersection_of_several_scopes(
    server: RunningServer, owner: Account
) -> None:
    other = account_of_tester(server)
    own = owner.namespace

    response = token_response(
        server,
        owner.registry_auth,
        f"repository:{own}/web:pull,push,delete",
        # Several scopes in one parameter, separated by spaces.
        f"repository:{own}/api:pull repository:{other.namespace}/web:pull,push",
        f"repository:missing-{own}/web:pull",
        "registry:catalog:*",
        # The same repository again: its actions are united.
        f"repository:{own}/api:push",
    )

    assert granted(response) == {
        f"repository:{own}/web": ["delete", "pull", "push"],
        f"repository:{own}/api": ["pull", "push"],
        "registry:catalog": ["*"],
    }


def test_asking_for_more_than_allowed_is_no_error(server: RunningServer, owner: Account) -> None:
    response = token_response(server, owner.registry_auth, "repository:someone-else/web:pull,push")

    assert granted(response) == {}


def test_the_wildcard_action_grants_what_the_owner_may_do(
    server: RunningServer, owner: Account
) -> None:
    response = token_response(server, owner.registry_auth, f"repository:{owner.namespace}/a:*")

    assert granted(response) == {f"repository:{owner.namespace}/a": ["delete", "pull", "push"]}


def test_an_access_token_narrows_what_is_granted(server: RunningServer, owner: Account) -> None:
    pull_only = new_access_token(server, owner, "pull")
    auth = (owner.name, str(pull_only["secret"]))

    response = token_response(server, auth, f"repository:{owner.namespace}/web:pull,push")

    assert granted(response) == {f"repository:{owner.namespace}/web": ["pull"]}


def test_the_answer_carries_token_expiry_and_issue_time(
    server: RunningServer, owner: Account
) -> None:
    response = token_response(server, owner.registry_auth)

    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    assert "refresh_token" not in body
    claims = jwt_claims(body["token"])
    assert claims["sub"] == owner.name
    assert claims["aud"] == claims["iss"] == "moorage"


def test_offline_token_adds_a_refresh_token(server: RunningServer, owner: Account) -> None:
    response = token_response(server, owner.registry_auth, offline_token="true")

    refresh = response.json()["refresh_token"]
    assert jwt_claims(refresh)["sub"] == owner.name


@pytest.mark.parametrize(
    "scope", ["garbage", "repository:a/b", "repository:a/b:PULL", ":a/b:pull", "x" * 5000]
)
def test_a_malformed_scope_is_a_bad_request(
    server: RunningServer, owner: Account, scope: str
) -> None:
    response = token_response(server, owner.registry_auth, scope)

    assert response.status_code == 400, response.text
    assert "scope" in response.json()["errors"][0]["message"]


def test_a_token_for_another_service_is_refused(server: RunningServer, owner: Account) -> None:
    response = httpx.get(
        f"{server.url}/auth/token", params={"service": "elsewhere"}, auth=owner.registry_auth
    )

    assert response.status_code == 400
    assert "moorage" in response.json()["errors"][0]["message"]


def test_without_credentials_the_endpoint_asks_for_basic(server: RunningServer) -> None:
    message = unauthorized_message(token_response(server, None, "repository:a/b:pull"))

    assert "HTTP Basic" in message


def test_wrong_password_and_unknown_account_answer_alike(
    server: RunningServer, owner: Account
) -> None:
    wrong = token_response(server, (owner.name, "not-the-password"))
    unknown = token_response(server, ("nobody-at-all", "not-the-password"))
    account_password = token_response(server, (owner.name, owner.password))

    assert unauthorized_message(wrong) == "invalid username or password"
    assert unauthorized_message(unknown) == unauthorized_message(wrong)
    # The account password is for the console and the API, not for `docker login`.
    assert unauthorized_message(account_password) == unauthorized_message(wrong)


def test_a_not_activated_account_is_told_how_to_activate_only_with_its_password(
    server: RunningServer, admin: tuple[str, str]
) -> None:
    account = new_account(server, admin, activate=False, with_namespace=False)

    right = token_response(server, (account.name, account.password))
    wrong = token_response(server, (account.name, "not-the-password"))
    grant = post_token(
        server, grant_type="password", username=account.name, password=account.password
    )

    message = unauthorized_message(right)
    assert "not activated" in message
    assert f"moorage user activate {account.name}" in message
    assert "console" in message
    assert unauthorized_message(wrong) == "invalid username or password"
    assert grant.status_code == 401
    assert grant.json()["errors"][0]["message"] == message


def test_password_grant(server: RunningServer, owner: Account) -> None:
    own = f"repository:{owner.namespace}/web:pull,push"

    response = post_token(
        server,
        grant_type="password",
        username=owner.name,
        password=owner.registry_password,
        access_type="offline",
        scope=f"{own} repository:not-mine/web:pull",
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == own
    assert body["access_token"] == body["token"]
    assert body["expires_in"] == 300
    assert jwt_claims(body["refresh_token"])["sub"] == owner.name


def test_password_grant_without_offline_access_gives_no_refresh_token(
    server: RunningServer, owner: Account
) -> None:
    response = post_token(
        server, grant_type="password", username=owner.name, password=owner.registry_password
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == ""
    assert "refresh_token" not in response.json()


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({}, 400),
        ({"grant_type": "authorization_code"}, 400),
        ({"grant_type": "password", "username": "someone"}, 400),
        ({"grant_type": "password", "username": "someone", "password": "wrong-pw"}, 401),
        ({"grant_type": "refresh_token"}, 401),
        ({"grant_type": "refresh_token", "refresh_token": "not.a.token"}, 401),
        ({"grant_type": "password", "service": "elsewhere"}, 400),
    ],
    ids=repr,
)
def test_bad_oauth2_forms_are_refused(
    server: RunningServer, form: dict[str, str], status: int
) -> None:
    response = post_token(server, **form)

    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] in {"UNAUTHORIZED", "UNSUPPORTED"}


def test_refresh_grant_gives_new_access_and_the_same_refresh_token(
    server: RunningServer, owner: Account
) -> None:
    refresh = token_response(server, owner.registry_auth, offline_token="true").json()[
        "refresh_token"
    ]
    scope = f"repository:{owner.namespace}/web:pull"

    response = post_token(server, grant_type="refresh_token", refresh_token=refresh, scope=scope)

    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] == refresh
    assert response.json()["scope"] == scope
    assert granted(response) == {f"repository:{owner.namespace}/web": ["pull"]}


def test_an_access_token_is_no_refresh_token(server: RunningServer, owner: Account) -> None:
    access = token_response(server, owner.registry_auth).json()["token"]

    response = post_token(server, grant_type="refresh_token", refresh_token=access)

    assert response.status_code == 401
    assert "refresh token is invalid" in response.json()["errors"][0]["message"]


def test_a_registry_password_reset_ends_older_refresh_tokens(
    server: RunningServer, account: Account
) -> None:
    before = token_response(server, account.registry_auth, offline_token="true").json()
    new_password = "a-new-registry-password"

    reset = httpx.put(
        f"{server.url}{API}/me/registry-password",
        json={"password": new_password},
        auth=account.api_auth,
    )
    assert reset.status_code == 200, reset.text

    refreshed = post_token(
        server, grant_type="refresh_token", refresh_token=before["refresh_token"]
    )
    assert refreshed.status_code == 401
    assert "log in again" in refreshed.json()["errors"][0]["message"]
    assert token_response(server, account.registry_auth).status_code == 401
    after = token_response(server, (account.name, new_password), offline_token="true").json()
    again = post_token(server, grant_type="refresh_token", refresh_token=after["refresh_token"])
    assert again.status_code == 200, again.text
    assert_not_logged(
        server,
        account.registry_password,
        new_password,
        before["refresh_token"],
        after["refresh_token"],
        before["token"],
    )


def test_revoking_an_access_token_ends_its_refresh_tokens(
    server: RunningServer, owner: Account
) -> None:
    token = new_access_token(server, owner, "pull")
    auth = (owner.name, str(token["secret"]))
    refresh = token_response(server, auth, offline_token="true").json()["refresh_token"]
    assert post_token(server, grant_type="refresh_token", refresh_token=refresh).status_code == 200

    revoked = httpx.delete(f"{server.url}{API}/tokens/{token['id']}", auth=owner.api_auth)
    assert revoked.status_code == 204

    response = post_token(server, grant_type="refresh_token", refresh_token=refresh)
    assert response.status_code == 401
    assert "revoked" in response.json()["errors"][0]["message"]
    assert token_response(server, auth).status_code == 401


def test_lifetime_service_and_issuer_come_from_the_settings(tuned_server: RunningServer) -> None:
    short_lived = tuned_server
    account = new_account(short_lived, ADMIN)
    query = {"service": "registry.example.test"}

    response = httpx.get(f"{short_lived.url}/auth/token", params=query, auth=account.registry_auth)
    challenge = httpx.get(f"{short_lived.url}/v2/").headers["www-authenticate"]

    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 60
    claims = jwt_claims(response.json()["token"])
    assert (claims["aud"], claims["iss"]) == ("registry.example.test", "moorage-tests")
    assert claims["exp"] - claims["iat"] == 60
    assert 'service="registry.example.test"' in challenge
    assert token_response(short_lived, account.registry_auth).status_code == 400


def test_a_token_lifetime_under_a_minute_stops_the_deployment(tmp_path: Path) -> None:
    from tests.conftest import RunningServer

    running = RunningServer(tmp_path / "data", env={"MOORAGE_AUTH__TOKEN_LIFETIME_SECONDS": "59"})

    result = running.cli("migrate")

    assert result.returncode == 2, result.stderr
    assert "auth.token_lifetime_seconds" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("lifetime", ["59", "3601", "soon", "-1"])
def test_token_lifetimes_out_of_range_are_refused(
    monkeypatch: pytest.MonkeyPatch, lifetime: str
) -> None:
    monkeypatch.setenv("MOORAGE_AUTH__TOKEN_LIFETIME_SECONDS", lifetime)

    with pytest.raises(ConfigurationError, match=r"auth\.token_lifetime_seconds"):
        load_settings()


def test_a_token_lifetime_of_one_minute_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_AUTH__TOKEN_LIFETIME_SECONDS", "60")

    assert load_settings().auth.token_lifetime_seconds == 60
