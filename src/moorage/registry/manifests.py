"""Handlers for manifests: GET, HEAD, PUT, DELETE by tag or digest."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from moorage.errors import InvalidInputError, ManifestUnknownError
from moorage.oci.digest import Digest
from moorage.oci.manifest import MAX_MANIFEST_BYTES
from moorage.oci.reference import parse_reference
from moorage.registry.context import registry_of
from moorage.registry.http import read_manifest_body, repository_of


async def get_manifest(request: Request) -> Response:
    """HEAD or GET a manifest by tag or digest."""
    repository = repository_of(request)
    reference = existing_reference(request.path_params["reference"])

    manifest = await registry_of(request).manifests.get(repository, reference)
    headers = {
        "Content-Type": manifest.media_type,
        "Docker-Content-Digest": manifest.digest,
        "ETag": f'"{manifest.digest}"',
    }
    if request.method == "HEAD":
        return Response(headers={**headers, "Content-Length": str(len(manifest.content))})
    return Response(manifest.content, headers=headers)


async def put_manifest(request: Request) -> Response:
    """PUT a manifest under a tag or its digest."""
    repository = repository_of(request)
    reference = parse_reference(request.path_params["reference"])
    payload = await read_manifest_body(request, MAX_MANIFEST_BYTES)

    result = await registry_of(request).manifests.put(
        repository, reference, payload, request.headers.get("content-type")
    )
    headers = {
        "Location": f"/v2/{repository}/manifests/{result.digest}",
        "Docker-Content-Digest": str(result.digest),
    }
    if result.subject is not None:
        headers["OCI-Subject"] = str(result.subject)
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    """DELETE a tag, or a manifest and every tag pointing at it."""
    repository = repository_of(request)
    reference = existing_reference(request.path_params["reference"])

    deletion, deleted_by = registry_of(request).deletion, request.state.principal.name
    if isinstance(reference, Digest):
        await deletion.delete_manifest(repository, reference, deleted_by)
    else:
        await deletion.delete_tag(repository, reference, deleted_by)
    return Response(status_code=202)


def existing_reference(text: str) -> str | Digest:
    """A reference to look up; one that breaks the grammar cannot exist, so it is unknown."""
    try:
        return parse_reference(text)
    except InvalidInputError:
        raise ManifestUnknownError(f"manifest {text[:80]!r} is unknown") from None
