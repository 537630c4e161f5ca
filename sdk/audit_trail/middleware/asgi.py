"""`AuditASGIMiddleware`: one audit event per HTTP request for FastAPI, Starlette or any ASGI app.

    app = FastAPI()
    app.add_middleware(AuditASGIMiddleware, audit_logger=logger)

A pure ASGI middleware rather than Starlette's `BaseHTTPMiddleware` (what `@app.middleware("http")`
builds, as in the seed's example): it does not buffer response bodies or break streaming responses
and background tasks, and it needs no framework import at all. It reads the status from the
`http.response.start` message and records the request even when the app raises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from audit_trail.logger import AuditLogger
from audit_trail.middleware.common import RequestAuditSettings, RequestInfo, valid_ip

log = logging.getLogger("audit_trail")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AuditASGIMiddleware:
    """Records each HTTP request (user from `X-User-ID`, path, method, status, duration) as an audit event."""

    def __init__(self, app: ASGIApp, /, audit_logger: AuditLogger, **settings: Any) -> None:
        self.app = app
        self.audit_logger = audit_logger
        self.settings = RequestAuditSettings(**settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.settings.skip(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_and_record)
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._record(scope, status[0] if status else 500, time.perf_counter() - started, error)

    async def _record(self, scope: Scope, status: int, seconds: float, error: BaseException | None) -> None:
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        client = scope.get("client")
        info = RequestInfo(
            method=scope.get("method", "GET"),
            path=scope.get("path", "/"),
            headers=headers,
            client_ip=valid_ip(client[0] if client else None),
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        )
        try:
            event = self.settings.build_event(
                self.audit_logger, info, status_code=status, duration_ms=seconds * 1000, error=error
            )
            await self.audit_logger.log_event(event)
        except Exception:
            log.exception("could not record the audit event for %s %s", info.method, info.path)


FastAPIAuditMiddleware = AuditASGIMiddleware
"""The same middleware under the name a FastAPI user looks for."""
