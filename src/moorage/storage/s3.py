"""Blobs in an S3 bucket (AWS, MinIO, Ceph, ...), through boto3 in worker threads.

Keys, under the configured prefix:

    blobs/<algorithm>/<first two hex>/<hex>    a stored blob
    uploads/<upload id>/started                 the empty marker that makes an upload exist
    uploads/<upload id>/<offset, 20 digits>     one object per appended chunk

Every replica reads, sizes and re-hashes an upload from its chunk objects alone. A commit
assembles them into the blob on the server side where S3 allows it (CopyObject, or a multipart
upload of UploadPartCopy parts) and streams them through in parts otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import boto3
from anyio import to_thread
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from moorage.errors import DigestInvalidError, RangeInvalidError, StorageUnavailableError
from moorage.log import get_logger
from moorage.oci.digest import Digest
from moorage.settings import S3Settings
from moorage.storage.base import (
    IO_CHUNK_BYTES,
    BlobMissingError,
    ChunkObserver,
    StoredBlob,
    StoredUpload,
    UploadMissingError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        CompleteMultipartUploadRequestTypeDef,
        ObjectTypeDef,
        PutObjectRequestTypeDef,
    )

log = get_logger(__name__)

# The size of the parts a streamed append or commit sends; also the most it buffers.
PART_BYTES = 8 * 1024 * 1024
# S3's smallest part but the last, largest copy in one request, and most parts per upload.
MIN_PART_BYTES = 5 * 1024 * 1024
MAX_COPY_BYTES = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000

_MARKER = "started"
_OFFSET_DIGITS = 20
# What S3 answers for an object, or a multipart upload, that is not there.
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchUpload"})
# What S3 answers a write with `If-None-Match: *` whose key is taken, or being taken.
_TAKEN_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_CONTENT_TYPE = "application/octet-stream"

_T = TypeVar("_T")


class _ObjectMissingError(Exception):
    """S3 holds no object under the key asked for."""


class _ObjectExistsError(Exception):
    """A conditional write found the key taken: another writer stored it first."""


class _RangeUnsatisfiableError(Exception):
    """The object is shorter than the start of the range asked for."""


@dataclass(frozen=True, slots=True)
class _UploadChunk:
    key: str
    offset: int
    size: int


class S3BlobStore:
    """Blobs and uploads as objects of one bucket, optionally under a key prefix."""

    def __init__(
        self,
        settings: S3Settings,
        part_bytes: int = PART_BYTES,
        max_copy_bytes: int = MAX_COPY_BYTES,
    ) -> None:
        self._bucket = settings.bucket
        self._prefix = settings.prefix
        self._redirect_expiry = settings.redirect_expiry_seconds if settings.redirect else None
        self._part_bytes = max(part_bytes, MIN_PART_BYTES)
        self._max_copy_bytes = max_copy_bytes
        secret = settings.secret_access_key
        # TODO: the bucket is not checked at start - a missing bucket or an unreachable
        # endpoint shows only as 503 on the first blob requests, with the reason in the log.
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                s3={"addressing_style": settings.addressing_style},
                # Presigned URLs too: botocore would sign them with version 2, which newer
                # AWS regions refuse.
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=32,
            ),
        )

    def _blob_key(self, digest: Digest) -> str:
        encoded = digest.encoded
        return f"{self._prefix}blobs/{digest.algorithm}/{encoded[:2]}/{encoded}"

    def _upload_prefix(self, upload_id: str) -> str:
        return f"{self._prefix}uploads/{upload_id}/"

    def _chunk_key(self, upload_id: str, offset: int) -> str:
        return f"{self._upload_prefix(upload_id)}{offset:0{_OFFSET_DIGITS}d}"

    async def create_upload(self, upload_id: str) -> None:
        """Start an empty upload: its marker object."""
        key = self._upload_prefix(upload_id) + _MARKER
        await _in_thread(self._put, key, b"")

    async def append_upload(
        self,
        upload_id: str,
        chunks: AsyncIterator[bytes],
        observer: ChunkObserver | None = None,
        known_size: int | None = None,
    ) -> int:
        """Store a stream as the upload's next chunk object, return the upload's new size.

        A `known_size` saves listing the upload's objects again. Were it wrong, the chunk
        would land at an offset already taken (refused below) or leave a gap (which makes the
        upload unknown): never bytes hashed that another chunk overwrites.
        """
        start = known_size if known_size is not None else await self.upload_size(upload_id)
        key = self._chunk_key(upload_id, start)
        # Written only if the key is free: of two replicas sending a chunk at the same offset,
        # one fails, rather than one hashing bytes that the other then overwrites.
        writer = _ObjectWriter(self._client, self._bucket, key, self._part_bytes, exclusive=True)
        written = 0
        try:
            pending: list[bytes] = []
            pending_bytes = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= IO_CHUNK_BYTES:
                    await _in_thread(writer.write, pending, observer)
                    written += pending_bytes
                    pending, pending_bytes = [], 0
            if pending:
                await _in_thread(writer.write, pending, observer)
                written += pending_bytes
            if written:
                await _in_thread(writer.finish)
        except _ObjectExistsError:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(writer.abort)
            raise RangeInvalidError(
                f"another chunk of upload {upload_id} was stored at byte {start} meanwhile"
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(writer.abort)
            raise
        return start + written

    async def truncate_upload(self, upload_id: str, size: int) -> None:
        """Delete the chunk objects at or after `size`; only whole chunks can be cut."""
        chunks = await _in_thread(self._upload_chunks, upload_id)
        if any(chunk.offset < size < chunk.offset + chunk.size for chunk in chunks):
            raise ValueError(f"upload {upload_id} has no chunk boundary at byte {size}")
        doomed = [chunk.key for chunk in chunks if chunk.offset >= size]
        await _in_thread(self._delete_keys, doomed)

    async def upload_size(self, upload_id: str) -> int:
        """The bytes of the upload's chunk objects, added up."""
        return sum(chunk.size for chunk in await _in_thread(self._upload_chunks, upload_id))

    async def read_upload(self, upload_id: str) -> AsyncIterator[bytes]:
        """Stream back the upload's chunk objects, in order."""
        for chunk in await _in_thread(self._upload_chunks, upload_id):
            try:
                async for piece in self._read_object(chunk.key, None):
                    yield piece
            except _ObjectMissingError:
                raise UploadMissingError(upload_id) from None

    async def flush_upload(self, upload_id: str) -> None:
        """Nothing to flush: S3 has every chunk durably once its PUT returned."""
        await _in_thread(self._upload_chunks, upload_id)

    async def commit_upload(self, upload_id: str, digest: Digest, size: int | None = None) -> None:
        """Assemble the chunk objects into the blob's object, then delete the upload's objects."""
        # TODO: the copy runs inside the service's metadata transaction - on SQLite, other writers
        # wait for as long as S3 takes to copy the blob (seconds per GB); PostgreSQL does not.
        objects = await _in_thread(self._upload_objects, upload_id)
        chunks = self._chunks_of(upload_id, objects)
        _refuse_changed(upload_id, size, sum(chunk.size for chunk in chunks))
        if await self.blob_size(digest) is None:
            try:
                await _in_thread(self._assemble, chunks, self._blob_key(digest))
            except _ObjectMissingError:
                raise UploadMissingError(upload_id) from None
        # The objects just listed are all the upload has: the caller alone writes to it.
        await _in_thread(self._delete_keys, [item["Key"] for item in objects])

    async def delete_upload(self, upload_id: str) -> None:
        """Delete every object of the upload."""
        objects = await _in_thread(self._list_all, self._upload_prefix(upload_id))
        await _in_thread(self._delete_keys, [item["Key"] for item in objects])

    async def blob_size(self, digest: Digest) -> int | None:
        """The blob object's size, from a HeadObject."""
        try:
            return await _in_thread(self._head, self._blob_key(digest))
        except _ObjectMissingError:
            return None

    async def read_blob(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream a range of the blob object, through a ranged GetObject."""
        if end is not None and end < start:
            # An empty range, which S3 cannot express: only whether the blob exists matters.
            if await self.blob_size(digest) is None:
                raise BlobMissingError(str(digest))
            return
        span = None if start == 0 and end is None else f"bytes={start}-{'' if end is None else end}"
        try:
            async for piece in self._read_object(self._blob_key(digest), span):
                yield piece
        except _ObjectMissingError:
            raise BlobMissingError(str(digest)) from None
        except _RangeUnsatisfiableError:
            return

    async def put_blob(self, digest: Digest, content: bytes) -> None:
        """Store small verified content with one PutObject."""
        await _in_thread(self._put, self._blob_key(digest), content)

    async def delete_blob(self, digest: Digest) -> None:
        """Delete the blob object; S3 answers the same whether it was there or not."""
        await _in_thread(self._delete_keys, [self._blob_key(digest)])

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob object, a page of ListObjectsV2 at a time; other keys are skipped."""
        root = f"{self._prefix}blobs/"
        async for item in self._list(root):
            parts = item["Key"][len(root) :].split("/")
            if len(parts) != 3 or parts[1] != parts[2][:2]:
                continue
            try:
                digest = Digest(parts[0], parts[2])
            except DigestInvalidError:
                continue
            yield StoredBlob(digest, item["Size"], item["LastModified"])

    async def list_uploads(self) -> AsyncIterator[StoredUpload]:
        """Every upload with at least one object, sized by adding its chunks up."""
        root = f"{self._prefix}uploads/"
        current: StoredUpload | None = None
        async for item in self._list(root):
            upload_id, _, name = item["Key"][len(root) :].partition("/")
            size = item["Size"] if name != _MARKER else 0
            if current is not None and current.upload_id == upload_id:
                modified_at = max(current.modified_at, item["LastModified"])
                current = StoredUpload(upload_id, current.size + size, modified_at)
                continue
            if current is not None:
                yield current
            current = StoredUpload(upload_id, size, item["LastModified"])
        if current is not None:
            yield current

    async def redirect_url(self, digest: Digest) -> str | None:
        """A presigned GetObject URL of the blob when redirects are on, else None."""
        if self._redirect_expiry is None:
            return None
        params = {"Bucket": self._bucket, "Key": self._blob_key(digest)}
        url: str = await _in_thread(
            self._client.generate_presigned_url,
            "get_object",
            params,
            self._redirect_expiry,
        )
        return url

    async def _list(self, prefix: str) -> AsyncIterator[ObjectTypeDef]:
        token: str | None = None
        while True:
            objects, token = await _in_thread(self._list_page, prefix, token)
            for item in objects:
                yield item
            if token is None:
                return

    async def _read_object(self, key: str, span: str | None) -> AsyncIterator[bytes]:
        body = await _in_thread(self._open, key, span)
        try:
            while piece := await _in_thread(_read_piece, body):
                yield piece
        finally:
            with anyio.CancelScope(shield=True):
                await to_thread.run_sync(body.close)

    # What follows runs in worker threads.

    def _put(self, key: str, content: bytes) -> None:
        with _s3_errors("PutObject", key):
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=content, ContentType=_CONTENT_TYPE
            )

    def _head(self, key: str) -> int:
        with _s3_errors("HeadObject", key):
            return self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"]

    def _open(self, key: str, span: str | None) -> Any:
        with _s3_errors("GetObject", key):
            if span is None:
                return self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
            return self._client.get_object(Bucket=self._bucket, Key=key, Range=span)["Body"]

    def _list_page(self, prefix: str, token: str | None) -> tuple[list[ObjectTypeDef], str | None]:
        with _s3_errors("ListObjectsV2", prefix):
            if token is None:
                page = self._client.list_objects_v2(Bucket=self._bucket, Prefix=prefix)
            else:
                page = self._client.list_objects_v2(
                    Bucket=self._bucket, Prefix=prefix, ContinuationToken=token
                )
        next_token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return list(page.get("Contents", [])), next_token

    def _list_all(self, prefix: str) -> list[ObjectTypeDef]:
        found: list[ObjectTypeDef] = []
        token: str | None = None
        while True:
            objects, token = self._list_page(prefix, token)
            found += objects
            if token is None:
                return found

    def _delete_keys(self, keys: list[str]) -> None:
        # DeleteObjects takes up to 1000 keys a request.
        for first in range(0, len(keys), 1000):
            batch = keys[first : first + 1000]
            with _s3_errors("DeleteObjects", batch[0]):
                answer = self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            failed = answer.get("Errors", [])
            if failed:
                log.warning(
                    "blob storage delete failed",
                    key=failed[0].get("Key"),
                    code=failed[0].get("Code"),
                    failures=len(failed),
                )
                raise StorageUnavailableError("blob storage refused to delete objects")

    def _upload_chunks(self, upload_id: str) -> list[_UploadChunk]:
        """The upload's chunk objects in order, checked to follow one another without gaps."""
        return self._chunks_of(upload_id, self._upload_objects(upload_id))

    def _upload_objects(self, upload_id: str) -> list[ObjectTypeDef]:
        """Every object of the upload, its marker too; `UploadMissingError` if there is none."""
        objects = self._list_all(self._upload_prefix(upload_id))
        if not objects:
            raise UploadMissingError(upload_id)
        return objects

    def _chunks_of(self, upload_id: str, objects: list[ObjectTypeDef]) -> list[_UploadChunk]:
        prefix = self._upload_prefix(upload_id)
        chunks = sorted(
            (
                _UploadChunk(item["Key"], int(name), item["Size"])
                for item in objects
                if (name := item["Key"][len(prefix) :]).isdigit()
            ),
            key=lambda chunk: chunk.offset,
        )
        expected = 0
        for chunk in chunks:
            if chunk.offset != expected:
                # Two writers raced on the upload, or a deletion was cut short.
                log.warning("upload chunks not contiguous", upload_id=upload_id, at=expected)
                raise UploadMissingError(upload_id)
            expected += chunk.size
        return chunks

    def _assemble(self, chunks: list[_UploadChunk], target: str) -> None:
        """Write the blob object from the upload's chunks, copying on the server if possible."""
        filled = [chunk for chunk in chunks if chunk.size]
        if not filled:
            self._put(target, b"")
            return
        if len(filled) == 1 and filled[0].size <= self._max_copy_bytes:
            with _s3_errors("CopyObject", target):
                self._client.copy_object(
                    Bucket=self._bucket,
                    Key=target,
                    CopySource={"Bucket": self._bucket, "Key": filled[0].key},
                    ContentType=_CONTENT_TYPE,
                    MetadataDirective="REPLACE",
                )
            return
        total = sum(chunk.size for chunk in filled)
        part_bytes = max(self._part_bytes, math.ceil(total / MAX_PARTS))
        writer = _ObjectWriter(self._client, self._bucket, target, part_bytes)
        ranges = [
            (chunk.key, first, last)
            for chunk in filled
            for first, last in _copy_ranges(chunk.size, self._max_copy_bytes)
        ]
        # TODO: chunks under S3's 5 MiB part minimum are downloaded and uploaded again here -
        # a client sending small chunks costs the replica a second transfer of the blob.
        copyable = all(chunk.size >= MIN_PART_BYTES for chunk in filled[:-1])
        try:
            if copyable and len(ranges) <= MAX_PARTS:
                for key, first, last in ranges:
                    writer.copy_part(key, first, last)
            else:
                for chunk in filled:
                    self._stream_into(writer, chunk.key)
            writer.finish()
        except BaseException:
            writer.abort()
            raise

    def _stream_into(self, writer: _ObjectWriter, key: str) -> None:
        body = self._open(key, None)
        try:
            while piece := _read_piece(body):
                writer.write([piece], None)
        finally:
            body.close()


