"""The console's guards on tiny inline apps: session cookies, CSRF checks, security headers."""

from __future__ import annotations

import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from moorage.console.security import ApiSessionGuard, ConsoleGuard, session_holder
from moorage.console.sessions import (
    COOKIE_NAME,
    Session,
    SessionSigner,
)

KEY = b"k" * 32
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def whoami(request: Request) -> Response:
    holder = session_holder(request.scope)
    if request.method == "POST":
        holder.replace(Session.signed_in((await request.form())["name"]))  # type: ignore[arg-type]
    return PlainTextResponse(holder.session.user or "nobody")


async def refuse(request: Request, reason: str) -> Response:
    return PlainTextResponse(f"refused: {reason}", status_code=403)


def console_app(always_secure: bool = False) -> ConsoleGuard:
    pages = Starlette(routes=[Route("/", whoami, methods=["GET", "POST"])])
    return ConsoleGuard(pages, SessionSigner(lambda: KEY), refuse, always_secure)


def client(app: object, base_url: str = "http://console.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)  # type: ignore[arg-type]


def cookie_for(session: Session) -> dict[str, str]:
    return {COOKIE_NAME: SessionSigner(lambda: KEY).dumps(session)}


@pytest.mark.parametrize(
    ("base_url", "always_secure", "secure"),
    [
        ("http://console.test", False, False),
        ("https://console.test", False, True),
        ("http://console.test", True, True),
    ],
)
async def test_the_cookie_is_secure_when_served_over_https(
    base_url: str, always_secure: bool, secure: bool
) -> None:
    async with client(console_app(always_secure), base_url) as http:
        response = await http.get("/")

    cookie = response.headers["set-cookie"]
    assert ("; Secure" in cookie) is secure
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_every_response_carries_the_security_headers() -> None:
    async with client(console_app()) as http:
        response = await http.get("/")

    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_a_post_needs_the_sessions_token_in_the_form_or_the_header() -> None:
    session = Session.anonymous()

    async def post(data: dict[str, str], headers: dict[str, str] | None = None) -> httpx.Response:
        async with client(console_app()) as http:
            http.cookies.update(cookie_for(session))
            return await http.post("/", data=data, headers=headers)

    missing = await post({"name": "mallory"})
    wrong = await post({"name": "mallory", "csrf_token": "nope"})
    in_form = await post({"name": "alice", "csrf_token": session.csrf_token})
    in_header = await post({"name": "bob"}, {"X-CSRF-Token": session.csrf_token})

    assert (missing.status_code, missing.text) == (403, "refused: csrf")
    assert wrong.status_code == 403
    assert in_form.text == "alice" and in_header.text == "bob"


async def test_an_oversized_form_is_refused_before_it_is_read_whole() -> None:
    session = Session.anonymous()
    async with client(console_app()) as http:
        http.cookies.update(cookie_for(session))
        response = await http.post(
            "/", data={"csrf_token": session.csrf_token, "name": "x" * 300_000}
        )

    assert response.text == "refused: too large"


def test_forged_and_expired_sessions_are_refused() -> None:
    signer = SessionSigner(lambda: KEY, lifetime_seconds=60)
    session = Session.signed_in("alice")
    old = Session(csrf_token="t", user="alice", started_at=int(time.time()) - 61)

    assert signer.loads(signer.dumps(session)) == session
    assert SessionSigner(lambda: b"other-key" * 4).loads(signer.dumps(session)) is None
    assert signer.loads(signer.dumps(session)[:-2] + "xx") is None
    assert signer.loads(signer.dumps(old)) is None
    assert signer.loads("garbage") is None


def test_signing_in_gives_a_new_csrf_token() -> None:
    anonymous = Session.anonymous()
    assert Session.signed_in("alice").csrf_token != anonymous.csrf_token


async def api_user(request: Request) -> Response:
    return PlainTextResponse(getattr(request.state, "session_user", "anonymous"))


async def test_the_api_takes_the_cookie_for_reads_and_the_header_for_writes() -> None:
    session = Session.signed_in("alice")
    api = Starlette(routes=[Route("/me", api_user, methods=["GET", "POST"])])
    async with client(ApiSessionGuard(api, SessionSigner(lambda: KEY))) as http:
        http.cookies.update(cookie_for(session))
        read = await http.get("/me")
        write = await http.post("/me")
        write_with_header = await http.post("/me", headers={"X-CSRF-Token": session.csrf_token})
        basic = await http.get("/me", headers={"Authorization": "Basic eDp5"})

    assert read.text == "alice"
    assert write.status_code == 403 and write.json()["errors"][0]["code"] == "DENIED"
    assert write_with_header.text == "alice"
    assert basic.text == "anonymous"  # HTTP Basic is left to the API's own check
