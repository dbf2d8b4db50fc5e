"""Passwords and tokens never reach a log line, whatever logs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
import structlog
from tests.account_support import (
    API,
    Account,
    assert_not_logged,
    bearer,
    new_access_token,
    token_response,
)

from moorage.log import configure_logging, get_logger

if TYPE_CHECKING:
    from tests.conftest import RunningServer


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """In-process commands point the log at a stream that then closes: put it back after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_secret_fields_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "json")

    get_logger("tests").info(
        "something happened",
        password="hunter2-password",
        Token="a-token",
        refresh_token="a-refresh-token",
        authorization="Basic abc",
        account="alice",
    )

    line = json.loads(capsys.readouterr().err)
    assert line["password"] == line["Token"] == line["refresh_token"] == "[redacted]"
    assert line["authorization"] == "[redacted]"
    assert line["account"] == "alice"


def test_no_secret_of_a_whole_session_reaches_the_server_log(
    server: RunningServer, account: Account
) -> None:
    url = server.url
    token = new_access_token(server, account, "pull,push")
    secret = str(token["secret"])
    granted = token_response(
        server,
        account.registry_auth,
        f"repository:{account.namespace}/web:pull,push",
        offline_token="true",
    ).json()
    form = {"service": "moorage", "client_id": "tests", "access_type": "offline"}
    oauth = httpx.post(
        f"{url}/auth/token",
        data={**form, "grant_type": "password", "username": account.name, "password": secret},
    ).json()
    refreshed = httpx.post(
        f"{url}/auth/token",
        data={**form, "grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]},
    ).json()
    httpx.get(f"{url}/v2/", headers=bearer(granted["token"]))
    httpx.get(f"{url}/v2/", headers=bearer(refreshed["access_token"] + "tampered"))
    httpx.get(f"{url}/v2/", auth=(account.name, "a-wrong-password-123"))
    httpx.get(f"{url}/v2/_catalog", auth=(account.name, secret))
    httpx.put(
        f"{url}{API}/me/password",
        json={"current_password": "wrong-current-pw", "new_password": "short"},
        auth=account.api_auth,
    )
    httpx.put(
        f"{url}{API}/me/registry-password",
        json={"password": "next-registry-password"},
        auth=account.api_auth,
    )
    httpx.post(
        f"{url}{API}/users", json={"name": "x", "password": "admin-only-pw"}, auth=account.api_auth
    )

    assert_not_logged(
        server,
        account.password,
        account.registry_password,
        secret,
        granted["token"],
        granted["refresh_token"],
        oauth["access_token"],
        oauth["refresh_token"],
        refreshed["access_token"],
        "a-wrong-password-123",
        "wrong-current-pw",
        "next-registry-password",
        "admin-only-pw",
    )


def access_lines(server: RunningServer, request_id: str) -> list[dict[str, object]]:
    """The server's access line for one request."""
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    return [
        line
        for line in lines
        if line.get("logger_name") == "moorage.access" and line.get("request_id") == request_id
    ]


def test_access_lines_name_the_user_even_when_refused(
    server: RunningServer, account: Account
) -> None:
    responses = [
        httpx.get(f"{server.url}{API}/me", auth=account.api_auth),
        token_response(server, account.registry_auth),
        httpx.get(f"{server.url}/v2/someone-else/app/tags/list", auth=account.registry_auth),
        httpx.get(
            f"{server.url}/v2/someone-else/app/tags/list",
            headers=bearer(token_response(server, account.registry_auth).json()["token"]),
        ),
    ]

    for response in responses:
        (line,) = access_lines(server, response.headers["x-request-id"])
        assert line["user"] == account.name, line
        assert line["status"] == response.status_code
