"""`create_app(settings)`: builds every part of moorage and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount

from moorage.api.app import create_api
from moorage.auth.token_endpoint import TOKEN_ROUTES, TokenService
from moorage.builds.worker import create_worker
from moorage.console.app import create_console
from moorage.content.uploads import UploadService
from moorage.errors import (
    ConflictError,
    DatabaseUnavailableError,
    MoorageError,
    StorageUnavailableError,
)
from moorage.gc import GarbageCollector
from moorage.log import get_logger
from moorage.middleware import AccessLogMiddleware
from moorage.registry.context import RegistryContext
from moorage.registry.errcodes import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    ROUTE_NOT_FOUND,
    error_body,
    error_response,
)
from moorage.registry.routes import REGISTRY_ROUTES
from moorage.services import Services, build_services
from moorage.settings import Settings

log = get_logger(__name__)

# How often idle upload sessions are looked for and removed.
UPLOAD_EXPIRY_INTERVAL_SECONDS = 600


def create_app(settings: Settings) -> Starlette:
    """The whole registry as one ASGI app, built from `settings`."""
    services = build_services(settings)
    registry = RegistryContext(
        uploads=services.uploads,
        blobs=services.blobs,
        manifests=services.manifests,
        deletion=services.deletion,
        access=services.access,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await services.start()
        expiry = asyncio.create_task(_expire_uploads_forever(registry.uploads))
        collector = _start_garbage_collector(services)
        builds = _start_build_worker(services)
        log.info("registry started", listen=settings.listen, data_dir=str(settings.data_dir))
        try:
            yield
        finally:
            expiry.cancel()
            if collector is not None:
                collector.cancel()
                await asyncio.gather(collector, return_exceptions=True)
            if builds is not None:
                builds.cancel()
                await asyncio.gather(builds, return_exceptions=True)
            await services.close()

    console = create_console(services)
    app = Starlette(
        routes=[
            *REGISTRY_ROUTES,
            *TOKEN_ROUTES,
            Mount("/api/v1", console.guard_api(create_api(services))),
            console.mount(),
        ],
        lifespan=lifespan,
        exception_handlers={
            MoorageError: _domain_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _unexpected_error,
        },
    )
    app.state.settings = settings
    app.state.services = services
    app.state.registry = registry
    app.state.token_service = TokenService(services.signer, services.login, services.policy)
    app.add_middleware(AccessLogMiddleware)
    return app


def _start_build_worker(services: Services) -> asyncio.Task[None] | None:
    """The in-process build worker, unless the settings leave builds to `moorage worker`."""
    if not services.settings.builds.in_process_worker:
        return None
    return asyncio.create_task(create_worker(services).run_forever())


def _start_garbage_collector(services: Services) -> asyncio.Task[None] | None:
    """Collection on a schedule, unless the settings leave it to `moorage gc`."""
    interval = services.settings.gc_interval.total_seconds()
    if not interval:
        return None
    return asyncio.create_task(_collect_garbage_forever(services.gc, interval))


async def _collect_garbage_forever(collector: GarbageCollector, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await collector.run()
        except ConflictError as exc:
            log.info("garbage collection skipped", reason=exc.message)
        except (DatabaseUnavailableError, StorageUnavailableError) as exc:
            log.warning("garbage collection skipped", reason=exc.message)
        except Exception:
            log.exception("garbage collection failed")


async def _expire_uploads_forever(uploads: UploadService) -> None:
    while True:
        await asyncio.sleep(UPLOAD_EXPIRY_INTERVAL_SECONDS)
        try:
            await uploads.expire()
        except (DatabaseUnavailableError, StorageUnavailableError) as exc:
            log.warning("upload expiry skipped", reason=exc.message)
        except Exception:
            log.exception("upload expiry failed")


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MoorageError)
    log.debug("request refused", error=type(exc).__name__, reason=exc.message)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = METHOD_NOT_ALLOWED if exc.status_code == 405 else ROUTE_NOT_FOUND
    return Response(error_body(code), status_code=exc.status_code, media_type="application/json")


async def _client_gone(request: Request, exc: Exception) -> Response:
    log.info("client disconnected")
    return Response(status_code=400)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return Response(error_body(INTERNAL_ERROR), status_code=500, media_type="application/json")
