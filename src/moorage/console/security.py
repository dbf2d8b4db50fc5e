"""The console's guards, in one place: the session cookie, CSRF on every POST, security headers.

`ConsoleGuard` wraps the console pages: it loads the session (or starts one), refuses any
state-changing request whose CSRF token does not match the session's, and adds the content
security policy to every response. `ApiSessionGuard` lets the console's own scripts call the
management API with the session cookie, but only with the CSRF token in a header.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moorage.console.sessions import COOKIE_NAME, Session, SessionHolder, SessionSigner
from moorage.errors import DeniedError
from moorage.registry.errcodes import error_response

SESSION_SCOPE_KEY = "moorage.console_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Console forms are a few fields; a larger body is refused before it is read whole.
MAX_FORM_BYTES = 256 * 1024

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

Refusal = Callable[[Request, str], Awaitable[Response]]


def session_holder(scope: Scope) -> SessionHolder:
    """The session of the request that `ConsoleGuard` let through."""
    holder: SessionHolder = scope[SESSION_SCOPE_KEY]
    return holder


def csrf_matches(session: Session, offered: str | None) -> bool:
    """Whether `offered` is the session's CSRF token, compared in constant time."""
    return offered is not None and hmac.compare_digest(
        session.csrf_token.encode(), offered.encode()
    )


def _cookie(scope: Scope) -> str | None:
    raw = Headers(scope=scope).get("cookie")
    if not raw:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(raw)
    except Exception:
        return None
    morsel = cookies.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


class ConsoleGuard:
    """Sessions, CSRF checks and security headers around the console pages."""

    def __init__(
        self, app: ASGIApp, signer: SessionSigner, refuse: Refusal, always_secure: bool
    ) -> None:
        self.app = app
        self.signer = signer
        self.refuse = refuse
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loaded = self.signer.loads(_cookie(scope))
        holder = SessionHolder(loaded or Session.anonymous(), changed=loaded is None)
        scope[SESSION_SCOPE_KEY] = holder
        send = self._with_headers(scope, holder, send)

        if scope["method"] not in SAFE_METHODS:
            body = await _read_body(receive)
            if body is None or not csrf_matches(holder.session, _offered_token(scope, body)):
                reason = "too large" if body is None else "csrf"
                response = await self.refuse(Request(scope), reason)
                await response(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _with_headers(self, scope: Scope, holder: SessionHolder, send: Send) -> Send:
        secure = self.always_secure or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if holder.changed:
                    headers.append("Set-Cookie", self._set_cookie(holder.session, secure))
            await send(message)

        return send_with_headers

    def _set_cookie(self, session: Session, secure: bool) -> str:
        parts = [
            f"{COOKIE_NAME}={self.signer.dumps(session)}",
            "Path=/",
            f"Max-Age={self.signer.lifetime_seconds}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)


class ApiSessionGuard:
    """Signs management API calls in with the console session, if they carry its CSRF token.

    A request with an Authorization header is left to the API's own authentication. Reads
    need only the cookie; anything else also needs the `X-CSRF-Token` header, which another
    site cannot set, so a forged form post from elsewhere is refused.
    """

    def __init__(self, app: ASGIApp, signer: SessionSigner) -> None:
        self.app = app
        self.signer = signer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        session = None
        if scope["type"] == "http" and "authorization" not in headers:
            session = self.signer.loads(_cookie(scope))
        if session is not None and session.user is not None:
            if scope["method"] not in SAFE_METHODS and not csrf_matches(
                session, headers.get(CSRF_HEADER)
            ):
                refusal = DeniedError("a request signed in by the console needs its X-CSRF-Token")
                await error_response(refusal)(scope, receive, send)
                return
            scope.setdefault("state", {})["session_user"] = session.user
        await self.app(scope, receive, send)


def _offered_token(scope: Scope, body: bytes) -> str | None:
    headers = Headers(scope=scope)
    if CSRF_HEADER in headers:
        return headers[CSRF_HEADER]
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD)
    return values[0] if values else None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if it is over `MAX_FORM_BYTES`."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over `body` again, then waits on the real one (for disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
