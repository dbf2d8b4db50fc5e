"""Push webhooks: signatures and tokens checked, payloads read, one build per matching push."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest
from tests.builds.buildsupport import create_rule, wait_build
from tests.builds.gitrepos import new_repository
from tests.conftest import RunningServer

from moorage.builds.rules import ResolvedRef
from moorage.builds.webhooks import PushEvent, read_push
from moorage.errors import InvalidInputError, UnauthorizedError

SECRET = "webhook-secret-for-tests"
PUSH = json.dumps({"ref": "refs/heads/main", "after": "a" * 40}).encode()


def signed(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(body: bytes, secret: str = SECRET, event: str = "push") -> dict[str, str]:
    return {"x-github-event": event, "x-hub-signature-256": f"sha256={signed(body, secret)}"}


def test_github_pushes_are_verified_by_hmac() -> None:
    assert read_push(github(PUSH), PUSH, SECRET) == PushEvent(
        "github", ResolvedRef("branch", "main"), "a" * 40
    )
    with pytest.raises(UnauthorizedError, match="github"):
        read_push(github(PUSH, "wrong"), PUSH, SECRET)
    with pytest.raises(UnauthorizedError):
        read_push({"x-github-event": "push"}, PUSH, SECRET)
    assert read_push(github(b"{}", event="ping"), b"{}", SECRET) is None


def test_gitea_gitlab_and_plain_pushes() -> None:
    tag_push = json.dumps({"ref": "refs/tags/v2", "after": "b" * 40}).encode()
    gitea = {"x-gitea-event": "push", "x-gitea-signature": signed(tag_push)}
    gitlab = {"x-gitlab-event": "Tag Push Hook", "x-gitlab-token": SECRET}
    plain = {"x-moorage-secret": SECRET}

    assert read_push(gitea, tag_push, SECRET) == PushEvent(
        "gitea", ResolvedRef("tag", "v2"), "b" * 40
    )
    assert read_push(gitlab, tag_push, SECRET) == PushEvent(
        "gitlab", ResolvedRef("tag", "v2"), "b" * 40
    )
    plain_push = read_push(plain, b'{"ref": "release/1"}', SECRET)
    assert plain_push == PushEvent("plain", ResolvedRef("branch", "release/1"), None)
    for headers in (
        {**gitea, "x-gitea-signature": signed(tag_push, "nope")},
        {**gitlab, "x-gitlab-token": "nope"},
        {"x-moorage-secret": "nope"},
        {},
    ):
        with pytest.raises(UnauthorizedError):
            read_push(headers, tag_push, SECRET)


def test_deleted_refs_and_bad_bodies() -> None:
    deleted = json.dumps({"ref": "refs/heads/x", "after": "0" * 40, "deleted": True}).encode()
    assert read_push(github(deleted), deleted, SECRET) is None
    with pytest.raises(InvalidInputError, match="not JSON"):
        read_push(github(b"nope"), b"nope", SECRET)
    with pytest.raises(InvalidInputError, match="no ref"):
        read_push(github(b"{}"), b"{}", SECRET)


def builds_of(api: httpx.Client, rule_id: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = api.get("/builds", params={"rule_id": rule_id}).json()
    return found


def test_a_wrong_signature_starts_nothing_and_a_right_one_exactly_one_build(
    build_server: RunningServer, api: httpx.Client, tmp_path: Path
) -> None:
    repo = new_repository(tmp_path / "repo", {"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "x"})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")
    secret = rule["webhook_secret"]
    hook = rule["webhook_url"]
    assert hook == f"{build_server.url}/api/v1/hooks/builds/{rule['id']}"
    other_branch = json.dumps({"ref": "refs/heads/dev", "after": "c" * 40}).encode()

    with httpx.Client(timeout=30) as anonymous:
        forged = anonymous.post(hook, content=PUSH, headers=github(PUSH, "guessed"))
        unsigned = anonymous.post(hook, content=PUSH, headers={"x-github-event": "push"})
        unknown = anonymous.post(
            f"{build_server.url}/api/v1/hooks/builds/{'f' * 32}", content=PUSH, headers=github(PUSH)
        )
        ignored = anonymous.post(hook, content=other_branch, headers=github(other_branch, secret))
        assert builds_of(api, rule["id"]) == []
        accepted = anonymous.post(hook, content=PUSH, headers=github(PUSH, secret))

    assert forged.status_code == unsigned.status_code == 401
    assert forged.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert unknown.status_code == 404
    assert ignored.status_code == 200 and ignored.json()["build_id"] is None
    assert accepted.status_code == 202, accepted.text
    builds = builds_of(api, rule["id"])
    assert [build["id"] for build in builds] == [accepted.json()["build_id"]]
    assert builds[0]["trigger"] == "webhook"
    build = wait_build(api, accepted.json()["build_id"])
    assert build["state"] == "succeeded"
    assert build["image"] == f"{rule['repository']}:main"
    assert "build webhook refused" in build_server.log_text()
