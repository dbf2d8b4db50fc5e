"""ArchiveService in-process: what an export holds, imports bit-identical, damage refused whole."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.content.deployment_support import (
    Deployment,
    Pushed,
    open_deployment,
    push_image,
    push_index,
    put_manifest,
    read_blob,
    tag_digests,
)

from moorage.errors import (
    ArchiveInvalidError,
    BlobUnknownError,
    DeniedError,
    DigestInvalidError,
    ManifestUnknownError,
    NameInvalidError,
    NameUnknownError,
    ResourceUnknownError,
)
from moorage.metadata.tables import repositories, repository_blobs, upload_sessions
from moorage.oci.digest import Digest, digest_bytes
from moorage.settings import QuotaSettings

pytestmark = pytest.mark.anyio

SOURCE = "test/source"
REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    opened = await open_deployment(tmp_path)
    yield opened
    await opened.database.close()


async def export(deployment: Deployment, repository: str, tag: str | None = None) -> bytes:
    plan = await deployment.archives.plan_export(repository, tag)
    archive = b"".join([chunk async for chunk in deployment.archives.stream(plan)])
    assert len(archive) == plan.length
    return archive


def members(archive: bytes) -> dict[str, bytes | None]:
    """Every member of a tar by name: file content, or None for a folder."""
    found: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as reader:
        for member in reader:
            handle = reader.extractfile(member) if member.isfile() else None
            found[member.name] = handle.read() if handle else None
    return found


def every_blob(image: Pushed) -> dict[str, bytes]:
    """The manifest and every blob under an image or index, by digest."""
    found = {image.digest: image.manifest, **image.blobs}
    for child in image.children:
        found.update(every_blob(child))
    return found


def rebuild(archive: bytes, order: list[str], change: dict[str, bytes] | None = None) -> bytes:
    """The archive's files again, in `order`, named with a leading `./`, some replaced."""
    files = {name: content for name, content in members(archive).items() if content is not None}
    files.update(change or {})
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w", format=tarfile.GNU_FORMAT) as writer:
        for name in order:
            member = tarfile.TarInfo(f"./{name}")
            member.size = len(files[name])
            writer.addfile(member, io.BytesIO(files[name]))
    return output.getvalue()


async def assert_nothing_stored(deployment: Deployment, repository: str) -> None:
    async with deployment.database.reading() as connection:
        named = select(func.count()).where(repositories.c.name == repository)
        assert (await connection.execute(named)).scalar_one() == 0
        sessions = select(func.count()).select_from(upload_sessions)
        assert (await connection.execute(sessions)).scalar_one() == 0
    assert list((deployment.root / "blobs" / "uploads").iterdir()) == []


async def test_an_export_is_an_oci_layout_of_every_tag(deployment: Deployment) -> None:
    image = await push_image(deployment, SOURCE, "v1")
    await put_manifest(deployment, SOURCE, "v1-twin", image.manifest, image_type(image))
    index = await push_index(deployment, SOURCE, "multi")

    archive = await export(deployment, SOURCE)

    found = members(archive)
    assert json.loads(found["oci-layout"] or b"") == {"imageLayoutVersion": "1.0.0"}
    listed = json.loads(found["index.json"] or b"")
    assert {entry["annotations"][REF_NAME]: entry["digest"] for entry in listed["manifests"]} == {
        "v1": image.digest,
        "v1-twin": image.digest,
        "multi": index.digest,
    }
    expected = {**every_blob(image), **every_blob(index)}
    assert {
        name: content for name, content in found.items() if name.startswith("blobs/sha256/")
    } == {
        f"blobs/sha256/{digest.removeprefix('sha256:')}": blob for digest, blob in expected.items()
    }
    assert found["blobs"] is None and found["blobs/sha256"] is None
    assert archive == await export(deployment, SOURCE), "the same repository, the same bytes"


