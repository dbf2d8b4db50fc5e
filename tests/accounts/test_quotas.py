"""Quotas as a deployment lives with them: limits from settings and overrides, enforced on
pushes and namespaces, freed by deletes, raced by concurrent pushes, checked by the CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.accounts.quota_support import (
    Account,
    admin_api,
    denial_message,
    new_account,
    quota_server,
    set_limits,
)
from tests.conftest import RunningServer
from tests.support import (
    OCI_MANIFEST,
    image_manifest,
    push_blob,
    push_image,
    push_manifest,
    sha256,
    start_upload,
)

# The defaults of the module's server, from MOORAGE_QUOTAS__* settings.
REPOSITORIES, TAGS, NAMESPACES = 2, 3, 2


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose accounts get 2 repositories, 3 tags per repository, 2 namespaces."""
    running = quota_server(
        tmp_path_factory.mktemp("quotas") / "data", REPOSITORIES, TAGS, NAMESPACES
    )
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


@pytest.fixture
def account(deployment: RunningServer) -> Account:
    """A fresh account on the deployment, with the default limits."""
    return new_account(deployment)


@pytest.fixture(scope="module")
def tagger(deployment: RunningServer) -> Account:
    """An account with room for many repositories, so tests of tags each take a new one."""
    shared = new_account(deployment, "tagger")
    set_limits(deployment, shared.name, repositories=50)
    return shared


@pytest.fixture(scope="module")
def racer(deployment: RunningServer) -> Account:
    """An account with the default 100 tags per repository, for the concurrent pushes."""
    shared = new_account(deployment, "racer")
    set_limits(deployment, shared.name, repositories=10, tags_per_repository=100)
    return shared


def tag_quota_message(repository: str, limit: int = TAGS) -> str:
    return (
        f"tag quota exceeded: {limit} tags per repository {repository}; request more in the console"
    )


def repository_quota_message(account: Account, repository: str) -> str:
    return (
        f"repository quota exceeded: {REPOSITORIES} repositories per user for {account.name},"
        f" so {repository} cannot be created; request more in the console"
    )


def tags_of(registry: httpx.Client, repository: str) -> list[str]:
    response = registry.get(f"/v2/{repository}/tags/list")
    assert response.status_code == 200, response.text
    tags: list[str] = response.json()["tags"]
    return tags


def variant(manifest: bytes, label: str) -> bytes:
    """The same image with an annotation, so that it has a digest of its own."""
    document = json.loads(manifest)
    document["annotations"] = {"org.example.label": label}
    return json.dumps(document).encode()


def test_a_new_tag_past_the_limit_is_denied_and_a_retag_is_not(tagger: Account) -> None:
    repository = tagger.repository()
    with tagger.registry() as registry:
        for number in range(TAGS):
            push_image(registry, repository, f"t{number}", layers=1)
        manifest = image_manifest(registry, repository, layers=1)

        refused = push_manifest(registry, repository, "one-too-many", manifest)
        retagged = push_manifest(registry, repository, "t0", manifest)
        untagged = variant(manifest, "untagged")
        by_digest = push_manifest(registry, repository, sha256(untagged), untagged)

        assert denial_message(refused) == tag_quota_message(repository)
        assert retagged.status_code == 201, retagged.text
        assert by_digest.status_code == 201, by_digest.text
        assert tags_of(registry, repository) == ["t0", "t1", "t2"]
        now_t0 = registry.get(f"/v2/{repository}/manifests/t0", headers={"Accept": OCI_MANIFEST})
        assert now_t0.content == manifest


def test_deleting_a_tag_or_a_manifest_frees_its_slot_at_once(tagger: Account) -> None:
    repository = tagger.repository()
    with tagger.registry() as registry:
        digests = [push_image(registry, repository, tag, layers=1) for tag in ("a", "b", "c")]
        manifest = image_manifest(registry, repository, layers=1)
        assert push_manifest(registry, repository, "d", manifest).status_code == 403

        assert registry.delete(f"/v2/{repository}/manifests/b").status_code == 202
        after_tag_delete = push_manifest(registry, repository, "d", manifest)
        assert registry.delete(f"/v2/{repository}/manifests/{digests[0]}").status_code == 202
        after_manifest_delete = push_manifest(registry, repository, "e", manifest)
        full_again = push_manifest(registry, repository, "f", variant(manifest, "f"))

    assert after_tag_delete.status_code == 201, after_tag_delete.text
    assert after_manifest_delete.status_code == 201, after_manifest_delete.text
    assert denial_message(full_again) == tag_quota_message(repository)
    with tagger.api() as api:
        assert api.get("/quota").json()["tags_per_repository"][repository] == TAGS


