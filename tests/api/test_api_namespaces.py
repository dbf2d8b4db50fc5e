"""The management API's namespaces, repositories and tags, for their owner only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.account_support import API, Account, account_of_tester, new_account, unique_name
from tests.support import push_blob, push_image

if TYPE_CHECKING:
    from tests.conftest import RunningServer


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def owner(server: RunningServer, admin: tuple[str, str]) -> Account:
    """An account whose namespace holds `web` (tags v1, v2, v3) and empty `api`, `db/main`."""
    account = new_account(server, admin)
    with httpx.Client(base_url=server.url, auth=account.registry_auth) as registry:
        for tag in ("v2", "v1", "v3"):
            push_image(registry, f"{account.namespace}/web", tag, layers=1)
        push_blob(registry, f"{account.namespace}/api", b"api")
        push_blob(registry, f"{account.namespace}/db/main", b"db")
    return account


@pytest.fixture(scope="module")
def stranger(server: RunningServer) -> Account:
    return account_of_tester(server)


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == code
    message: str = error["message"]
    return message


def test_namespaces_are_listed_created_and_deleted(api: httpx.Client, account: Account) -> None:
    name = unique_name("ns")

    created = api.post("/namespaces", json={"name": name}, auth=account.api_auth)
    listed = api.get("/namespaces", auth=account.api_auth)
    deleted = api.delete(f"/namespaces/{name}", auth=account.api_auth)

    assert created.status_code == 201
    assert created.json()["name"] == name
    assert created.json()["repository_count"] == 0
    assert [space["name"] for space in listed.json()] == sorted([account.namespace, name])
    assert deleted.status_code == 204
    assert [space["name"] for space in api.get("/namespaces", auth=account.api_auth).json()] == [
        account.namespace
    ]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("a", "2 to 30 characters"),
        ("a" * 31, "2 to 30 characters"),
        ("Upper", "lower-case letters"),
        ("trailing-", "start and end"),
        ("", "2 to 30 characters"),
    ],
)
def test_bad_namespace_names_are_explained(
    api: httpx.Client, account: Account, name: str, says: str
) -> None:
    response = api.post("/namespaces", json={"name": name}, auth=account.api_auth)

    assert says in assert_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": "name"}


def test_namespace_names_are_global(api: httpx.Client, owner: Account, stranger: Account) -> None:
    response = api.post("/namespaces", json={"name": owner.namespace}, auth=stranger.api_auth)

    assert "is taken" in assert_error(response, 409, "CONFLICT")


def test_only_an_empty_namespace_is_deleted(api: httpx.Client, owner: Account) -> None:
    response = api.delete(f"/namespaces/{owner.namespace}", auth=owner.api_auth)

    message = assert_error(response, 409, "CONFLICT")
    assert message == f"namespace {owner.namespace} still holds 3 repositories; delete them first"


def test_someone_elses_namespace_is_unknown_like_a_missing_one(
    api: httpx.Client, owner: Account, stranger: Account
) -> None:
    missing = unique_name("ns")
    pairs = [
        (
            api.delete(f"/namespaces/{name}", auth=stranger.api_auth),
            api.get(f"/namespaces/{name}/repositories", auth=stranger.api_auth),
            api.post(
                f"/namespaces/{name}/repositories", json={"name": "x"}, auth=stranger.api_auth
            ),
            api.get(f"/repositories/{name}/web/tags", auth=stranger.api_auth),
        )
        for name in (owner.namespace, missing)
    ]

    for theirs, nothing in zip(*pairs, strict=True):
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.text.replace(owner.namespace, "NS") == nothing.text.replace(missing, "NS")


def test_repositories_a_page_at_a_time(api: httpx.Client, owner: Account) -> None:
    path = f"/namespaces/{owner.namespace}/repositories"
    names = [f"{owner.namespace}/{name}" for name in ("api", "db/main", "web")]

    everything = api.get(path, auth=owner.api_auth).json()
    first = api.get(path, params={"n": 2}, auth=owner.api_auth).json()
    rest = api.get(path, params={"n": 2, "last": first["next_last"]}, auth=owner.api_auth).json()

    assert [repository["name"] for repository in everything["repositories"]] == names
    assert everything["next_last"] is None
    assert {r["name"]: r["tag_count"] for r in everything["repositories"]}[names[2]] == 3
    assert [repository["name"] for repository in first["repositories"]] == names[:2]
    assert first["next_last"] == names[1]
    assert [repository["name"] for repository in rest["repositories"]] == names[2:]
    assert rest["next_last"] is None


def test_repository_search(api: httpx.Client, owner: Account) -> None:
    path = f"/namespaces/{owner.namespace}/repositories"

    found = api.get(path, params={"search": "mai"}, auth=owner.api_auth).json()
    wildcard = api.get(path, params={"search": "%"}, auth=owner.api_auth).json()

    assert [r["name"] for r in found["repositories"]] == [f"{owner.namespace}/db/main"]
    assert wildcard["repositories"] == []


@pytest.mark.parametrize("n", ["0", "-1", "1001", "many"])
def test_bad_page_sizes_name_the_field(api: httpx.Client, owner: Account, n: str) -> None:
    response = api.get(
        f"/namespaces/{owner.namespace}/repositories", params={"n": n}, auth=owner.api_auth
    )

    assert_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": "n"}


def test_creating_an_empty_repository(
    server: RunningServer, api: httpx.Client, account: Account
) -> None:
    path = f"/namespaces/{account.namespace}/repositories"

    created = api.post(path, json={"name": "team/tool"}, auth=account.api_auth)
    again = api.post(path, json={"name": "team/tool"}, auth=account.api_auth)

    assert created.status_code == 201
    assert created.json()["name"] == f"{account.namespace}/team/tool"
    assert created.json()["tag_count"] == 0
    assert "exists already" in assert_error(again, 409, "CONFLICT")
    catalog = httpx.get(f"{server.url}/v2/_catalog", auth=account.registry_auth)
    assert catalog.json()["repositories"] == [f"{account.namespace}/team/tool"]


@pytest.mark.parametrize("name", ["", "UPPER", "a//b", "trailing/", "-dash", "x" * 300])
def test_bad_repository_names_name_the_field(
    api: httpx.Client, account: Account, name: str
) -> None:
    response = api.post(
        f"/namespaces/{account.namespace}/repositories", json={"name": name}, auth=account.api_auth
    )

    assert_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": "name"}


def test_tags_with_their_pull_commands(
    server: RunningServer, api: httpx.Client, owner: Account
) -> None:
    path = f"/repositories/{owner.namespace}/web/tags"

    everything = api.get(path, auth=owner.api_auth).json()
    page = api.get(path, params={"n": 1, "last": "v1"}, auth=owner.api_auth).json()

    assert [tag["name"] for tag in everything["tags"]] == ["v1", "v2", "v3"]
    assert everything["next_last"] is None
    first = everything["tags"][0]
    assert first["pull_command"] == f"docker pull {server.host}/{owner.namespace}/web:v1"
    assert first["digest"].startswith("sha256:")
    assert first["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert first["manifest_size"] > 0
    assert [tag["name"] for tag in page["tags"]] == ["v2"]
    assert page["next_last"] == "v2"


def test_tags_of_missing_repositories(api: httpx.Client, owner: Account) -> None:
    for path in [
        f"/repositories/{owner.namespace}/nothing/tags",
        f"/repositories/{owner.namespace}/tags",
        "/repositories/UPPER/case/tags",
    ]:
        assert_error(api.get(path, auth=owner.api_auth), 404, "NAME_UNKNOWN")
