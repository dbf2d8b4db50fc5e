"""The /v2 route table: each route with the access it needs, checked in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from moorage.auth.access import DELETE, PULL, PUSH, Scope
from moorage.log import bind_request_fields
from moorage.oci.reference import validate_repository_name
from moorage.registry import blobs, listings, manifests, uploads
from moorage.registry.context import registry_of

Handler = Callable[[Request], Awaitable[Response]]
# What a route needs, worked out from its request (the repository is in the path).
AccessRule = Callable[[Request], list[Scope]]


def on_repository(*actions: str) -> AccessRule:
    """The route acts on the repository named in its path."""

    def scopes(request: Request) -> list[Scope]:
        return [Scope("repository", request.path_params["name"], frozenset(actions))]

    return scopes


def on_catalog(request: Request) -> list[Scope]:
    """The route lists every repository."""
    return [Scope("registry", "catalog", frozenset({"*"}))]


def no_scope(request: Request) -> list[Scope]:
    """The route needs an authenticated caller, nothing more."""
    return []


def guarded(handler: Handler, access: AccessRule) -> Handler:
    """Validate the repository name, authorize the declared access, then run the handler."""

    async def endpoint(request: Request) -> Response:
        name = request.path_params.get("name")
        if name is not None:
            validate_repository_name(name)
            bind_request_fields(repository=name)
        principal = await registry_of(request).access.authorize(request, access(request))
        request.state.principal = principal
        if principal.name is not None:
            bind_request_fields(user=principal.name)
        return await handler(request)

    return endpoint


def _route(path: str, handler: Handler, methods: list[str], access: AccessRule) -> Route:
    return Route(path, guarded(handler, access), methods=methods, name=handler.__name__)


NAME = "/v2/{name:path}"

REGISTRY_ROUTES = [
    _route("/v2/", listings.api_version, ["GET"], no_scope),
    _route("/v2/_catalog", listings.catalog, ["GET"], on_catalog),
    _route(f"{NAME}/blobs/uploads/", uploads.start_upload, ["POST"], on_repository(PULL, PUSH)),
    _route(
        NAME + "/blobs/uploads/{upload_id}",
        uploads.append_chunk,
        ["PATCH"],
        on_repository(PULL, PUSH),
    ),
    _route(
        NAME + "/blobs/uploads/{upload_id}",
        uploads.complete_upload,
        ["PUT"],
        on_repository(PULL, PUSH),
    ),
    _route(
        NAME + "/blobs/uploads/{upload_id}",
        uploads.upload_status,
        ["GET"],
        on_repository(PULL, PUSH),
    ),
    _route(
        NAME + "/blobs/uploads/{upload_id}",
        uploads.cancel_upload,
        ["DELETE"],
        on_repository(PULL, PUSH),
    ),
    _route(NAME + "/blobs/{digest}", blobs.get_blob, ["GET", "HEAD"], on_repository(PULL)),
    _route(NAME + "/blobs/{digest}", blobs.delete_blob, ["DELETE"], on_repository(DELETE)),
    _route(
        NAME + "/manifests/{reference}",
        manifests.get_manifest,
        ["GET", "HEAD"],
        on_repository(PULL),
    ),
    _route(
        NAME + "/manifests/{reference}",
        manifests.put_manifest,
        ["PUT"],
        on_repository(PULL, PUSH),
    ),
    _route(
        NAME + "/manifests/{reference}",
        manifests.delete_manifest,
        ["DELETE"],
        on_repository(DELETE),
    ),
    _route(NAME + "/tags/list", listings.list_tags, ["GET"], on_repository(PULL)),
    _route(NAME + "/referrers/{digest}", listings.referrers, ["GET"], on_repository(PULL)),
]