async def test_an_export_of_one_tag_holds_only_that_image(deployment: Deployment) -> None:
    await push_image(deployment, SOURCE, "other")
    wanted = await push_index(deployment, SOURCE, "wanted")

    found = members(await export(deployment, SOURCE, "wanted"))

    listed = json.loads(found["index.json"] or b"")["manifests"]
    assert [(entry["annotations"][REF_NAME], entry["digest"]) for entry in listed] == [
        ("wanted", wanted.digest)
    ]
    blob_names = {name.rpartition("/")[2] for name in found if name.startswith("blobs/sha256/")}
    assert blob_names == {digest.removeprefix("sha256:") for digest in every_blob(wanted)}


async def test_an_export_is_refused_before_its_first_byte(deployment: Deployment) -> None:
    image = await push_image(deployment, SOURCE, "v1")
    layer = next(digest for digest in image.blobs if len(image.blobs[digest]) == 4096)

    with pytest.raises(NameUnknownError, match="repository test/missing is unknown"):
        await deployment.archives.plan_export("test/missing")
    with pytest.raises(ManifestUnknownError, match="tag v2 is unknown"):
        await deployment.archives.plan_export(SOURCE, "v2")
    await deployment.store.delete_blob(Digest.parse(layer))
    with pytest.raises(BlobUnknownError, match=f"blob {layer} of {SOURCE} is missing"):
        await deployment.archives.plan_export(SOURCE)


async def test_an_import_is_bit_identical(deployment: Deployment) -> None:
    image = await push_image(deployment, SOURCE, "v1")
    await put_manifest(deployment, SOURCE, "v1-twin", image.manifest, image_type(image))
    index = await push_index(deployment, SOURCE, "multi")
    archive = await export(deployment, SOURCE)

    result = await deployment.archives.import_archive("test/copy", io.BytesIO(archive))

    assert sorted(result.tags) == ["multi", "v1", "v1-twin"]
    assert (result.manifests, result.blobs) == (4, 9)
    assert await tag_digests(deployment, "test/copy") == await tag_digests(deployment, SOURCE)
    for pushed in [image, index, *index.children]:
        served = await deployment.manifests.get("test/copy", Digest.parse(pushed.digest))
        assert served.content == pushed.manifest
        for digest, content in pushed.blobs.items():
            assert await read_blob(deployment, digest) == content
    assert await export(deployment, "test/copy") == archive
    await assert_nothing_stored(deployment, "test/never")  # and no staged upload left


async def test_blobs_may_come_before_index_json(deployment: Deployment) -> None:
    image = await push_image(deployment, SOURCE, "v1")
    archive = await export(deployment, SOURCE)
    blob_names = [member_of(digest) for digest in every_blob(image)]
    reordered = rebuild(archive, [*blob_names, "index.json", "oci-layout"])

    await deployment.archives.import_archive("test/reordered", io.BytesIO(reordered))

    assert await tag_digests(deployment, "test/reordered") == {"v1": image.digest}


async def test_untagged_entries_are_imported_by_digest(deployment: Deployment) -> None:
    image = await push_image(deployment, SOURCE, "v1")
    archive = await export(deployment, SOURCE)
    index = json.loads(members(archive)["index.json"] or b"")
    del index["manifests"][0]["annotations"]
    everything = [name for name, content in members(archive).items() if content is not None]
    untagged = rebuild(archive, everything, {"index.json": json.dumps(index).encode()})

    result = await deployment.archives.import_archive("test/untagged", io.BytesIO(untagged))

    assert (result.tags, result.manifests) == ((), 1)
    assert await tag_digests(deployment, "test/untagged") == {}
    stored = await deployment.manifests.get("test/untagged", Digest.parse(image.digest))
    assert stored.content == image.manifest


async def test_an_import_needs_an_existing_namespace(deployment: Deployment) -> None:
    await push_image(deployment, SOURCE, "v1")
    archive = await export(deployment, SOURCE)

    with pytest.raises(ResourceUnknownError, match="there is no namespace elsewhere"):
        await deployment.archives.import_archive("elsewhere/copy", io.BytesIO(archive))
    with pytest.raises(NameInvalidError, match="give the repository as NAMESPACE/NAME"):
        await deployment.archives.import_archive("copy", io.BytesIO(archive))


