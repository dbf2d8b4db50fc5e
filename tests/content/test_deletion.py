"""Deletion with a restore window: the service in-process, then what skopeo sees on a server."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import func, select
from tests.content.deployment_support import (
    OCI_MANIFEST,
    Deployment,
    open_deployment,
    push_image,
    push_index,
    put_manifest,
    tag_digests,
)
from tests.e2e.clients import Skopeo
from tests.e2e.layout import Image, OciLayout, random_image, sha256

from moorage.errors import (
    ConflictError,
    FieldInvalidError,
    ManifestUnknownError,
    NameUnknownError,
)
from moorage.metadata.tables import deleted_tags, manifests, repositories
from moorage.oci.digest import Digest
from moorage.settings import QuotaSettings

if TYPE_CHECKING:
    from tests.conftest import RunningServer

REPOSITORY = "test/deleting"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    opened = await open_deployment(tmp_path)
    yield opened
    await opened.database.close()


async def row_count(deployment: Deployment, table: object) -> int:
    async with deployment.database.reading() as connection:
        query = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int((await connection.execute(query)).scalar_one())


@pytest.mark.anyio
async def test_a_deleted_tag_leaves_its_twin_and_comes_back(deployment: Deployment) -> None:
    image = await push_image(deployment, REPOSITORY, "one")
    await put_manifest(deployment, REPOSITORY, "two", image.manifest, OCI_MANIFEST)

    await deployment.deletion.delete_tag(REPOSITORY, "one", "tester")

    assert await tag_digests(deployment, REPOSITORY) == {"two": image.digest}
    [item] = await deployment.deletion.list_deleted("test")
    assert (item.kind, item.repository, item.tag, item.digest) == (
        "tag",
        REPOSITORY,
        "one",
        image.digest,
    )
    assert item.deleted_by == "tester"
    assert item.restorable_until == item.deleted_at + timedelta(days=7)
    await deployment.deletion.restore_reference(f"{REPOSITORY}:one")
    assert await tag_digests(deployment, REPOSITORY) == {"one": image.digest, "two": image.digest}
    assert await deployment.deletion.list_deleted("test") == []


@pytest.mark.anyio
async def test_a_manifest_deleted_by_digest_takes_every_tag_with_it(
    deployment: Deployment,
) -> None:
    kept = await push_image(deployment, REPOSITORY, "kept")
    image = await push_image(deployment, REPOSITORY, "one")
    await put_manifest(deployment, REPOSITORY, "two", image.manifest, OCI_MANIFEST)

    await deployment.deletion.delete_manifest(REPOSITORY, Digest.parse(image.digest), None)

    assert await tag_digests(deployment, REPOSITORY) == {"kept": kept.digest}
    with pytest.raises(ManifestUnknownError):
        await deployment.manifests.get(REPOSITORY, Digest.parse(image.digest))
    deleted = await deployment.deletion.list_deleted("test")
    assert sorted((item.tag, item.digest) for item in deleted) == [
        ("one", image.digest),
        ("two", image.digest),
    ]
    await deployment.deletion.restore_reference(f"{REPOSITORY}:two")
    assert (await deployment.manifests.get(REPOSITORY, "two")).digest == image.digest
    assert (await deployment.manifests.get(REPOSITORY, Digest.parse(image.digest))).content == (
        image.manifest
    )


@pytest.mark.anyio
async def test_a_reused_tag_name_refuses_the_restore(deployment: Deployment) -> None:
    await push_image(deployment, REPOSITORY, "v1")
    await deployment.deletion.delete_tag(REPOSITORY, "v1", None)
    newer = await push_image(deployment, REPOSITORY, "v1")

    with pytest.raises(ConflictError) as refused:
        await deployment.deletion.restore_reference(f"{REPOSITORY}:v1")

    assert refused.value.message == (
        f"tag {REPOSITORY}:v1 cannot be restored: the tag name has since been reused"
    )
    assert await tag_digests(deployment, REPOSITORY) == {"v1": newer.digest}


@pytest.mark.anyio
async def test_a_restore_over_quota_is_a_conflict(tmp_path: Path) -> None:
    limits = QuotaSettings(tags_per_repository=1, repositories_per_user=1)
    deployment = await open_deployment(tmp_path, quotas=limits)
    try:
        await push_image(deployment, REPOSITORY, "v1")
        await deployment.deletion.delete_tag(REPOSITORY, "v1", None)
        await push_image(deployment, REPOSITORY, "v2")
        await deployment.deletion.delete_repository(REPOSITORY, REPOSITORY, None)
        await push_image(deployment, "test/newer", "v1")

        with pytest.raises(ConflictError) as repository_refused:
            await deployment.deletion.restore_reference(REPOSITORY)
        await deployment.deletion.delete_repository("test/newer", "test/newer", None)
        await deployment.deletion.restore_reference(REPOSITORY)
        with pytest.raises(ConflictError) as tag_refused:
            await deployment.deletion.restore_reference(f"{REPOSITORY}:v1")

        assert repository_refused.value.message == (
            f"repository {REPOSITORY} cannot be restored: repository quota exceeded:"
            f" 1 repositories per user for owner, so {REPOSITORY} cannot be created;"
            " request more in the console"
        )
        assert tag_refused.value.message == (
            f"tag {REPOSITORY}:v1 cannot be restored: tag quota exceeded: 1 tags per repository"
            f" {REPOSITORY}; request more in the console"
        )
        usage = await deployment.quotas.usage("owner")
        assert (usage.repositories, usage.tags) == (1, {REPOSITORY: 1})
    finally:
        await deployment.database.close()


@pytest.mark.anyio
async def test_a_deleted_repository_counts_no_quota_and_comes_back_whole(
    tmp_path: Path,
) -> None:
    deployment = await open_deployment(tmp_path)
    try:
        image = await push_image(deployment, REPOSITORY, "v1")
        index = await push_index(deployment, REPOSITORY, "multi")
        before = await tag_digests(deployment, REPOSITORY)

        await deployment.deletion.delete_repository(REPOSITORY, REPOSITORY, "owner")

        assert (await deployment.quotas.usage("owner")).repositories == 0
        with pytest.raises(NameUnknownError):
            await deployment.manifests.list_tags(REPOSITORY, None, None)
        [item] = await deployment.deletion.list_deleted("test")
        assert (item.kind, item.repository, item.deleted_by) == ("repository", REPOSITORY, "owner")
        await deployment.deletion.restore("test", item.id)
        assert await tag_digests(deployment, REPOSITORY) == before
        for child in [image, *index.children]:
            stored = await deployment.manifests.get(REPOSITORY, Digest.parse(child.digest))
            assert stored.content == child.manifest
        assert (await deployment.quotas.usage("owner")).repositories == 1
    finally:
        await deployment.database.close()


@pytest.mark.anyio
async def test_a_reused_repository_name_refuses_the_restore(deployment: Deployment) -> None:
    await push_image(deployment, REPOSITORY, "v1")
    await deployment.deletion.delete_repository(REPOSITORY, REPOSITORY, None)
    await push_image(deployment, REPOSITORY, "v2")

    with pytest.raises(ConflictError, match="the name has since been reused"):
        await deployment.deletion.restore_reference(REPOSITORY)


@pytest.mark.anyio
async def test_with_no_retention_deletion_is_immediate(tmp_path: Path) -> None:
    deployment = await open_deployment(tmp_path, retention=timedelta(0))
    try:
        image = await push_image(deployment, REPOSITORY, "v1")
        await put_manifest(deployment, REPOSITORY, "twin", image.manifest, OCI_MANIFEST)
        other = await push_image(deployment, REPOSITORY, "other")
        await push_image(deployment, "test/whole", "v1")

        await deployment.deletion.delete_tag(REPOSITORY, "twin", None)
        await deployment.deletion.delete_manifest(REPOSITORY, Digest.parse(image.digest), None)
        await deployment.deletion.delete_repository("test/whole", "test/whole", None)

        assert await deployment.deletion.list_deleted("test") == []
        assert await tag_digests(deployment, REPOSITORY) == {"other": other.digest}
        assert await row_count(deployment, deleted_tags) == 0
        assert await row_count(deployment, manifests) == 1
        assert await row_count(deployment, repositories) == 1
        with pytest.raises(NameUnknownError):
            await deployment.deletion.restore_reference(f"{REPOSITORY}:twin")
    finally:
        await deployment.database.close()


@pytest.mark.anyio
async def test_deleting_what_does_not_exist_is_not_found(deployment: Deployment) -> None:
    await push_image(deployment, REPOSITORY, "v1")
    missing = Digest.parse("sha256:" + "0" * 64)

    for deleting, error in [
        (deployment.deletion.delete_tag(REPOSITORY, "v2", None), ManifestUnknownError),
        (deployment.deletion.delete_tag("test/nothing", "v1", None), ManifestUnknownError),
        (deployment.deletion.delete_manifest(REPOSITORY, missing, None), ManifestUnknownError),
        (
            deployment.deletion.delete_repository("test/nothing", "test/nothing", None),
            NameUnknownError,
        ),
        (deployment.deletion.restore("test", "tag-999"), NameUnknownError),
        (deployment.deletion.restore_reference("test/nothing"), NameUnknownError),
    ]:
        with pytest.raises(error):
            await deleting


@pytest.mark.anyio
async def test_a_repository_is_deleted_only_when_its_name_is_repeated(
    deployment: Deployment,
) -> None:
    await push_image(deployment, REPOSITORY, "v1")

    for confirmation in (None, "test/other", REPOSITORY.upper()):
        with pytest.raises(FieldInvalidError) as refused:
            await deployment.deletion.delete_repository(REPOSITORY, confirmation, None)
        assert refused.value.message == (
            f"deleting {REPOSITORY} removes every tag in it; to confirm, repeat its name"
            f" exactly: confirm={REPOSITORY}"
        )
    assert list(await tag_digests(deployment, REPOSITORY)) == ["v1"]


# What skopeo sees on a real server.


@pytest.fixture
def skopeo(server: RunningServer, tmp_path: Path) -> Skopeo:
    return Skopeo(server, tmp_path / "skopeo")


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """The management API as the tester account."""
    auth = (server.username or "", f"account-{server.username}-secret")
    with httpx.Client(base_url=f"{server.url}/api/v1", auth=auth, timeout=60) as client:
        yield client


def a_repository() -> str:
    return f"test/deleting/{uuid.uuid4().hex[:10]}"


def pull_digests(skopeo: Skopeo, remote: str, into: Path) -> tuple[dict[str, str], set[str]]:
    """Pull every tag of `remote` (host/repo) with skopeo: each tag's digest, and every blob's."""
    tags = json.loads(skopeo.on_registry("list-tags", f"docker://{remote}"))["Tags"]
    layout = OciLayout(into)
    for tag in tags:
        skopeo.copy(f"docker://{remote}:{tag}", f"oci:{into}:{tag}", "--all", "--preserve-digests")
    blobs = {f"sha256:{path.name}" for path in (into / "blobs" / "sha256").iterdir()}
    return {tag: str(layout.tagged(tag)["digest"]) for tag in tags}, blobs


def pull_failure(skopeo: Skopeo, reference: str) -> str:
    """What skopeo says when it cannot fetch `reference`, with the repository name blanked."""
    with pytest.raises(AssertionError) as failed:
        skopeo.inspect_raw(f"docker://{reference}")
    said = str(failed.value).split("stderr:", 1)[1]
    return re.sub(r'time="[^"]*"', "", re.sub(r"test/[a-z0-9/]+", "REPOSITORY", said)).strip()


def push_twins(server: RunningServer, skopeo: Skopeo, tmp_path: Path) -> tuple[Image, str]:
    """An image pushed by skopeo under tags `one` and `two`; the image and host/repository."""
    image = random_image(layers=2)
    source = OciLayout(tmp_path / "source").create()
    source.add_image(image, "one")
    remote = f"{server.host}/{a_repository()}"
    for tag in ("one", "two"):
        skopeo.copy(f"oci:{source.path}:one", f"docker://{remote}:{tag}")
    return image, remote


def test_the_twin_of_a_deleted_tag_stays_pullable(
    server: RunningServer, client: httpx.Client, skopeo: Skopeo, tmp_path: Path
) -> None:
    image, remote = push_twins(server, skopeo, tmp_path)
    repository = remote.split("/", 1)[1]

    deleted = client.delete(f"/v2/{repository}/manifests/one")

    assert deleted.status_code == 202, deleted.text
    tagged, blobs = pull_digests(skopeo, remote, tmp_path / "pulled")
    assert tagged == {"two": image.digest}
    assert blobs == {image.digest, *image.blobs()}
    assert "manifest unknown" in pull_failure(skopeo, f"{remote}:one")


def test_a_manifest_deleted_by_digest_loses_every_tag_until_restored(
    server: RunningServer, skopeo: Skopeo, api: httpx.Client, tmp_path: Path
) -> None:
    image, remote = push_twins(server, skopeo, tmp_path)
    repository = remote.split("/", 1)[1]

    # skopeo deletes by digest, whatever reference it is given.
    skopeo.on_registry("delete", f"docker://{remote}:one")

    assert json.loads(skopeo.on_registry("list-tags", f"docker://{remote}"))["Tags"] == []
    for tag in ("one", "two"):
        assert "manifest unknown" in pull_failure(skopeo, f"{remote}:{tag}")
        restored = api.post(f"/namespaces/test/deleted/{deleted_id(api, repository, tag)}/restore")
        assert restored.status_code == 200, restored.text
    tagged, blobs = pull_digests(skopeo, remote, tmp_path / "pulled")
    assert tagged == {"one": image.digest, "two": image.digest}
    assert blobs == {image.digest, *image.blobs()}


def deleted_id(api: httpx.Client, repository: str, tag: str | None = None) -> str:
    """The id under which the API lists a deleted repository, or one of its tags."""
    listed = api.get("/namespaces/test/deleted")
    assert listed.status_code == 200, listed.text
    [item] = [
        item for item in listed.json() if item["repository"] == repository and item["tag"] == tag
    ]
    item_id: str = item["id"]
    return item_id


def test_a_deleted_repository_is_gone_then_restored_whole_by_cli_and_api(
    server: RunningServer, skopeo: Skopeo, api: httpx.Client, tmp_path: Path
) -> None:
    source = OciLayout(tmp_path / "source").create()
    single, platforms = random_image(layers=2), [random_image(1, "amd64"), random_image(1, "arm64")]
    source.add_image(single, "single")
    index = source.add_index(platforms, "multi")
    repository = a_repository()
    remote = f"{server.host}/{repository}"
    for tag in ("single", "multi"):
        skopeo.copy(f"oci:{source.path}:{tag}", f"docker://{remote}:{tag}", "--all")
    pushed = pull_digests(skopeo, remote, tmp_path / "before")
    assert pushed[0] == {"single": single.digest, "multi": sha256(index)}
    assert pushed[1] == {
        sha256(index),
        *(digest for image in [single, *platforms] for digest in [image.digest, *image.blobs()]),
    }
    counted = api.get("/quota").json()
    never_pushed = pull_failure(skopeo, f"{server.host}/{a_repository()}:single")
    assert "manifest unknown" in never_pushed

    for restore_by in ("cli", "api"):
        deleted = api.delete(f"/repositories/{repository}", params={"confirm": repository})
        assert deleted.status_code == 204, deleted.text

        assert pull_failure(skopeo, f"{remote}:single") == never_pushed
        usage = api.get("/quota").json()
        assert usage["repositories"] == counted["repositories"] - 1
        assert repository not in usage["tags_per_repository"]

        if restore_by == "cli":
            restored = server.cli("restore", repository)
            assert restored.returncode == 0, restored.stderr
            assert restored.stdout.strip() == f"restored {repository}"
        else:
            answer = api.post(f"/namespaces/test/deleted/{deleted_id(api, repository)}/restore")
            assert answer.status_code == 200, answer.text
            assert answer.json()["kind"] == "repository"

        assert pull_digests(skopeo, remote, tmp_path / restore_by) == pushed
        assert api.get("/quota").json() == counted
