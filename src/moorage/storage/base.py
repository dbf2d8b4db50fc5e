"""The interface every blob storage driver implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from moorage.oci.digest import Digest

# Called with every piece of an upload as it is stored, in order; used to hash while writing.
ChunkObserver = Callable[[bytes], None]

# Bytes a driver reads or writes at a time; also the largest buffer it holds per request.
IO_CHUNK_BYTES = 1024 * 1024


class ContentMissingError(Exception):
    """The driver holds no data under this name."""


class UploadMissingError(ContentMissingError):
    """The driver holds no data for this upload id."""


class BlobMissingError(ContentMissingError):
    """The driver holds no blob of this digest."""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A blob as a driver holds it, for garbage collection and fsck."""

    digest: Digest
    size: int
    # When the content was last written; garbage collection spares what is younger than its
    # grace period, since the metadata of a push in progress may not be committed yet.
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """An in-progress upload as a driver holds it."""

    upload_id: str
    size: int
    modified_at: datetime


class BlobStore(Protocol):
    """Content-addressed blobs plus the in-progress uploads that become them."""

    async def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""

    async def append_upload(
        self,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        observer: ChunkObserver | None = None,
        known_size: int | None = None,
    ) -> int:
        """Append a stream to an upload, return its new total size.

        `known_size` is what `upload_size` answered just before, while the caller alone writes
        to the upload; a driver for which sizing an upload costs a request may trust it.
        """

    async def truncate_upload(self, upload_id: str, size: int) -> None:
        """Cut an upload back to `size` bytes, undoing a chunk that was refused."""

    async def upload_size(self, upload_id: str) -> int:
        """How many bytes the upload holds; `UploadMissingError` if none."""

    def read_upload(self, upload_id: str) -> AsyncIterator[bytes]:
        """Stream back what an upload holds so far."""

    async def flush_upload(self, upload_id: str) -> None:
        """Make what an upload holds durable, so that `commit_upload` has little left to do."""

    async def commit_upload(self, upload_id: str, digest: Digest, size: int | None = None) -> None:
        """Make a verified upload the blob `digest`; the upload is gone afterwards.

        With `size`, the bytes that were verified: an upload that holds any other number now
        (another request wrote to it meanwhile) is refused with `RangeInvalidError`.
        """

    async def delete_upload(self, upload_id: str) -> None:
        """Drop an upload; no error if it is already gone."""

    async def blob_size(self, digest: Digest) -> int | None:
        """The size of a stored blob, or None if it is not stored."""

    def read_blob(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream bytes `start`..`end` (inclusive; None means to the end) of a stored blob."""

    async def put_blob(self, digest: Digest, content: bytes) -> None:
        """Store small content already verified against `digest`."""

    async def delete_blob(self, digest: Digest) -> None:
        """Remove a stored blob; no error if it is already gone."""

    def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every stored blob, in no particular order; what appears or goes meanwhile may show."""

    def list_uploads(self) -> AsyncIterator[StoredUpload]:
        """Every in-progress upload, in no particular order."""

    async def redirect_url(self, digest: Digest) -> str | None:
        """A URL where clients may fetch the blob themselves, or None to serve it here."""