def image_type(image: Pushed) -> str:
    media_type: str = json.loads(image.manifest)["mediaType"]
    return media_type


def damaged(archive: bytes, image: Pushed, case: str) -> bytes:
    """`archive` broken in the way `case` names."""
    found = members(archive)
    everything = [name for name, content in found.items() if content is not None]
    layer_name = member_of(image_layer(image))
    if case == "a flipped byte":
        flipped = bytearray(found[layer_name] or b"")
        flipped[100] ^= 0xFF
        return rebuild(archive, everything, {layer_name: bytes(flipped)})
    if case == "cut in a layer":
        return archive[: archive.index(image.blobs[image_layer(image)]) + 2000]
    if case == "not a tar":
        return b"PK\x03\x04" + bytes(4000)
    if case == "a manifest that is not JSON":
        index = {"schemaVersion": 2, "manifests": [descriptor(image_type(image), b"not json")]}
        replaced = {member_of(str(digest_bytes(b"not json"))): b"not json"}
        replaced["index.json"] = json.dumps(index).encode()
        return rebuild(archive, [*everything, *replaced.keys() - found.keys()], replaced)
    if case == "a wrong size":
        index = json.loads(found["index.json"] or b"")
        index["manifests"][0]["size"] += 1
        return rebuild(archive, everything, {"index.json": json.dumps(index).encode()})
    left_out = {"a missing layer": layer_name, "no index.json": "index.json"}.get(
        case, "oci-layout"
    )
    return rebuild(archive, [name for name in everything if name != left_out])


def descriptor(media_type: str, content: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(digest_bytes(content)), "size": len(content)}


def member_of(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


def image_layer(image: Pushed) -> str:
    return next(digest for digest, blob in image.blobs.items() if len(blob) == 4096)


DAMAGE = {
    "a flipped byte": (DigestInvalidError, "archive member blobs/sha256/.* has digest sha256:"),
    "cut in a layer": (ArchiveInvalidError, "the archive is damaged or truncated"),
    "a missing layer": (ArchiveInvalidError, "the archive lacks blob sha256:.* of manifest"),
    "no index.json": (ArchiveInvalidError, "the archive has no index.json"),
    "no oci-layout": (ArchiveInvalidError, "the archive has no oci-layout file"),
    "not a tar": (ArchiveInvalidError, "not a tar archive"),
    "a manifest that is not JSON": (ArchiveInvalidError, "manifest is not valid JSON"),
    "a wrong size": (ArchiveInvalidError, "bytes in the archive, but its descriptor says"),
}


@pytest.mark.parametrize("case", DAMAGE)
async def test_a_damaged_archive_is_refused_and_nothing_is_stored(
    deployment: Deployment, case: str
) -> None:
    image = await push_image(deployment, SOURCE, "v1")
    archive = damaged(await export(deployment, SOURCE), image, case)
    error, message = DAMAGE[case]

    with pytest.raises(error, match=message):
        await deployment.archives.import_archive("test/damaged", io.BytesIO(archive))

    await assert_nothing_stored(deployment, "test/damaged")


async def test_an_import_counts_against_the_quotas(tmp_path: Path) -> None:
    limits = QuotaSettings(tags_per_repository=1, repositories_per_user=2)
    deployment = await open_deployment(tmp_path, quotas=limits)
    try:
        await push_image(deployment, SOURCE, "v1")
        second = await push_image(deployment, "test/second", "v2")
        archive = await export(deployment, SOURCE)

        with pytest.raises(DeniedError, match="tag quota exceeded: 1 tags per repository"):
            await deployment.archives.import_archive("test/second", io.BytesIO(archive))
        with pytest.raises(DeniedError, match="repository quota exceeded: 2 repositories"):
            await deployment.archives.import_archive("test/third", io.BytesIO(archive))

        assert await tag_digests(deployment, "test/second") == {"v2": second.digest}
        async with deployment.database.reading() as connection:
            links = select(func.count()).select_from(repository_blobs)
            assert (await connection.execute(links)).scalar_one() == 6, "no link was added"
        await assert_nothing_stored(deployment, "test/third")
    finally:
        await deployment.database.close()
