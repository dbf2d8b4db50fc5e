"""ASGI middleware: request ids, the registry API version header, one access line per request."""

from __future__ import annotations

import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moorage.log import bind_request_fields, clear_request_fields, get_logger

log = get_logger("moorage.access")


class AccessLogMiddleware:
    """Tags every request with an id and logs one line when its response is complete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        clear_request_fields()
        bind_request_fields(request_id=request_id)
        path: str = scope["path"]
        started = time.perf_counter()
        status = 500
        sent_bytes = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status, sent_bytes
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                if path.startswith("/v2"):
                    headers["Docker-Distribution-API-Version"] = "registry/2.0"
            elif message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            log.info(
                "request completed",
                method=scope["method"],
                path=path,
                status=status,
                bytes=sent_bytes,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
