"""The garbage collector against pushes that land between its plan and its removals.

Each test plans a run, then does what a concurrent client would, then lets the run remove what
it planned: whatever the push made used again must survive, readable. A real database (SQLite,
or PostgreSQL with MOORAGE_TEST_DATABASE=postgresql), a real filesystem store, no server: the
interleavings are forced, not hoped for.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from tests.databases import database_url

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
from moorage.content.blobs import BlobService
from moorage.content.deletion import DeletionService
from moorage.content.manifests import ManifestService
from moorage.content.uploads import Chunk, UploadService
from moorage.errors import ConflictError
from moorage.gc import GarbageCollector
from moorage.metadata.database import Database
from moorage.metadata.leases import Lease
from moorage.metadata.tables import deleted_tags, manifests, repository_blobs
from moorage.oci.digest import Digest, digest_bytes
from moorage.settings import Settings
from moorage.storage.filesystem import FilesystemBlobStore

pytestmark = pytest.mark.anyio

GRACE = timedelta(hours=1)
LONG_AGO = timedelta(hours=3)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class Registry:
    """The content services and a collector over one database and one blob folder."""

    database: Database
    store: PausingStore
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService
    deletion: DeletionService
    gc: GarbageCollector

    async def push_blob(self, repository: str, content: bytes) -> str:
        async def body() -> AsyncIterator[bytes]:
            yield content

        digest = digest_bytes(content)
        await self.uploads.upload_whole(repository, digest, Chunk(body(), None, len(content)))
        return str(digest)

    async def push_image(self, repository: str, tag: str | None, *layers: bytes) -> bytes:
        """Push a config and `layers`, then the manifest under `tag` (None: by digest)."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "id": os.urandom(8).hex()})
        descriptors = []
        for blob in [config.encode(), *layers]:
            digest = await self.push_blob(repository, blob)
            descriptors.append({"mediaType": "x", "digest": digest, "size": len(blob)})
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    **descriptors[0],
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                },
                "layers": [
                    {**d, "mediaType": "application/vnd.oci.image.layer.v1.tar"}
                    for d in descriptors[1:]
                ],
            }
        )
        await self.put_manifest(repository, tag, manifest)
        return manifest

    async def put_manifest(self, repository: str, tag: str | None, manifest: bytes) -> None:
        """PUT a manifest under `tag`, or by its digest when `tag` is None."""
        reference = digest_bytes(manifest) if tag is None else tag
        await self.manifests.put(repository, reference, manifest, json.loads(manifest)["mediaType"])

    async def read_blob(self, repository: str, digest: str) -> bytes:
        found = await self.blobs.stat(repository, Digest.parse(digest))
        return b"".join([part async for part in self.blobs.read(found, 0, found.size - 1)])

    async def age_everything(self) -> None:
        """Make every link and manifest look pushed long ago, past the grace period."""
        long_ago = utc_now() - LONG_AGO
        async with self.database.writing() as connection:
            await connection.execute(update(repository_blobs).values(touched_at=long_ago))
            await connection.execute(update(manifests).values(touched_at=long_ago))


