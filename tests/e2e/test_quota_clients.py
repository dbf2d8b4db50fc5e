"""skopeo meets quotas: pushes up to each limit pass, the one past it fails with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.accounts.quota_support import (
    Account,
    admin_api,
    denial_message,
    new_account,
    quota_server,
)
from tests.conftest import RunningServer
from tests.e2e.clients import Skopeo, access_log
from tests.e2e.layout import OciLayout, random_image

REPOSITORIES, TAGS = 2, 2


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose accounts get 2 repositories and 2 tags per repository."""
    running = quota_server(
        tmp_path_factory.mktemp("quota-e2e") / "data", repositories=REPOSITORIES, tags=TAGS
    )
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


@pytest.fixture
def account(deployment: RunningServer) -> Account:
    return new_account(deployment)


@pytest.fixture
def skopeo(account: Account, tmp_path: Path) -> Skopeo:
    """skopeo logged in as the test's account."""
    return Skopeo(account.as_client_user(), tmp_path / "skopeo")


@pytest.fixture
def source(tmp_path: Path) -> OciLayout:
    """An OCI layout with two small images, tagged `one` and `two`."""
    layout = OciLayout(tmp_path / "source").create()
    layout.add_image(random_image(layers=1), "one")
    layout.add_image(random_image(layers=1), "two")
    return layout


def refusal(skopeo: Skopeo, source: str, destination: str) -> str:
    """What skopeo says on stderr when the registry refuses its push, on one line.

    skopeo prints the spec's error code and message: `denied: <message>` for 403 DENIED.
    """
    with pytest.raises(AssertionError) as failure:
        skopeo.copy(source, destination)
    stderr = str(failure.value).split("stderr:", 1)[1]
    return " ".join(stderr.split())


def test_tags_up_to_the_limit_then_a_denial_that_skopeo_shows(
    account: Account, skopeo: Skopeo, source: OciLayout
) -> None:
    repository = account.repository()
    remote = f"docker://{account.server.host}/{repository}"
    for tag in ("v1", "v2"):
        skopeo.copy(f"oci:{source.path}:one", f"{remote}:{tag}")

    said = refusal(skopeo, f"oci:{source.path}:one", f"{remote}:v3")

    assert (
        f"denied: tag quota exceeded: {TAGS} tags per repository {repository};"
        " request more in the console"
    ) in said
    # Moving a tag at the limit is no new tag: it goes through.
    skopeo.copy(f"oci:{source.path}:two", f"{remote}:v1")
    with account.registry() as registry:
        tags = registry.get(f"/v2/{repository}/tags/list").json()["tags"]
    assert sorted(tags) == ["v1", "v2"]


def test_repositories_up_to_the_limit_then_a_denial_before_any_byte(
    account: Account, skopeo: Skopeo, source: OciLayout
) -> None:
    host = account.server.host
    first, second, third = (account.repository() for _ in range(3))
    for repository in (first, second):
        skopeo.copy(f"oci:{source.path}:one", f"docker://{host}/{repository}:v1")

    said = refusal(skopeo, f"oci:{source.path}:two", f"docker://{host}/{third}:v1")
    with account.registry() as registry:
        post = registry.post(f"/v2/{third}/blobs/uploads/")

    expected = (
        f"repository quota exceeded: {REPOSITORIES} repositories per user for {account.name},"
        f" so {third} cannot be created; request more in the console"
    )
    assert f"denied: {expected}" in said
    assert denial_message(post) == expected
    # skopeo was stopped at its first POST: no upload session, no bytes, no manifest.
    requests = [
        (line["method"], line["status"])
        for line in access_log(account.server)
        if str(line.get("path", "")).startswith(f"/v2/{third}/")
        and line["method"] not in ("HEAD", "GET")
    ]
    assert requests
    assert set(requests) == {("POST", 403)}


def test_a_deleted_tag_and_an_approved_request_each_make_room(
    account: Account, skopeo: Skopeo, source: OciLayout
) -> None:
    repository = account.repository()
    remote = f"docker://{account.server.host}/{repository}"
    for tag in ("v1", "v2"):
        skopeo.copy(f"oci:{source.path}:one", f"{remote}:{tag}")
    with account.registry() as registry:
        deleted = registry.delete(f"/v2/{repository}/manifests/v1")
    assert deleted.status_code == 202, deleted.text

    skopeo.copy(f"oci:{source.path}:two", f"{remote}:v3")
    assert "tag quota exceeded" in refusal(skopeo, f"oci:{source.path}:two", f"{remote}:v4")

    with account.api() as api:
        asked = api.post("/quota-requests", json={"tags_per_repository": 3, "reason": "v4"})
    with admin_api(account.server) as admin:
        approved = admin.post(f"/quota-requests/{asked.json()['id']}/approve", json={})
    assert approved.status_code == 200, approved.text

    skopeo.copy(f"oci:{source.path}:two", f"{remote}:v4")
    with account.registry() as registry:
        tags = registry.get(f"/v2/{repository}/tags/list").json()["tags"]
    assert sorted(tags) == ["v2", "v3", "v4"]
