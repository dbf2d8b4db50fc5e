"""Handlers for stored blobs: HEAD, GET with ranges, DELETE."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from moorage.oci.digest import Digest
from moorage.oci.ranges import content_range_header, parse_range
from moorage.registry.context import registry_of
from moorage.registry.http import prefetched, repository_of


async def get_blob(request: Request) -> Response:
    """HEAD or GET a blob, the whole of it or one byte range."""
    repository = repository_of(request)
    digest = Digest.parse(request.path_params["digest"])
    blobs = registry_of(request).blobs

    blob = await blobs.stat(repository, digest)
    headers = {
        "Docker-Content-Digest": str(digest),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
    }
    if request.method == "HEAD":
        return Response(headers={**headers, "Content-Length": str(blob.size)})
    # Storage that serves clients itself (S3 with redirects on) takes the GET, ranges and all.
    elsewhere = await blobs.redirect_url(blob)
    if elsewhere is not None:
        return RedirectResponse(elsewhere, 307, {"Docker-Content-Digest": str(digest)})

    start, end, status_code = 0, blob.size - 1, 200
    requested = parse_range(request.headers.get("range", ""), blob.size)
    if requested is not None:
        start, end = requested
        headers["Content-Range"] = content_range_header(start, end, blob.size)
        status_code = 206
    headers["Content-Length"] = str(end - start + 1)
    body = await prefetched(blobs.read(blob, start, end))
    return StreamingResponse(body, status_code=status_code, headers=headers)


async def delete_blob(request: Request) -> Response:
    """DELETE a blob from the repository."""
    repository = repository_of(request)
    digest = Digest.parse(request.path_params["digest"])

    await registry_of(request).blobs.unlink(repository, digest)
    return Response(status_code=202)
