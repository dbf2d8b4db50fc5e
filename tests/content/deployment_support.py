"""The content services of one deployment in-process: their own metadata database, filesystem blobs.

Images are pushed through the same services the /v2 handlers call, so a test reads and
writes exactly what a server would, without the cost of starting one.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from tests.databases import database_url

from moorage.accounts.namespaces import NamespaceService
from moorage.accounts.quotas import QuotaService
from moorage.accounts.users import AccountService
from moorage.content.archive import ArchiveService
from moorage.content.deletion import DeletionService
from moorage.content.manifests import ManifestService
from moorage.content.uploads import Chunk, UploadService
from moorage.metadata.database import Database
from moorage.oci.digest import Digest, digest_bytes
from moorage.settings import QuotaSettings
from moorage.storage.filesystem import FilesystemBlobStore

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass
class Deployment:
    """Database, storage and the services deletion and backups use."""

    root: Path
    database: Database
    store: FilesystemBlobStore
    quotas: QuotaService
    uploads: UploadService
    manifests: ManifestService
    deletion: DeletionService
    archives: ArchiveService


@dataclass
class Pushed:
    """An image or index as pushed: its manifest bytes and every blob under it, by digest."""

    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    children: list[Pushed] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return str(digest_bytes(self.manifest))


# Every deployment has this account, owning namespace `test`, so that its quotas apply.
OWNER, NAMESPACE = "owner", "test"


async def open_deployment(
    root: Path,
    retention: timedelta = timedelta(days=7),
    quotas: QuotaSettings | None = None,
) -> Deployment:
    """Migrated services over a fresh database and blob folder under `root`."""
    database = Database(database_url(root))
    await database.migrate()
    store = FilesystemBlobStore(root / "blobs")
    quota_service = QuotaService(database, quotas or QuotaSettings())
    manifests = ManifestService(database, quota_service)
    await AccountService(database).create(OWNER, f"account-{OWNER}-secret")
    await NamespaceService(database, quota_service).create(NAMESPACE, OWNER)
    return Deployment(
        root=root,
        database=database,
        store=store,
        quotas=quota_service,
        uploads=UploadService(database, store, 3600, quota_service),
        manifests=manifests,
        deletion=DeletionService(database, quota_service, retention),
        archives=ArchiveService(database, store, manifests, quota_service),
    )


async def _body(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def push_blob(deployment: Deployment, repository: str, content: bytes) -> str:
    """Upload one blob in one request; its digest."""
    digest = digest_bytes(content)
    await deployment.uploads.upload_whole(repository, digest, Chunk(_body(content)))
    return str(digest)


def descriptor(media_type: str, content: bytes, **extra: object) -> dict[str, object]:
    """An OCI descriptor of `content`."""
    return {"mediaType": media_type, "digest": str(digest_bytes(content)), "size": len(content)}


async def push_image(
    deployment: Deployment,
    repository: str,
    tag: str | None,
    layers: int = 2,
    layer_size: int = 4096,
) -> Pushed:
    """A random image: config and layers uploaded, the manifest stored under `tag`."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()})
    blobs = [config.encode(), *(os.urandom(layer_size) for _ in range(layers))]
    for blob in blobs:
        await push_blob(deployment, repository, blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, blobs[0]),
            "layers": [descriptor(OCI_LAYER, layer) for layer in blobs[1:]],
        }
    ).encode()
    pushed = Pushed(manifest, {str(digest_bytes(blob)): blob for blob in blobs})
    await put_manifest(deployment, repository, tag, pushed.manifest, OCI_MANIFEST)
    return pushed


async def push_index(
    deployment: Deployment, repository: str, tag: str, platforms: int = 2
) -> Pushed:
    """A multi-platform index of fresh images, each stored by digest, the index under `tag`."""
    children = [await push_image(deployment, repository, None) for _ in range(platforms)]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, child.manifest) for child in children],
        }
    ).encode()
    await put_manifest(deployment, repository, tag, index, OCI_INDEX)
    return Pushed(index, children=children)


async def put_manifest(
    deployment: Deployment, repository: str, tag: str | None, manifest: bytes, media_type: str
) -> None:
    """Store a manifest under a tag, or by its digest when `tag` is None."""
    reference: str | Digest = tag if tag is not None else digest_bytes(manifest)
    await deployment.manifests.put(repository, reference, manifest, media_type)


async def tag_digests(deployment: Deployment, repository: str) -> dict[str, str]:
    """Every tag of a repository and the digest it names."""
    names = await deployment.manifests.list_tags(repository, None, None)
    return {name: (await deployment.manifests.get(repository, name)).digest for name in names}


async def read_blob(deployment: Deployment, digest: str) -> bytes:
    """A stored blob's bytes."""
    return b"".join([chunk async for chunk in deployment.store.read_blob(Digest.parse(digest))])
