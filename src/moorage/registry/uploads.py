"""Handlers for blob uploads: start, chunk, status, complete, cancel, mount."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.auth.access import PULL, Scope
from moorage.registry.context import registry_of
from moorage.registry.http import (
    blob_created,
    chunk_of,
    digest_parameter,
    has_body,
    mount_parameters,
    repository_of,
    upload_response,
)


async def start_upload(request: Request) -> Response:
    """POST: mount from another repository, take a whole blob, or open a session."""
    repository = repository_of(request)
    registry = registry_of(request)
    mount = mount_parameters(request)

    if mount is not None:
        digest, source = mount
        # Without pull rights on the source, the spec says to fall back to a plain upload.
        source_scope = Scope("repository", source, frozenset({PULL}))
        if (
            await registry.access.permits(request, source_scope)
            and await registry.uploads.mount(repository, digest, source) is not None
        ):
            return blob_created(repository, digest)

    if "digest" in request.query_params:
        digest = digest_parameter(request)
        await registry.uploads.upload_whole(repository, digest, chunk_of(request))
        return blob_created(repository, digest)

    status = await registry.uploads.start(repository)
    return upload_response(status, 202)


async def append_chunk(request: Request) -> Response:
    """PATCH: append a chunk (with Content-Range) or a streamed body to a session."""
    repository = repository_of(request)
    chunk = chunk_of(request)

    status = await registry_of(request).uploads.append(
        repository, request.path_params["upload_id"], chunk
    )
    return upload_response(status, 202)


async def complete_upload(request: Request) -> Response:
    """PUT: an optional last chunk, then verify the digest and store the blob."""
    repository = repository_of(request)
    digest = digest_parameter(request)
    chunk = chunk_of(request) if has_body(request) else None

    await registry_of(request).uploads.complete(
        repository, request.path_params["upload_id"], digest, chunk
    )
    return blob_created(repository, digest)


async def upload_status(request: Request) -> Response:
    """GET: how many bytes a session holds."""
    status = await registry_of(request).uploads.status(
        repository_of(request), request.path_params["upload_id"]
    )
    return upload_response(status, 204)


async def cancel_upload(request: Request) -> Response:
    """DELETE: drop a session."""
    await registry_of(request).uploads.cancel(
        repository_of(request), request.path_params["upload_id"]
    )
    return Response(status_code=204)