class _ObjectWriter:
    """Writes one object: one PutObject if it fits a part, else a multipart upload.

    Runs in worker threads. It holds at most one part of pending bytes.
    """

    # TODO: a multipart upload whose process died stays in the bucket - its parts cost storage
    # until a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them; gc does not.

    def __init__(
        self, client: S3Client, bucket: str, key: str, part_bytes: int, exclusive: bool = False
    ) -> None:
        self._client = client
        # Send `If-None-Match: *`: complete the object only if nothing holds the key yet.
        self._exclusive = exclusive
        self._bucket = bucket
        self._key = key
        self._part_bytes = part_bytes
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._multipart_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def write(self, pieces: list[bytes], observer: ChunkObserver | None) -> None:
        """Add pieces to the object, sending a part whenever one is full."""
        for piece in pieces:
            if observer is not None:
                observer(piece)
            self._pending.append(piece)
            self._pending_bytes += len(piece)
            if self._pending_bytes >= self._part_bytes:
                self._send_part()

    def copy_part(self, source_key: str, first: int, last: int) -> None:
        """Add bytes `first`..`last` of another object of the bucket as the next part."""
        number = self._next_part_number()
        with _s3_errors("UploadPartCopy", self._key):
            answer = self._client.upload_part_copy(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._started(),
                PartNumber=number,
                CopySource={"Bucket": self._bucket, "Key": source_key},
                CopySourceRange=f"bytes={first}-{last}",
            )
        self._parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})

    def finish(self) -> None:
        """Send what is pending and complete the object."""
        if self._multipart_id is None:
            content = b"".join(self._pending)
            self._pending.clear()
            put: PutObjectRequestTypeDef = {
                "Bucket": self._bucket,
                "Key": self._key,
                "Body": content,
                "ContentType": _CONTENT_TYPE,
            }
            if self._exclusive:
                put["IfNoneMatch"] = "*"
            with _s3_errors("PutObject", self._key):
                self._client.put_object(**put)
            return
        if self._pending:
            self._send_part()
        complete: CompleteMultipartUploadRequestTypeDef = {
            "Bucket": self._bucket,
            "Key": self._key,
            "UploadId": self._multipart_id,
            "MultipartUpload": {"Parts": self._parts},
        }
        if self._exclusive:
            complete["IfNoneMatch"] = "*"
        with _s3_errors("CompleteMultipartUpload", self._key):
            self._client.complete_multipart_upload(**complete)
        self._multipart_id = None

    def abort(self) -> None:
        """Abort the multipart upload, if one is open; S3 would otherwise keep its parts."""
        multipart_id, self._multipart_id = self._multipart_id, None
        self._pending.clear()
        if multipart_id is None:
            return
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=multipart_id
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("multipart upload not aborted", key=self._key, error=str(exc))

    def _send_part(self) -> None:
        content = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        number = self._next_part_number()
        with _s3_errors("UploadPart", self._key):
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._started(),
                PartNumber=number,
                Body=content,
            )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def _next_part_number(self) -> int:
        if len(self._parts) >= MAX_PARTS:
            raise StorageUnavailableError(f"an object needs more than {MAX_PARTS} parts")
        return len(self._parts) + 1

    def _started(self) -> str:
        if self._multipart_id is None:
            with _s3_errors("CreateMultipartUpload", self._key):
                answer = self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, ContentType=_CONTENT_TYPE
                )
            self._multipart_id = answer["UploadId"]
        return self._multipart_id


