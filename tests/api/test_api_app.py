"""The management API as a whole: its OpenAPI document, docs page and error format."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from tests.account_support import API, Account

if TYPE_CHECKING:
    from tests.conftest import RunningServer

# The endpoints of accounts, activation, tokens, namespaces, repositories and tags.
ENDPOINTS = {
    ("post", "/signup"),
    ("get", "/me"),
    ("put", "/me/password"),
    ("put", "/me/registry-password"),
    ("get", "/users"),
    ("post", "/users"),
    ("put", "/users/{name}/password"),
    ("get", "/tokens"),
    ("post", "/tokens"),
    ("delete", "/tokens/{token_id}"),
    ("get", "/namespaces"),
    ("post", "/namespaces"),
    ("delete", "/namespaces/{name}"),
    ("get", "/namespaces/{name}/repositories"),
    ("post", "/namespaces/{name}/repositories"),
    ("get", "/repositories/{repository}/tags"),
}


def test_the_openapi_document_is_served(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}{API}/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "moorage management API"
    assert document["servers"] == [{"url": API}]
    served = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served >= ENDPOINTS
    token_schema = document["components"]["schemas"]["TokenOut"]["properties"]
    assert "secret" not in token_schema


def test_the_docs_page_points_at_the_document(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}{API}/docs")

    assert response.status_code == 200
    assert f"{API}/openapi.json" in response.text


def test_unknown_routes_and_methods_answer_in_the_error_format(
    server: RunningServer, account: Account
) -> None:
    missing = httpx.get(f"{server.url}{API}/no-such-thing", auth=account.api_auth)
    wrong_method = httpx.patch(f"{server.url}{API}/me", auth=account.api_auth)

    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"]
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errors"][0]["code"] == "UNSUPPORTED"
