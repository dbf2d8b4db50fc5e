"""`create_console(services)`: the console's pages as an app, and the guard for the API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Scope

from moorage.console.pages import create_templates, error_page
from moorage.console.routes import CONSOLE_ROUTES
from moorage.console.security import SECURITY_HEADERS, ApiSessionGuard, ConsoleGuard
from moorage.console.sessions import SessionSigner
from moorage.log import get_logger
from moorage.registry.errcodes import METHOD_NOT_ALLOWED, ROUTE_NOT_FOUND, error_body
from moorage.services import Services

log = get_logger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# Paths the console never answers, so their own 404 and 405 answers stay as they are.
NOT_CONSOLE = ("/v2", "/auth/token", "/api/")


@dataclass(frozen=True, slots=True)
class Console:
    """The console's pages, and a wrapper letting its scripts call the management API."""

    app: ASGIApp
    signer: SessionSigner

    def mount(self) -> Mount:
        """The console at `/`, after every other route: it leaves the registry's paths alone."""
        return _ConsoleMount("", app=self.app)

    def guard_api(self, api: ASGIApp) -> ASGIApp:
        """`api`, also accepting the console's session cookie with its CSRF header."""
        return ApiSessionGuard(api, self.signer)


class _ConsoleMount(Mount):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get("path", "").startswith(NOT_CONSOLE):
            return Match.NONE, {}
        return super().matches(scope)


def create_console(services: Services) -> Console:
    """The console over `services`, its cookies signed with the deployment's session key."""
    settings = services.settings
    signer = SessionSigner(services.keys.console_session_key)
    always_secure = bool(settings.tls_cert) or (settings.public_url or "").startswith("https://")
    pages = Starlette(
        routes=[*CONSOLE_ROUTES, Mount("/static", StaticFiles(directory=STATIC_DIR))],
        middleware=[
            Middleware(ConsoleGuard, signer=signer, refuse=_refused, always_secure=always_secure)
        ],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
    )
    pages.state.services = services
    pages.state.templates = create_templates()
    return Console(app=pages, signer=signer)


async def _refused(request: Request, reason: str) -> Response:
    message = (
        "This form is too large to accept."
        if reason == "too large"
        else "This form has expired or did not come from this site. Go back, reload the page"
        " and send it again."
    )
    return await error_page(request, 403, message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if "text/html" not in request.headers.get("accept", ""):
        # Not a browser: a registry client that strayed here gets the registry's error format.
        code = METHOD_NOT_ALLOWED if exc.status_code == 405 else ROUTE_NOT_FOUND
        body = error_body(code)
        return Response(body, status_code=exc.status_code, media_type="application/json")
    if exc.status_code == 405:
        return await error_page(request, 405, "This page does not take that kind of request.")
    return await error_page(request, 404, "There is no page at this address.")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected console error", exc_info=exc)
    # Plain on purpose: whatever failed may be what a rendered page needs.
    return HTMLResponse(
        "<!doctype html><title>Server error</title><h1>Something went wrong</h1>"
        "<p>The error was logged. Try again, or tell your administrator.</p>",
        status_code=500,
        headers=SECURITY_HEADERS,
    )