class PausingStore(FilesystemBlobStore):
    """A filesystem store that can hold a commit just after the file is in place."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.committed = asyncio.Event()
        self.resume = asyncio.Event()
        self.pausing = False

    async def commit_upload(self, upload_id: str, digest: Digest, size: int | None = None) -> None:
        await super().commit_upload(upload_id, digest, size)
        if self.pausing:
            self.committed.set()
            await self.resume.wait()


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    database = Database(database_url(tmp_path))
    await database.migrate()
    store = PausingStore(tmp_path / "blobs")
    quotas = QuotaService(database, Settings().quotas)
    deletion = DeletionService(database, quotas, timedelta(0))
    yield Registry(
        database=database,
        store=store,
        uploads=UploadService(database, store, 24 * 3600, quotas),
        blobs=BlobService(database, store, GRACE / 2),
        manifests=ManifestService(database, quotas),
        deletion=deletion,
        gc=GarbageCollector(database, store, deletion, GRACE),
    )
    await database.close()


async def test_the_same_content_uploaded_during_a_run_survives(registry: Registry) -> None:
    content = os.urandom(4000)
    digest = await registry.push_blob("test/left", content)
    await registry.age_everything()
    plan = await registry.gc.plan()
    assert [blob.digest for blob in plan.blobs] == [digest]

    # Another repository uploads the same bytes: the file is already there, so the filesystem
    # store only drops the new upload, and the blob row gains a link.
    await registry.push_blob("test/right", content)
    done = await registry.gc.remove(plan)

    assert [link.repository for link in done.links] == ["test/left"]
    assert done.blobs == []
    assert done.spared == 1
    assert await registry.read_blob("test/right", digest) == content


async def test_a_run_waits_for_an_upload_whose_file_is_in_place(registry: Registry) -> None:
    content = os.urandom(4000)
    digest = await registry.push_blob("test/first", content)
    await registry.age_everything()
    plan = await registry.gc.plan()

    # The second upload finds the file there and drops its own copy; then it stops before
    # linking the blob. A run now must not delete the file this upload relies on.
    registry.store.pausing = True
    upload = asyncio.create_task(registry.push_blob("test/second", content))
    await registry.store.committed.wait()
    collection = asyncio.create_task(registry.gc.remove(plan))
    await asyncio.sleep(0.5)
    registry.store.resume.set()
    await upload
    done = await collection

    assert done.blobs == []
    assert await registry.read_blob("test/second", digest) == content


async def test_a_blob_uploaded_again_to_the_same_repository_survives(registry: Registry) -> None:
    content = os.urandom(1000)
    digest = await registry.push_blob("test/again", content)
    await registry.age_everything()
    plan = await registry.gc.plan()

    # The link existed already: the upload must still restart its grace period.
    await registry.push_blob("test/again", content)
    done = await registry.gc.remove(plan)

    assert done.links == [] and done.blobs == []
    assert await registry.read_blob("test/again", digest) == content


async def test_a_blob_looked_up_during_a_run_survives(registry: Registry) -> None:
    content = os.urandom(2000)
    digest = await registry.push_blob("test/looked-up", content)
    await registry.age_everything()
    plan = await registry.gc.plan()

    # A client HEADs the blob, finds it, and will push a manifest without uploading it.
    await registry.blobs.stat("test/looked-up", Digest.parse(digest))
    done = await registry.gc.remove(plan)

    assert done.links == [] and done.blobs == []
    assert done.spared == 2
    assert await registry.read_blob("test/looked-up", digest) == content


async def test_a_manifest_tagged_during_a_run_keeps_it_and_its_blobs(registry: Registry) -> None:
    layer = os.urandom(3000)
    manifest = await registry.push_image("test/tagged-late", None, layer)
    await registry.age_everything()
    plan = await registry.gc.plan()
    assert len(plan.manifests) == 1 and len(plan.blobs) == 2

    await registry.put_manifest("test/tagged-late", "v1", manifest)
    done = await registry.gc.remove(plan)

    assert done.manifests == [] and done.links == [] and done.blobs == []
    stored = await registry.manifests.get("test/tagged-late", "v1")
    assert stored.content == manifest
    assert await registry.read_blob("test/tagged-late", str(digest_bytes(layer))) == layer


async def test_an_index_pushed_during_a_run_keeps_its_children(registry: Registry) -> None:
    children = [await registry.push_image("test/multi", None, os.urandom(500)) for _ in range(2)]
    await registry.age_everything()
    plan = await registry.gc.plan()
    assert len(plan.manifests) == 2

    index = _index(children)
    await registry.put_manifest("test/multi", "latest", index)
    done = await registry.gc.remove(plan)

    assert done.manifests == [] and done.blobs == []
    for child in children:
        assert (await registry.manifests.get("test/multi", digest_bytes(child))).content == child


async def test_a_crash_leftover_file_adopted_during_a_run_survives(registry: Registry) -> None:
    content = os.urandom(1500)
    digest = digest_bytes(content)
    await registry.store.put_blob(digest, content)
    blob_file = registry.store.root / "blobs" / "sha256" / digest.encoded[:2] / digest.encoded
    old = (utc_now() - LONG_AGO).timestamp()
    os.utime(blob_file, (old, old))
    plan = await registry.gc.plan()
    assert [blob.digest for blob in plan.orphan_files] == [str(digest)]

    await registry.push_blob("test/adopted", content)
    done = await registry.gc.remove(plan)

    assert done.orphan_files == []
    assert await registry.read_blob("test/adopted", str(digest)) == content


async def test_a_moved_tag_gives_the_old_image_a_grace_period(registry: Registry) -> None:
    await registry.push_image("test/moving", "latest", os.urandom(100))
    await registry.age_everything()

    # A pull of the old image may still be under way when the tag moves.
    await registry.push_image("test/moving", "latest", os.urandom(100))
    assert (await registry.gc.plan()).manifests == []

    await registry.age_everything()
    assert len((await registry.gc.plan()).manifests) == 1


async def test_referrers_go_after_their_subject(registry: Registry) -> None:
    subject = await registry.push_image("test/signed", "v1", os.urandom(100))
    signature = _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/example.signature",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": await registry.push_blob("test/signed", b"{}"),
                "size": 2,
            },
            "layers": [],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": str(digest_bytes(subject)),
                "size": len(subject),
            },
        }
    )
    await registry.put_manifest("test/signed", None, signature)
    await registry.age_everything()
    assert (await registry.gc.plan()).manifests == []

    await registry.deletion.delete_tag("test/signed", "v1", "tester")
    done = await registry.gc.run()

    gone = [manifest.digest for manifest in done.manifests]
    assert gone == [str(digest_bytes(subject)), str(digest_bytes(signature))]
    assert done.spared == 0


async def test_restorable_deletions_keep_their_blobs_until_purged(registry: Registry) -> None:
    quotas = QuotaService(registry.database, Settings().quotas)
    keeping = DeletionService(registry.database, quotas, timedelta(days=7))
    collector = GarbageCollector(registry.database, registry.store, keeping, GRACE)
    await registry.push_image("test/restorable", "v1", os.urandom(2222))
    await keeping.delete_tag("test/restorable", "v1", "tester")
    await registry.age_everything()
    assert (await collector.run()).bytes_reclaimed == 0

    # Eight days later the window has closed: a dry run counts the purge and the bytes.
    async with registry.database.writing() as connection:
        await connection.execute(
            update(deleted_tags).values(deleted_at=utc_now() - timedelta(days=8))
        )
    planned = await collector.run(dry_run=True)
    assert planned.purged == 1 and len(planned.manifests) == 1 and len(planned.blobs) == 2
    done = await collector.run()
    assert done.purged == 1
    assert sorted(blob.digest for blob in done.blobs) == sorted(b.digest for b in planned.blobs)
    assert done.bytes_reclaimed == planned.bytes_reclaimed


async def test_one_collector_at_a_time(registry: Registry) -> None:
    other = Lease(registry.database, "gc", timedelta(minutes=5))
    await other.acquire()
    with pytest.raises(ConflictError, match="gc is held by"):
        await registry.gc.run()
    await other.release()
    await registry.gc.run()


async def test_an_expired_lease_is_taken_over(registry: Registry) -> None:
    stalled = Lease(registry.database, "gc", timedelta(0))
    await stalled.acquire()

    taker = Lease(registry.database, "gc", timedelta(minutes=5))
    await taker.acquire()

    with pytest.raises(ConflictError, match="taken over"):
        await stalled.keep()
    await stalled.release()
    with pytest.raises(ConflictError):
        await Lease(registry.database, "gc", timedelta(minutes=5)).acquire()


def _index(children: list[bytes]) -> bytes:
    return _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": str(digest_bytes(c)), "size": len(c)}
                for c in children
            ],
        }
    )
