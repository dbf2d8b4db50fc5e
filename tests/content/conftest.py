"""Services over a real metadata database of their own (see tests/databases.py) and memory blobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.databases import database_url

from moorage.accounts.quotas import QuotaService
from moorage.content.blobs import BlobService
from moorage.content.manifests import ManifestService
from moorage.content.uploads import UploadService
from moorage.metadata.database import Database
from moorage.settings import Settings
from moorage.storage.memory import MemoryBlobStore

EXPIRY_SECONDS = 3600


@dataclass
class Content:
    """The content services of one deployment, and what they share."""

    database: Database
    store: MemoryBlobStore
    quotas: QuotaService
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService

    def restarted_uploads(self) -> UploadService:
        """A new upload service on the same database and storage, as after a restart."""
        return UploadService(self.database, self.store, EXPIRY_SECONDS, self.quotas)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def content(tmp_path: Path) -> AsyncIterator[Content]:
    database = Database(database_url(tmp_path))
    await database.migrate()
    store = MemoryBlobStore()
    quotas = QuotaService(database, Settings().quotas)
    yield Content(
        database=database,
        store=store,
        quotas=quotas,
        uploads=UploadService(database, store, EXPIRY_SECONDS, quotas),
        blobs=BlobService(database, store),
        manifests=ManifestService(database, quotas),
    )
    await database.close()
