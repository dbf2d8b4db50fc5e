"""Builds that fail end in `failed` (or `timed_out`, `cancelled`) with one clear line and a log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.builds.buildsupport import (
    create_rule,
    log_text,
    run_build,
    succeeded,
    unique_target,
    wait_build,
)
from tests.builds.gitrepos import commit, new_repository, serving
from tests.conftest import RunningServer, free_port

SCRATCH = {"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "x"}


def failed(api: httpx.Client, rule_id: str, ref: str | None = None) -> tuple[str, str]:
    """Run a rule that must fail; its one-line reason and its log."""
    build = run_build(api, rule_id, ref)
    assert build["state"] == "failed", build
    reason = build["reason"]
    assert reason and "\n" not in reason
    assert build["finished_at"] and build["image_digest"] is None
    log = log_text(api, build["id"])
    assert reason in log, "the log ends with the reason"
    return reason, log


def test_a_missing_dockerfile(api: httpx.Client, tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo", {"README": "no Dockerfile here"})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main", dockerfile="build/Dockerfile")

    reason, log = failed(api, rule["id"])

    assert reason == "the Dockerfile build/Dockerfile does not exist in the repository"
    assert "checked out refs/heads/main" in log


def test_an_unknown_ref(api: httpx.Client, tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo", SCRATCH)
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")

    reason, _ = failed(api, rule["id"], ref="no-such-branch")

    assert reason.startswith("ref no-such-branch is neither a branch nor a tag of file://")


def test_an_unreachable_repository(api: httpx.Client) -> None:
    rule = create_rule(api, git_url=f"http://127.0.0.1:{free_port()}/gone.git", ref="main")

    reason, log = failed(api, rule["id"])

    assert reason.startswith("cannot read the repository http://127.0.0.1:")
    assert "Failed to connect" in reason or "Connection refused" in log


def test_a_failing_run_step(api: httpx.Client, busybox_image: str, tmp_path: Path) -> None:
    dockerfile = f"FROM {busybox_image}\nRUN echo about to fail && exit 3\n"
    repo = new_repository(tmp_path / "repo", {"Dockerfile": dockerfile})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")

    reason, log = failed(api, rule["id"])

    assert reason.startswith("the build failed:")
    assert "exit status 3" in reason
    assert "about to fail" in log


def test_wrong_credentials_fail_and_right_ones_work_without_showing(
    api: httpx.Client, tmp_path: Path
) -> None:
    new_repository(tmp_path / "served" / "private", SCRATCH)
    token = "glpat-1234567890-very-secret"

    with serving(tmp_path / "served", ("builder", token)) as http:
        url = f"{http.url}/private"
        wrong = create_rule(
            api,
            git_url=url,
            ref="main",
            credentials={"username": "builder", "token": "not-the-token"},
        )
        right = create_rule(
            api, git_url=url, ref="main", credentials={"username": "builder", "token": token}
        )
        reason, log = failed(api, wrong["id"])
        build = succeeded(api, right["id"])

    assert "Authentication failed" in reason
    assert "not-the-token" not in log
    assert token not in log_text(api, build["id"])
    assert right["has_credentials"] and "credentials" not in right
    assert token not in api.get(f"/builds/rules/{right['id']}").text


@pytest.fixture(scope="module")
def other_api(build_server: RunningServer) -> Iterator[httpx.Client]:
    """The API as a second account, owning namespace other-space and no repository quota."""
    build_server.create_account("other-builder", ("other-space",))
    limited = build_server.cli("quota", "set", "other-builder", "--repositories", "0")
    assert limited.returncode == 0, limited.stderr
    auth = ("other-builder", "account-other-builder-secret")
    with httpx.Client(base_url=f"{build_server.url}/api/v1", auth=auth, timeout=60) as api:
        yield api


def test_quota_exceeded_on_push(other_api: httpx.Client, tmp_path: Path) -> None:
    repo = new_repository(tmp_path / "repo", SCRATCH)
    rule = create_rule(
        other_api, repository="other-space/app", git_url=f"file://{repo}", ref="main"
    )

    reason, log = failed(other_api, rule["id"])

    assert reason.startswith("pushing 127.0.0.1:")
    assert "repository quota exceeded" in reason
    assert "STEP 2/2" in log


def test_a_running_build_can_be_cancelled(
    api: httpx.Client, busybox_image: str, tmp_path: Path
) -> None:
    dockerfile = f"FROM {busybox_image}\nRUN echo started && sleep 60\n"
    repo = new_repository(tmp_path / "repo", {"Dockerfile": dockerfile})
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")
    build_id = api.post(f"/builds/rules/{rule['id']}/runs").json()["id"]
    follow = {"follow": "true"}

    with api.stream("GET", f"/builds/{build_id}/logs", params=follow) as stream:
        for line in stream.iter_lines():
            if '"line": "started"' in line:
                break
    cancelled = api.post(f"/builds/{build_id}/cancel")
    build = wait_build(api, build_id)

    assert cancelled.status_code == 200, cancelled.text
    assert build["state"] == "cancelled"
    assert build["duration_seconds"] < 30
    assert api.post(f"/builds/{build_id}/cancel").status_code == 409


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("dockerfile", "../Dockerfile", "'..'"),
        ("dockerfile", "/etc/passwd", "absolute"),
        ("build_dir", "app/../../..", "'..'"),
        ("build_dir", "/", "absolute"),
        ("git_url", "ext::sh -c id", "git_url"),
        ("tag_template", "{user}", "tag_template"),
    ],
)
def test_escaping_paths_and_bad_fields_are_refused_when_saved(
    api: httpx.Client, field: str, value: str, words: str
) -> None:
    fields = {"repository": unique_target(), "git_url": "https://example.com/a.git", "ref": "main"}

    refused = api.post("/builds/rules", json={**fields, field: value})

    assert refused.status_code == 400, refused.text
    error = refused.json()["errors"][0]
    assert error["code"] == "INVALID_FIELD"
    assert error["detail"] == {"field": field}
    assert words in error["message"]


def test_a_symlinked_dockerfile_leading_outside_fails_the_build(
    api: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "host-secret").write_text("FROM scratch\n")
    repo = new_repository(tmp_path / "repo", {"README": "x"})
    os.symlink(tmp_path / "host-secret", repo / "Dockerfile")
    os.symlink("/etc", repo / "context")
    commit(repo, {}, "symlinks")
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")
    other = create_rule(api, git_url=f"file://{repo}", ref="main", build_dir="context")

    reason, _ = failed(api, rule["id"])
    other_reason, _ = failed(api, other["id"])

    assert (
        reason
        == "the Dockerfile Dockerfile is a symlink that leads outside the repository; refused"
    )
    assert "the build directory context is a symlink that leads outside" in other_reason


def test_someone_elses_rule_answers_like_a_missing_one(
    api: httpx.Client, other_api: httpx.Client, tmp_path: Path
) -> None:
    repo = new_repository(tmp_path / "repo", SCRATCH)
    rule = create_rule(api, git_url=f"file://{repo}", ref="main")
    build = api.post(f"/builds/rules/{rule['id']}/runs").json()

    seen = other_api.get(f"/builds/rules/{rule['id']}")
    run = other_api.post(f"/builds/rules/{rule['id']}/runs")
    logs = other_api.get(f"/builds/{build['id']}/logs")
    missing = other_api.get("/builds/rules/0123456789abcdef0123456789abcdef")
    foreign = other_api.post(
        "/builds/rules",
        json={"repository": unique_target(), "git_url": f"file://{repo}", "ref": "main"},
    )

    assert seen.status_code == run.status_code == logs.status_code == missing.status_code == 404
    assert seen.json()["errors"][0]["message"] == f"no build rule {rule['id']}"
    assert foreign.status_code == 404, "the test namespace is not theirs"
    assert build["id"] not in other_api.get("/builds").text
    wait_build(api, build["id"])