def test_a_new_repository_past_the_limit_is_refused_at_the_upload_post(
    account: Account,
) -> None:
    first, second, third = (account.repository() for _ in range(3))
    with account.registry() as registry:
        layer_digest = push_blob(registry, first, b"layer")
        push_blob(registry, second, b"layer")

        post = registry.post(f"/v2/{third}/blobs/uploads/")
        whole = registry.post(
            f"/v2/{third}/blobs/uploads/", params={"digest": layer_digest}, content=b"layer"
        )
        mount = registry.post(
            f"/v2/{third}/blobs/uploads/", params={"mount": layer_digest, "from": first}
        )
        manifest = push_manifest(registry, third, "v1", image_manifest(registry, first, 1))
        # Repositories that exist take uploads as before.
        start_upload(registry, first)
        catalog = registry.get("/v2/_catalog").json()["repositories"]

    for refused in (post, whole, mount, manifest):
        assert denial_message(refused) == repository_quota_message(account, third)
    assert "location" not in post.headers
    assert third not in catalog
    with account.api() as api:
        created = api.post(f"/namespaces/{account.namespace}/repositories", json={"name": "x"})
        assert api.get("/quota").json()["repositories"] == REPOSITORIES
    assert denial_message(created) == repository_quota_message(account, f"{account.namespace}/x")


def test_concurrent_pushes_to_new_repositories_take_only_the_free_slot(
    account: Account,
) -> None:
    with account.registry() as registry:
        push_blob(registry, account.repository(), b"first")
    candidates = [account.repository() for _ in range(6)]
    barrier = threading.Barrier(len(candidates))

    def push(repository: str) -> int:
        with account.registry() as registry:
            barrier.wait()
            started = registry.post(f"/v2/{repository}/blobs/uploads/")
            if started.status_code != 202:
                return started.status_code
            done = registry.put(
                started.headers["location"], params={"digest": sha256(b"blob")}, content=b"blob"
            )
            return done.status_code

    with ThreadPoolExecutor(len(candidates)) as pool:
        statuses = list(pool.map(push, candidates))

    assert sorted(statuses) == [201] + [403] * 5
    with account.api() as api:
        assert api.get("/quota").json()["repositories"] == REPOSITORIES


def test_concurrent_pushes_into_one_new_repository_share_its_slot(account: Account) -> None:
    with account.registry() as registry:
        push_blob(registry, account.repository(), b"first")
    repository = account.repository()
    blobs = [f"blob-{number}".encode() for number in range(6)]
    barrier = threading.Barrier(len(blobs))

    def push(blob: bytes) -> int:
        with account.registry() as registry:
            started = registry.post(f"/v2/{repository}/blobs/uploads/")
            barrier.wait()
            if started.status_code != 202:
                return started.status_code
            done = registry.put(
                started.headers["location"], params={"digest": sha256(blob)}, content=blob
            )
            return done.status_code

    with ThreadPoolExecutor(len(blobs)) as pool:
        statuses = list(pool.map(push, blobs))

    assert statuses == [201] * len(blobs), "the repository the first push made is no new one"
    with account.api() as api:
        assert api.get("/quota").json()["repositories"] == REPOSITORIES


def test_concurrent_pushes_of_one_new_tag_share_its_slot(tagger: Account) -> None:
    repository = tagger.repository()
    with tagger.registry() as registry:
        for number in range(TAGS - 1):
            push_image(registry, repository, f"t{number}", layers=1)
        manifest = image_manifest(registry, repository, layers=1)
    racing = [variant(manifest, str(number)) for number in range(6)]
    barrier = threading.Barrier(len(racing))

    def put(candidate: bytes) -> int:
        with tagger.registry() as registry:
            barrier.wait()
            return push_manifest(registry, repository, "latest", candidate).status_code

    with ThreadPoolExecutor(len(racing)) as pool:
        statuses = list(pool.map(put, racing))

    assert statuses == [201] * len(racing), "the tag the first push made is no new one"
    with tagger.registry() as registry:
        assert len(tags_of(registry, repository)) == TAGS


def push_tags_at_once(account: Account, repository: str, manifests: dict[str, bytes]) -> list[int]:
    """PUT every manifest under its tag from its own thread and client, all at once."""
    barrier = threading.Barrier(len(manifests))

    def put(tag: str) -> int:
        with account.registry() as registry:
            barrier.wait()
            return push_manifest(registry, repository, tag, manifests[tag]).status_code

    with ThreadPoolExecutor(len(manifests)) as pool:
        return list(pool.map(put, manifests))


