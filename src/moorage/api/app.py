"""The management API as a FastAPI app, mounted at /api/v1, with the registry's error format."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from moorage.api import accounts, builds, deletion, namespaces, quotas, tokens
from moorage.errors import FieldInvalidError, MoorageError
from moorage.registry.errcodes import (
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    error_body,
    error_response,
)
from moorage.services import Services


def create_api(services: Services) -> FastAPI:
    """The /api/v1 app over the deployment's services."""
    api = FastAPI(
        title="moorage management API",
        version="1",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    api.state.services = services
    api.include_router(accounts.router)
    api.include_router(tokens.router)
    api.include_router(deletion.router)
    api.include_router(namespaces.router)
    api.include_router(quotas.router)
    api.include_router(builds.router)
    api.add_exception_handler(MoorageError, _domain_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(HTTPException, _http_error)
    return api


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MoorageError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid request"}
    location = [str(part) for part in first["loc"] if part not in ("body", "query", "path")]
    # A body that is no JSON at all is located at its byte offset, which names no field.
    field = "body" if first.get("type") == "json_invalid" else ".".join(location) or "body"
    return error_response(FieldInvalidError(field, f"{field}: {first['msg']}"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = METHOD_NOT_ALLOWED if exc.status_code == 405 else ROUTE_NOT_FOUND
    return Response(error_body(code), status_code=exc.status_code, media_type="application/json")
