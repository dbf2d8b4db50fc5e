"""Reading what the /v2 requests carry, and the response headers the clients rely on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from moorage.content.uploads import Chunk, UploadStatus
from moorage.errors import (
    DigestInvalidError,
    InvalidInputError,
    ManifestTooLargeError,
    NameInvalidError,
    SizeInvalidError,
)
from moorage.oci.digest import Digest
from moorage.oci.ranges import parse_content_range, upload_range_header
from moorage.oci.reference import validate_repository_name


def repository_of(request: Request) -> str:
    """The repository name in the path; the route wrapper has validated it."""
    name: str = request.path_params["name"]
    return name


def content_length(request: Request) -> int | None:
    """The declared body length, or None for a streamed body."""
    header = request.headers.get("content-length")
    if header is None:
        return None
    if not header.isdigit():
        raise SizeInvalidError(f"Content-Length {header[:40]!r} is not a non-negative integer")
    return int(header)


def has_body(request: Request) -> bool:
    """Whether the request carries a body at all."""
    length = content_length(request)
    return bool(length) or "chunked" in request.headers.get("transfer-encoding", "").lower()


def chunk_of(request: Request) -> Chunk:
    """The request body as an upload chunk, with its Content-Range if it has one."""
    header = request.headers.get("content-range")
    return Chunk(
        body=request.stream(),
        content_range=parse_content_range(header) if header else None,
        content_length=content_length(request),
    )


def digest_parameter(request: Request, name: str = "digest") -> Digest:
    """A required digest in the query string."""
    value = request.query_params.get(name)
    if value is None:
        raise DigestInvalidError(f"the query parameter {name!r} is required")
    return Digest.parse(value)


def mount_parameters(request: Request) -> tuple[Digest, str] | None:
    """The blob and source repository of a cross-repository mount, if the POST asks for one.

    Without `from`, or with a malformed digest or name, the spec says to fall back to a plain
    upload rather than fail, so those give None.
    """
    mount, source = request.query_params.get("mount"), request.query_params.get("from")
    if mount is None or source is None:
        return None
    try:
        return Digest.parse(mount), validate_repository_name(source)
    except (DigestInvalidError, NameInvalidError):
        return None


def page_size(request: Request) -> int | None:
    """The `n` query parameter: how many entries a page holds at most."""
    value = request.query_params.get("n")
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidInputError(f"n must be a non-negative integer, got {value[:40]!r}")
    return int(value)


def next_page_link(path: str, limit: int, last: str) -> str:
    """The RFC 5988 Link header pointing at the next page."""
    return f'<{path}?{urlencode({"n": limit, "last": last})}>; rel="next"'


async def read_manifest_body(request: Request, limit: int) -> bytes:
    """The whole request body, refused as soon as it passes `limit` bytes."""
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise ManifestTooLargeError(f"manifest is {declared} bytes; the limit is {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ManifestTooLargeError(f"manifest is over the limit of {limit} bytes")
    return bytes(body)


def blob_location(repository: str, digest: Digest) -> str:
    """Where a stored blob can be fetched."""
    return f"/v2/{repository}/blobs/{digest}"


def upload_response(status: UploadStatus, status_code: int) -> Response:
    """An answer about an upload session: where to send the next chunk, and what is stored."""
    return Response(
        status_code=status_code,
        headers={
            "Location": f"/v2/{status.repository}/blobs/uploads/{quote(status.upload_id)}",
            "Range": upload_range_header(status.size),
            "Docker-Upload-UUID": status.upload_id,
        },
    )


def blob_created(repository: str, digest: Digest) -> Response:
    """201 for a blob that is now stored in the repository."""
    return Response(
        status_code=201,
        headers={
            "Location": blob_location(repository, digest),
            "Docker-Content-Digest": str(digest),
        },
    )


async def prefetched(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pull the first chunk now, so that a missing blob fails before the headers are sent."""
    first = await anext(stream, b"")

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in stream:
            yield chunk

    return rest()
