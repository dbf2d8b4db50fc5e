"""Blobs in a dict: for unit tests, and nothing survives the process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from moorage.clock import utc_now
from moorage.errors import RangeInvalidError
from moorage.oci.digest import Digest
from moorage.storage.base import (
    BlobMissingError,
    ChunkObserver,
    StoredBlob,
    StoredUpload,
    UploadMissingError,
)


class MemoryBlobStore:
    """Blobs and uploads held in memory."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._uploads: dict[str, bytearray] = {}
        # When each blob or upload was last written, by digest or upload id.
        self._written: dict[str, datetime] = {}

    async def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""
        self._uploads[upload_id] = bytearray()
        self._written[upload_id] = utc_now()

    async def append_upload(
        self,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        observer: ChunkObserver | None = None,
        known_size: int | None = None,
    ) -> int:
        """Append a stream to an upload, return its new total size."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadMissingError(upload_id)
        async for chunk in chunks:
            if observer is not None:
                observer(chunk)
            upload += chunk
        self._written[upload_id] = utc_now()
        return len(upload)

    async def truncate_upload(self, upload_id: str, size: int) -> None:
        """Cut an upload back to `size` bytes."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadMissingError(upload_id)
        del upload[size:]

    async def upload_size(self, upload_id: str) -> int:
        """How many bytes the upload holds."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadMissingError(upload_id)
        return len(upload)

    async def read_upload(self, upload_id: str) -> AsyncIterator[bytes]:
        """Stream back what an upload holds so far."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadMissingError(upload_id)
        yield bytes(upload)

    async def flush_upload(self, upload_id: str) -> None:
        """Nothing to make durable in memory; only checks that the upload exists."""
        if upload_id not in self._uploads:
            raise UploadMissingError(upload_id)

    async def commit_upload(self, upload_id: str, digest: Digest, size: int | None = None) -> None:
        """Make an upload the blob `digest`."""
        upload = self._uploads.get(upload_id)
        if upload is None:
            raise UploadMissingError(upload_id)
        if size is not None and len(upload) != size:
            raise RangeInvalidError(f"upload {upload_id} changed after it was verified")
        del self._uploads[upload_id]
        written = self._written.pop(upload_id, utc_now())
        if str(digest) not in self._blobs:
            self._blobs[str(digest)] = bytes(upload)
            self._written[str(digest)] = written

    async def delete_upload(self, upload_id: str) -> None:
        """Drop an upload."""
        self._uploads.pop(upload_id, None)
        self._written.pop(upload_id, None)

    async def blob_size(self, digest: Digest) -> int | None:
        """The size of a stored blob, or None."""
        blob = self._blobs.get(str(digest))
        return None if blob is None else len(blob)

    async def read_blob(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a range of a stored blob."""
        blob = self._blobs.get(str(digest))
        if blob is None:
            raise BlobMissingError(str(digest))
        yield blob[start : None if end is None else end + 1]

    async def put_blob(self, digest: Digest, content: bytes) -> None:
        """Store small verified content."""
        if str(digest) not in self._blobs:
            self._blobs[str(digest)] = content
            self._written[str(digest)] = utc_now()

    async def delete_blob(self, digest: Digest) -> None:
        """Remove a stored blob."""
        self._blobs.pop(str(digest), None)
        self._written.pop(str(digest), None)

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every stored blob."""
        for digest, content in list(self._blobs.items()):
            yield StoredBlob(Digest.parse(digest), len(content), self._written[digest])

    async def list_uploads(self) -> AsyncIterator[StoredUpload]:
        """Every upload in progress."""
        for upload_id, content in list(self._uploads.items()):
            yield StoredUpload(upload_id, len(content), self._written[upload_id])

    async def redirect_url(self, digest: Digest) -> str | None:
        """Never: blobs in memory are served by the registry itself."""
        return None
