"""`FlaskAuditMiddleware`: one audit event per Flask request, as the seed's Flask integration.

    app = Flask(__name__)
    logger = asyncio.run(setup_production_audit_logger())
    FlaskAuditMiddleware(app, logger)

Built on Flask's request hooks (before_request, after_request, teardown_request) rather than WSGI
wrapping, so the event sees the matched endpoint and the final status, and a request that raises is
still recorded (teardown runs for every request), exactly once. Logging only buffers the event:
the request does not wait for the audit API (unless the buffer is full under `overflow_policy="block"`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from audit_trail.logger import AuditLogger
from audit_trail.middleware.common import RequestAuditSettings, RequestInfo, valid_ip

if TYPE_CHECKING:
    from flask import Flask, Response

log = logging.getLogger("audit_trail")
_STATE = "_audit_trail_request"


class FlaskAuditMiddleware:
    """Records each request (user from `X-User-ID`, path, method, status, duration) as an audit event."""

    def __init__(self, app: Flask | None = None, audit_logger: AuditLogger | None = None, **settings: Any) -> None:
        self.audit_logger = audit_logger
        self.settings = RequestAuditSettings(**settings)
        if app is not None:
            self.init_app(app, audit_logger)

    def init_app(self, app: Flask, audit_logger: AuditLogger | None = None) -> None:
        """Attach to an app (the Flask extension pattern, for application factories)."""
        if audit_logger is not None:
            self.audit_logger = audit_logger
        if self.audit_logger is None:
            raise ValueError("FlaskAuditMiddleware needs an AuditLogger")
        app.before_request(self._before)
        app.after_request(self._after)
        app.teardown_request(self._teardown)
        app.extensions["audit_trail"] = self

    def _before(self) -> None:
        from flask import g, request

        if not self.settings.skip(request.path):
            setattr(g, _STATE, {"started": time.perf_counter(), "status": None})

    def _after(self, response: Response) -> Response:
        from flask import g

        state = getattr(g, _STATE, None)
        if state is not None:
            state["status"] = response.status_code
        return response

    def _teardown(self, error: BaseException | None) -> None:
        from flask import g, request

        state = getattr(g, _STATE, None)
        if state is None or self.audit_logger is None:
            return
        setattr(g, _STATE, None)
        info = RequestInfo(
            method=request.method,
            path=request.path,
            headers={key.lower(): value for key, value in request.headers.items()},
            client_ip=valid_ip(request.remote_addr),
            query=dict(request.args.items()),
        )
        status = state["status"] if state["status"] is not None else 500
        try:
            event = self.settings.build_event(
                self.audit_logger,
                info,
                status_code=status,
                duration_ms=(time.perf_counter() - state["started"]) * 1000,
                error=error,
                extra={"endpoint": request.endpoint} if request.endpoint else None,
            )
            self.audit_logger.log_event_sync(event)
        except Exception:
            # Auditing must not turn a served request into an error page; the failure is logged loudly.
            log.exception("could not record the audit event for %s %s", request.method, request.path)