@pytest.mark.parametrize("round_number", [1, 2, 3])
def test_twenty_concurrent_new_tags_on_ninety_five_take_exactly_five(
    racer: Account, round_number: int
) -> None:
    repository = racer.repository(f"round{round_number}")
    with racer.registry() as registry:
        manifest = image_manifest(registry, repository, layers=1)
        for number in range(95):
            assert push_manifest(registry, repository, f"old-{number}", manifest).status_code == 201
        racing = {f"new-{number}": variant(manifest, str(number)) for number in range(20)}

        statuses = push_tags_at_once(racer, repository, racing)

        assert sorted(statuses) == [201] * 5 + [403] * 15, statuses
        tags = tags_of(registry, repository)
        assert len(tags) == 100
        # A refused push leaves nothing behind: neither its tag nor its manifest.
        for tag, status in zip(racing, statuses, strict=True):
            stored = registry.get(f"/v2/{repository}/manifests/{sha256(racing[tag])}")
            assert (tag in tags, stored.status_code) == (
                (True, 200) if status == 201 else (False, 404)
            )
        # At the limit, moving an existing tag still works.
        assert push_manifest(registry, repository, "old-0", racing["new-0"]).status_code == 201


def test_one_namespace_past_the_limit_is_refused_by_the_cli(
    deployment: RunningServer, account: Account
) -> None:
    with account.api() as api:
        assert api.post("/namespaces", json={"name": f"{account.name}-2"}).status_code == 201

    refused = deployment.cli("namespace", "create", f"{account.name}-3", "--owner", account.name)

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"moorage: namespace quota exceeded: {NAMESPACES} namespaces per user for"
        f" {account.name}; request more in the console"
    )
    with account.api() as api:
        assert [item["name"] for item in api.get("/namespaces").json()] == [
            account.name,
            f"{account.name}-2",
        ]


def test_the_cli_shows_the_default_limits_sets_others_and_the_history_records_it(
    deployment: RunningServer, account: Account
) -> None:
    repository = account.repository()
    with account.registry() as registry:
        push_image(registry, repository, "v1", layers=1)
    with account.api() as api:
        before = api.get("/quota").json()

    changed = deployment.cli(
        "quota", "set", account.name, "--tags-per-repository", "7", "--namespaces", "4"
    )
    shown = deployment.cli("quota", "show", account.name)

    assert before == {
        "account": account.name,
        "limits": {
            "repositories": REPOSITORIES,
            "tags_per_repository": TAGS,
            "namespaces": NAMESPACES,
        },
        "repositories": 1,
        "namespaces": 1,
        "tags_per_repository": {repository: 1},
    }
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == (
        f"{account.name}: repositories={REPOSITORIES}, tags_per_repository=7, namespaces=4"
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"repositories\t1/{REPOSITORIES}",
        "namespaces\t1/4",
        f"tags {repository}\t1/7",
    ]
    with admin_api(deployment) as admin:
        history = admin.get(f"/users/{account.name}/quota/history").json()
    assert [(entry["changed_by"], entry["old"], entry["new"]) for entry in history] == [
        (
            "operator",
            {"repositories": REPOSITORIES, "tags_per_repository": TAGS, "namespaces": NAMESPACES},
            {"repositories": REPOSITORIES, "tags_per_repository": 7, "namespaces": 4},
        )
    ]


def test_quota_check_finds_no_drift_after_pushes_and_deletes_and_names_overuse(
    deployment: RunningServer,
) -> None:
    # The check looks at every account of the module's server: no test leaves one over a limit.
    account = new_account(deployment)
    set_limits(deployment, account.name, repositories=3)
    first, second, doomed = account.repository(), account.repository(), account.repository()
    with account.registry() as registry:
        digests = [push_image(registry, first, tag, layers=1) for tag in ("a", "b", "c")]
        push_image(registry, second, "a", layers=1)
        push_image(registry, doomed, "a", layers=1)
        registry.delete(f"/v2/{first}/manifests/a")
        registry.delete(f"/v2/{first}/manifests/{digests[1]}")
        push_image(registry, first, "d", layers=1)
        push_image(registry, first, "c", layers=1)
        push_image(registry, second, "b", layers=1)
    with account.api() as api:
        # A deleted repository stays restorable for a while, outside its namespace.
        deleted = api.delete(f"/repositories/{doomed}", params={"confirm": doomed})
        assert deleted.status_code == 204, deleted.text

    consistent = deployment.cli("quota", "check")
    set_limits(deployment, account.name, tags_per_repository=1, namespaces=0)
    try:
        over = deployment.cli("quota", "check")
    finally:
        set_limits(deployment, account.name, tags_per_repository=None, namespaces=None)

    assert consistent.returncode == 0, consistent.stdout + consistent.stderr
    assert consistent.stdout.strip() == "quota usage is consistent"
    assert over.returncode == 1, over.stdout + over.stderr
    assert sorted(over.stdout.splitlines()) == sorted(
        [
            f"{first} has 2 tags; the limit is 1",
            f"{second} has 2 tags; the limit is 1",
            f"{account.name} has 1 namespaces; the limit is 0",
        ]
    )
