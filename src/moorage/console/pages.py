"""What every console page shares: who may open it, rendering, redirects, notices, errors.

A page is declared with `page(path, endpoint, access=...)`; the access it needs is checked
there, once, and a domain error the endpoint lets through becomes an error page.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from moorage.accounts.users import User
from moorage.api.accounts import registry_host
from moorage.console import formatting
from moorage.console.security import session_holder
from moorage.console.sessions import Session
from moorage.errors import AccessError, MoorageError, NotFoundError, ResourceUnknownError
from moorage.log import bind_request_fields
from moorage.services import Services

Endpoint = Callable[[Request], Awaitable[Response]]
TEMPLATES_DIR = Path(__file__).parent / "templates"


class Access(enum.Enum):
    """Who may open a page."""

    ANYONE = "anyone"
    SIGNED_IN = "signed in"
    ADMIN = "admin"


def create_templates() -> Jinja2Templates:
    """The console's templates, escaping everything they print unless told otherwise."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(formatting.FILTERS)
    return Jinja2Templates(env=environment)


def services_of(request: Request) -> Services:
    """The deployment's services."""
    services: Services = request.app.state.services
    return services


def current_user(request: Request) -> User:
    """The signed-in account of a page that requires one."""
    user: User = request.state.user
    return user


def page(
    path: str,
    endpoint: Endpoint,
    methods: Sequence[str] = ("GET",),
    access: Access = Access.SIGNED_IN,
) -> Route:
    """A console route that lets only `access` in and turns domain errors into pages."""

    async def guarded(request: Request) -> Response:
        user = await _session_user(request)
        request.state.user = user
        if user is None and access is not Access.ANYONE:
            return redirect_to_sign_in(request)
        if user is not None and access is Access.ADMIN and not user.is_admin:
            return await error_page(request, 403, "Only administrators may open this page.")
        try:
            return await endpoint(request)
        except NotFoundError as exc:
            return await error_page(request, 404, formatting.sentence(exc.message))
        except AccessError as exc:
            return await error_page(request, 403, formatting.sentence(exc.message))
        except MoorageError as exc:
            return await error_page(request, 400, formatting.sentence(exc.message))

    return Route(path, guarded, methods=list(methods))


async def _session_user(request: Request) -> User | None:
    holder = session_holder(request.scope)
    name = holder.session.user
    if name is None:
        return None
    try:
        user = await services_of(request).accounts.get(name)
    except ResourceUnknownError:
        holder.replace(Session.anonymous())  # the account is gone: so is its session
        return None
    bind_request_fields(user=user.name)
    return user


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    """A page from `template`, with what the layout needs besides `context`."""
    holder = session_holder(request.scope)
    user: User | None = getattr(request.state, "user", None)
    settings = services_of(request).settings
    shared: dict[str, Any] = {
        "user": user,
        "csrf_token": holder.session.csrf_token,
        "notice": holder.pop_notice(),
        "path": request.url.path,
        "signup_enabled": settings.auth.allow_signup,
        "registry_host": registry_host(request),
    }
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request, template, {**shared, **(context or {})}, status_code=status
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def error_page(request: Request, status: int, message: str) -> Response:
    """A page that says what went wrong, with the status that says it to machines."""
    titles = {400: "That did not work", 403: "Not allowed", 404: "Not found"}
    return render(
        request,
        "error.html",
        {"title": titles.get(status, "Something went wrong"), "message": message},
        status,
    )


def redirect(request: Request, path: str, notice: str | None = None) -> Response:
    """A 303 to a console path, with a notice for the next page if given."""
    if notice is not None:
        session_holder(request.scope).set_notice(notice)
    return RedirectResponse(path, status_code=303)


def redirect_to_sign_in(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards if this was a page view."""
    if request.method != "GET" or request.url.path == "/":
        return redirect(request, "/sign-in")
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, "/sign-in?" + urlencode({"next": wanted}))


def local_path(wanted: str | None) -> str:
    """`wanted` if it is a path on this site, else `/`: no redirect to another site."""
    if not wanted or not wanted.startswith("/") or wanted.startswith("//") or "\\" in wanted:
        return "/"
    return wanted


def url_path(*parts: str) -> str:
    """A console path from parts, each quoted, `/` kept (repository names hold slashes)."""
    return "/" + "/".join(quote(part, safe="/") for part in parts)
