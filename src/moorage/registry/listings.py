"""Handlers that list: the API version check, tags, the catalog, referrers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.auth.access import Principal
from moorage.oci.digest import Digest
from moorage.oci.manifest import build_referrers_index
from moorage.oci.media_types import OCI_INDEX
from moorage.registry.context import registry_of
from moorage.registry.http import next_page_link, page_size, repository_of


async def api_version(request: Request) -> Response:
    """GET /v2/: the registry speaks the v2 API (and the caller is allowed in)."""
    return JSONResponse({})


async def list_tags(request: Request) -> Response:
    """GET the repository's tags, sorted, a page at a time."""
    repository = repository_of(request)
    limit, last = page_size(request), request.query_params.get("last")

    names = await registry_of(request).manifests.list_tags(
        repository, None if limit is None else limit + 1, last
    )
    return _page(request, {"name": repository}, "tags", names, limit)


async def catalog(request: Request) -> Response:
    """GET the repositories, sorted, a page at a time."""
    limit, last = page_size(request), request.query_params.get("last")
    principal: Principal = request.state.principal

    # Only what the caller may pull: the repositories of their own namespaces.
    names = await registry_of(request).manifests.list_repositories(
        None if limit is None else limit + 1,
        last,
        owner_id=principal.user_id or 0,
        namespace=principal.namespace_limit,
    )
    return _page(request, {}, "repositories", names, limit)


async def referrers(request: Request) -> Response:
    """GET an index of the manifests that name a digest as their subject."""
    repository = repository_of(request)
    subject = Digest.parse(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType")

    descriptors = await registry_of(request).manifests.referrers(repository, subject, artifact_type)
    headers = {"Content-Type": OCI_INDEX}
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    return Response(build_referrers_index(descriptors), headers=headers)


def _page(
    request: Request, body: dict[str, object], key: str, names: list[str], limit: int | None
) -> Response:
    headers = {}
    if limit is not None and len(names) > limit:
        names = names[:limit]
        # n=0 asks for an empty page, which the spec says carries no Link.
        if names:
            headers["Link"] = next_page_link(request.url.path, limit, names[-1])
    return JSONResponse({**body, key: names}, headers=headers)
