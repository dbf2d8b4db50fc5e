"""The quota endpoints of /api/v1: usage, overrides and their history, requests and decisions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from tests.accounts.quota_support import (
    ADMIN,
    Account,
    admin_api,
    denial_message,
    management_api,
    new_account,
    quota_server,
)
from tests.conftest import RunningServer
from tests.support import image_manifest, push_image, push_manifest

REPOSITORIES, TAGS, NAMESPACES = 2, 2, 2
DEFAULTS = {"repositories": REPOSITORIES, "tags_per_repository": TAGS, "namespaces": NAMESPACES}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose accounts get 2 repositories, 2 tags per repository, 2 namespaces."""
    running = quota_server(
        tmp_path_factory.mktemp("quota-api") / "data", REPOSITORIES, TAGS, NAMESPACES
    )
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


@pytest.fixture
def account(deployment: RunningServer) -> Account:
    """A fresh account with the default limits, for the management API only."""
    return new_account(deployment, pushes=False)


@pytest.fixture
def pusher(deployment: RunningServer) -> Account:
    """A fresh account with the default limits that also pushes images."""
    return new_account(deployment, "pusher")


@pytest.fixture(scope="module")
def bystander(deployment: RunningServer) -> Account:
    """An account whose limits the bad-input tests try, and fail, to change."""
    return new_account(deployment, "bystander", pushes=False)


@pytest.fixture
def admin(deployment: RunningServer) -> Iterator[httpx.Client]:
    with admin_api(deployment) as client:
        yield client