def _refuse_changed(upload_id: str, verified: int | None, holds: int) -> None:
    # A request whose claim lapsed (its replica cut off from the database for a while) must not
    # assemble chunks that another request added after it verified the digest.
    if verified is not None and holds != verified:
        raise RangeInvalidError(
            f"upload {upload_id} holds {holds} bytes, not the {verified} verified: send it again"
        )


def _copy_ranges(size: int, limit: int) -> list[tuple[int, int]]:
    """Inclusive ranges that cover `size` bytes in equal parts of at most `limit` bytes."""
    count = math.ceil(size / limit)
    part = math.ceil(size / count)
    return [(first, min(first + part, size) - 1) for first in range(0, size, part)]


def _read_piece(body: Any) -> bytes:
    with _s3_errors("GetObject", "body"):
        piece: bytes = body.read(IO_CHUNK_BYTES)
    return piece


@contextlib.contextmanager
def _s3_errors(operation: str, key: str) -> Iterator[None]:
    """Turn S3's answers into missing objects, or into one error clients see as 503."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _MISSING_CODES:
            raise _ObjectMissingError(key) from None
        if code == "InvalidRange":
            raise _RangeUnsatisfiableError(key) from None
        if code in _TAKEN_CODES:
            raise _ObjectExistsError(key) from None
        log.error(
            "blob storage request failed",
            operation=operation,
            key=key,
            code=code,
            status=exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            reason=error.get("Message"),
        )
        raise StorageUnavailableError(f"blob storage failed: {operation} {code}") from None
    except BotoCoreError as exc:
        log.error("blob storage unreachable", operation=operation, key=key, reason=str(exc))
        raise StorageUnavailableError(f"blob storage cannot be reached for {operation}") from None


async def _in_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking boto3 call in a worker thread, so that the event loop goes on."""
    return await to_thread.run_sync(functools.partial(function, *args))
