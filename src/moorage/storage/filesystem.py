"""Blobs as files under one folder: written to a temporary file, fsynced, renamed into place."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread

from moorage.errors import DigestInvalidError, RangeInvalidError
from moorage.oci.digest import Digest
from moorage.storage.base import (
    IO_CHUNK_BYTES,
    BlobMissingError,
    ChunkObserver,
    ContentMissingError,
    StoredBlob,
    StoredUpload,
    UploadMissingError,
)


class FilesystemBlobStore:
    """Blobs at `<root>/blobs/<algorithm>/<first two hex>/<hex>`, uploads at `<root>/uploads/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs"
        self._uploads = root / "uploads"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)

    def _upload_path(self, upload_id: str) -> Path:
        return self._uploads / upload_id

    def _blob_path(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.encoded[:2] / digest.encoded

    async def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""
        await to_thread.run_sync(self._upload_path(upload_id).touch, 0o600, False)

    async def append_upload(
        self,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        observer: ChunkObserver | None = None,
        known_size: int | None = None,
    ) -> int:
        """Append a stream to the end of the upload's file, return its new total size."""
        path = self._upload_path(upload_id)
        try:
            handle = await to_thread.run_sync(open, path, "r+b")
        except FileNotFoundError:
            raise UploadMissingError(upload_id) from None
        try:
            await to_thread.run_sync(handle.seek, 0, os.SEEK_END)
            # Pieces are handed to the writer thread as they came: joining them into one
            # buffer first copied every byte twice and was most of the CPU an upload cost.
            pending: list[bytes] = []
            pending_bytes = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= IO_CHUNK_BYTES:
                    await to_thread.run_sync(_write, handle, pending, observer)
                    pending, pending_bytes = [], 0
            if pending:
                await to_thread.run_sync(_write, handle, pending, observer)
            return int(await to_thread.run_sync(handle.tell))
        finally:
            await to_thread.run_sync(handle.close)

    async def truncate_upload(self, upload_id: str, size: int) -> None:
        """Cut an upload back to `size` bytes."""
        try:
            await to_thread.run_sync(os.truncate, self._upload_path(upload_id), size)
        except FileNotFoundError:
            raise UploadMissingError(upload_id) from None

    async def upload_size(self, upload_id: str) -> int:
        """How many bytes the upload holds."""
        try:
            return (await to_thread.run_sync(self._upload_path(upload_id).stat)).st_size
        except FileNotFoundError:
            raise UploadMissingError(upload_id) from None

    async def read_upload(self, upload_id: str) -> AsyncIterator[bytes]:
        """Stream back what an upload holds so far."""
        async for chunk in _read_file(self._upload_path(upload_id), 0, None, UploadMissingError):
            yield chunk

    async def flush_upload(self, upload_id: str) -> None:
        """fsync an upload, so that the commit's own fsync finds nothing left to write."""
        try:
            await to_thread.run_sync(_fsync_file, self._upload_path(upload_id))
        except FileNotFoundError:
            raise UploadMissingError(upload_id) from None

    async def commit_upload(self, upload_id: str, digest: Digest, size: int | None = None) -> None:
        """Move a verified upload into place, durably."""
        await to_thread.run_sync(
            self._commit, self._upload_path(upload_id), self._blob_path(digest), size
        )

    @staticmethod
    def _commit(source: Path, target: Path, size: int | None) -> None:
        try:
            if size is not None and source.stat().st_size != size:
                raise RangeInvalidError(f"upload {source.name} changed after it was verified")
            if target.exists():
                source.unlink()
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(source, target)
        except FileNotFoundError:
            raise UploadMissingError(source.name) from None
        _fsync_dir(target.parent)

    async def delete_upload(self, upload_id: str) -> None:
        """Drop an upload."""
        await to_thread.run_sync(self._upload_path(upload_id).unlink, True)

    async def blob_size(self, digest: Digest) -> int | None:
        """The size of a stored blob, or None."""
        try:
            return (await to_thread.run_sync(self._blob_path(digest).stat)).st_size
        except FileNotFoundError:
            return None

    async def read_blob(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a range of a stored blob."""
        async for chunk in _read_file(self._blob_path(digest), start, end, BlobMissingError):
            yield chunk

    async def put_blob(self, digest: Digest, content: bytes) -> None:
        """Store small verified content durably."""
        await to_thread.run_sync(self._put, self._blob_path(digest), content)

    def _put(self, target: Path, content: bytes) -> None:
        if target.exists():
            return
        temporary = self._uploads / f"put-{uuid.uuid4().hex}"
        with temporary.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)
        _fsync_dir(target.parent)

    async def delete_blob(self, digest: Digest) -> None:
        """Remove a stored blob."""
        await to_thread.run_sync(self._blob_path(digest).unlink, True)

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob file, one folder read at a time; files not named by a digest are skipped."""
        for algorithm_dir in await to_thread.run_sync(_subdirectories, self._blobs):
            for prefix_dir in await to_thread.run_sync(_subdirectories, algorithm_dir):
                for name, size, modified_at in await to_thread.run_sync(_files_in, prefix_dir):
                    try:
                        digest = Digest(algorithm_dir.name, name)
                    except DigestInvalidError:
                        continue
                    yield StoredBlob(digest, size, modified_at)

    async def list_uploads(self) -> AsyncIterator[StoredUpload]:
        """Every upload file, including the temporary files of `put_blob`."""
        for name, size, modified_at in await to_thread.run_sync(_files_in, self._uploads):
            yield StoredUpload(name, size, modified_at)

    async def redirect_url(self, digest: Digest) -> str | None:
        """Never: the registry serves files itself."""
        return None


def _write(handle: BinaryIO, pieces: list[bytes], observer: ChunkObserver | None) -> None:
    for piece in pieces:
        handle.write(piece)
        if observer is not None:
            observer(piece)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _subdirectories(path: Path) -> list[Path]:
    with os.scandir(path) as entries:
        return [Path(entry.path) for entry in entries if entry.is_dir(follow_symlinks=False)]


def _files_in(path: Path) -> list[tuple[str, int, datetime]]:
    """Name, size and modification time of the regular files in one folder."""
    found = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append((entry.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
    return found


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


async def _read_file(
    path: Path, start: int, end: int | None, missing: type[ContentMissingError]
) -> AsyncIterator[bytes]:
    try:
        handle = await to_thread.run_sync(open, path, "rb")
    except FileNotFoundError:
        raise missing(path.name) from None
    try:
        await to_thread.run_sync(handle.seek, start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            size = IO_CHUNK_BYTES if remaining is None else min(IO_CHUNK_BYTES, remaining)
            chunk = await to_thread.run_sync(handle.read, size)
            if not chunk:
                break
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    finally:
        await to_thread.run_sync(handle.close)