def assert_api_error(response: httpx.Response, status: int, code: str) -> str:
    """Assert an error in the registry's envelope; return its message."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["errors"][0]
    assert error["code"] == code, response.text
    message: str = error["message"]
    assert message
    return message


def ask(requester: Account, **body: object) -> httpx.Response:
    """POST a quota request as `requester`."""
    with requester.api() as api:
        return api.post("/quota-requests", json=body)


def test_usage_needs_credentials_and_shows_the_callers_own(
    deployment: RunningServer, pusher: Account
) -> None:
    account = pusher
    repository = account.repository()
    with account.registry() as registry:
        push_image(registry, repository, "v1", layers=1)
    with httpx.Client(base_url=f"{deployment.url}/api/v1") as anonymous:
        unauthenticated = anonymous.get("/quota")
    with management_api(deployment, account.name, "not-the-password") as wrong:
        bad_password = wrong.get("/quota")

    with account.api() as api:
        quota = api.get("/quota").json()

    for refused in (unauthenticated, bad_password):
        assert_api_error(refused, 401, "UNAUTHORIZED")
        assert refused.headers["www-authenticate"].startswith("Basic ")
    assert quota == {
        "account": account.name,
        "limits": DEFAULTS,
        "repositories": 1,
        "namespaces": 1,
        "tags_per_repository": {repository: 1},
    }


def test_an_admin_overrides_limits_and_the_history_says_who_when_old_and_new(
    admin: httpx.Client, account: Account
) -> None:
    before = datetime.now(UTC)

    raised = admin.put(f"/users/{account.name}/quota", json={"repositories": 5})
    more_tags = admin.put(f"/users/{account.name}/quota", json={"tags_per_repository": 4})
    reset = admin.put(f"/users/{account.name}/quota", json={"repositories": None})
    history = admin.get(f"/users/{account.name}/quota/history").json()

    assert raised.json()["limits"] == {**DEFAULTS, "repositories": 5}
    assert more_tags.json()["limits"] == {**DEFAULTS, "repositories": 5, "tags_per_repository": 4}
    assert reset.json()["limits"] == {**DEFAULTS, "tags_per_repository": 4}
    assert admin.get(f"/users/{account.name}/quota").json() == reset.json()
    assert [(entry["old"], entry["new"]) for entry in history] == [
        (DEFAULTS, {**DEFAULTS, "repositories": 5}),
        (
            {**DEFAULTS, "repositories": 5},
            {**DEFAULTS, "repositories": 5, "tags_per_repository": 4},
        ),
        (
            {**DEFAULTS, "repositories": 5, "tags_per_repository": 4},
            {**DEFAULTS, "tags_per_repository": 4},
        ),
    ]
    for entry in history:
        assert entry["changed_by"] == ADMIN
        assert entry["request_id"] is None
        assert before <= datetime.fromisoformat(entry["changed_at"]) <= datetime.now(UTC)


def test_only_admins_see_and_change_limits(admin: httpx.Client, bystander: Account) -> None:
    with bystander.api() as api:
        refused = [
            api.get(f"/users/{ADMIN}/quota"),
            api.put(f"/users/{bystander.name}/quota", json={"repositories": 100}),
            api.get(f"/users/{bystander.name}/quota/history"),
        ]
        assert api.get("/quota").json()["limits"] == DEFAULTS

    for response in refused:
        assert assert_api_error(response, 403, "DENIED") == "only administrators may do this"
    for unknown in (
        admin.get("/users/nobody-at-all/quota"),
        admin.put("/users/nobody-at-all/quota", json={"repositories": 3}),
        admin.get("/users/nobody-at-all/quota/history"),
    ):
        assert assert_api_error(unknown, 404, "NOT_FOUND") == "no account named 'nobody-at-all'"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"repositories": -1}, "repositories"),
        ({"tags_per_repository": 1_000_001}, "tags_per_repository"),
        ({"namespaces": 10**30}, "namespaces"),
        ({"repositories": "many"}, "repositories"),
        ({"repositories": 2.5}, "repositories"),
        ({"repositories": True}, "repositories"),
        ({"repos": 5}, "repos"),
        ({}, "limits"),
        ([5], "body"),
    ],
)
def test_bad_limits_are_refused_with_a_400_and_change_nothing(
    admin: httpx.Client, bystander: Account, body: object, field: str
) -> None:
    response = admin.put(f"/users/{bystander.name}/quota", json=body)

    assert_api_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": field}
    assert admin.get(f"/users/{bystander.name}/quota/history").json() == []
    assert admin.get(f"/users/{bystander.name}/quota").json()["limits"] == DEFAULTS


def test_an_approved_request_lets_the_next_push_through(
    admin: httpx.Client, pusher: Account
) -> None:
    account = pusher
    repository = account.repository()
    with account.registry() as registry:
        for tag in ("v1", "v2"):
            push_image(registry, repository, tag, layers=1)
        manifest = image_manifest(registry, repository, layers=1)
        assert push_manifest(registry, repository, "v3", manifest).status_code == 403

        asked = ask(account, tags_per_repository=3, reason="release candidates")
        request_id = asked.json()["id"]
        approved = admin.post(
            f"/quota-requests/{request_id}/approve", json={"comment": "for the release"}
        )
        pushed = push_manifest(registry, repository, "v3", manifest)
        full_again = push_manifest(registry, repository, "v4", manifest)

    assert asked.status_code == 201, asked.text
    assert asked.json() | {"created_at": None} == {
        "id": request_id,
        "account": account.name,
        "wanted": {"repositories": None, "tags_per_repository": 3, "namespaces": None},
        "reason": "release candidates",
        "status": "pending",
        "created_at": None,
        "decided_at": None,
        "decided_by": None,
        "comment": None,
    }
    assert approved.status_code == 200, approved.text
    decision = approved.json()
    assert (decision["status"], decision["decided_by"], decision["comment"]) == (
        "approved",
        ADMIN,
        "for the release",
    )
    assert decision["decided_at"] >= decision["created_at"]
    assert pushed.status_code == 201, pushed.text
    assert "3 tags per repository" in denial_message(full_again)
    [change] = admin.get(f"/users/{account.name}/quota/history").json()
    assert (change["changed_by"], change["request_id"], change["new"]) == (
        ADMIN,
        request_id,
        {**DEFAULTS, "tags_per_repository": 3},
    )


def test_an_approval_may_grant_other_numbers_and_a_rejection_grants_none(
    admin: httpx.Client, account: Account
) -> None:
    first = ask(account, repositories=50, reason="many services").json()
    second = ask(account, namespaces=5, reason="one per team").json()

    granted = admin.post(f"/quota-requests/{first['id']}/approve", json={"repositories": 10})
    rejected = admin.post(
        f"/quota-requests/{second['id']}/reject", json={"comment": "use one namespace"}
    )

    assert granted.json()["status"] == "approved"
    assert (rejected.json()["status"], rejected.json()["comment"]) == (
        "rejected",
        "use one namespace",
    )
    with account.api() as api:
        assert api.get("/quota").json()["limits"] == {**DEFAULTS, "repositories": 10}
    assert len(admin.get(f"/users/{account.name}/quota/history").json()) == 1


def test_a_decision_is_final_taken_by_an_admin_on_a_known_request(
    admin: httpx.Client, account: Account
) -> None:
    request_id = ask(account, repositories=3, reason="one more").json()["id"]
    with account.api() as api:
        by_the_requester = api.post(f"/quota-requests/{request_id}/approve", json={})
        still_pending = api.get("/quota-requests").json()[0]["status"]

    approved = admin.post(f"/quota-requests/{request_id}/approve", json={})
    again = admin.post(f"/quota-requests/{request_id}/approve", json={})
    rejected_after = admin.post(f"/quota-requests/{request_id}/reject", json={})

    assert assert_api_error(by_the_requester, 403, "DENIED") == "only administrators may do this"
    assert still_pending == "pending"
    assert approved.status_code == 200, approved.text
    for late in (again, rejected_after):
        message = assert_api_error(late, 409, "CONFLICT")
        assert message == f"quota request {request_id} was approved already"
    assert len(admin.get(f"/users/{account.name}/quota/history").json()) == 1


@pytest.mark.parametrize("request_id", ["987654", "0", "-1", "99999999999999999999"])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_on_an_unknown_request_is_404(
    admin: httpx.Client, request_id: str, decision: str
) -> None:
    response = admin.post(f"/quota-requests/{request_id}/{decision}", json={})

    assert assert_api_error(response, 404, "NOT_FOUND") == f"no quota request {request_id}"


def test_a_request_id_that_is_no_number_is_400(admin: httpx.Client) -> None:
    response = admin.post("/quota-requests/first/approve", json={})

    assert_api_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": "request_id"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "for ci"}, "repositories"),
        ({"repositories": 5, "reason": "  "}, "reason"),
        ({"repositories": 5, "reason": "x" * 2001}, "reason"),
        ({"repositories": 5}, "reason"),
        ({"repositories": -5, "reason": "less"}, "repositories"),
        ({"repositories": 10**7, "reason": "everything"}, "repositories"),
        ({"repositorys": 5, "reason": "typo"}, "repositorys"),
    ],
)
def test_a_bad_quota_request_is_400(bystander: Account, body: object, field: str) -> None:
    with bystander.api() as api:
        response = api.post("/quota-requests", json=body)

    assert_api_error(response, 400, "INVALID_FIELD")
    assert response.json()["errors"][0]["detail"] == {"field": field}


def test_a_request_is_only_for_ones_own_account(account: Account, bystander: Account) -> None:
    for_someone_else = ask(account, account=bystander.name, repositories=9, reason="theirs")
    for_oneself = ask(account, account=account.name, repositories=9, reason="mine")

    message = assert_api_error(for_someone_else, 403, "DENIED")
    assert message == "you can request more quota only for your own account"
    assert for_oneself.status_code == 201, for_oneself.text
    assert for_oneself.json()["account"] == account.name
    with bystander.api() as api:
        assert api.get("/quota-requests").json() == []


def test_requests_are_listed_to_their_owner_and_all_of_them_to_admins(
    deployment: RunningServer, admin: httpx.Client, account: Account
) -> None:
    other = new_account(deployment)
    mine = ask(account, repositories=3, reason="mine").json()
    theirs = ask(other, repositories=4, reason="theirs").json()
    admin.post(f"/quota-requests/{theirs['id']}/reject", json={})

    with account.api() as api:
        own = api.get("/quota-requests").json()
        everyone_refused = api.get("/quota-requests", params={"all": "true"})
        bad_status = api.get("/quota-requests", params={"status": "granted"})
    everyone = admin.get("/quota-requests", params={"all": "true"}).json()
    rejected = admin.get("/quota-requests", params={"all": "true", "status": "rejected"}).json()

    assert [item["id"] for item in own] == [mine["id"]]
    assert_api_error(everyone_refused, 403, "DENIED")
    assert_api_error(bad_status, 400, "INVALID_FIELD")
    ids = [item["id"] for item in everyone]
    assert {mine["id"], theirs["id"]} <= set(ids)
    assert ids == sorted(ids, reverse=True)
    assert theirs["id"] in [item["id"] for item in rejected]
    assert all(item["status"] == "rejected" for item in rejected)


def test_one_namespace_past_the_limit_is_refused_and_a_delete_frees_it(
    account: Account,
) -> None:
    with account.api() as api:
        created = [api.post("/namespaces", json={"name": f"{account.name}-{n}"}) for n in "ab"]
        third = api.post("/namespaces", json={"name": f"{account.name}-c"})
        used = api.get("/quota").json()["namespaces"]
        deleted = api.delete(f"/namespaces/{account.name}-b")
        after_delete = api.post("/namespaces", json={"name": f"{account.name}-c"})

    assert [response.status_code for response in created] == [201, 201]
    assert denial_message(third) == (
        f"namespace quota exceeded: {NAMESPACES} namespaces per user for {account.name};"
        " request more in the console"
    )
    assert used == NAMESPACES
    assert deleted.status_code == 204, deleted.text
    assert after_delete.status_code == 201, after_delete.text
