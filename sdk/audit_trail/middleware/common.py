"""What both middlewares record about a request, framework-free."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit_common.models import EventStatus, EventType, SecurityLevel
from audit_trail.logger import AuditEvent, AuditLogger

ANONYMOUS = "anonymous"
MAX_QUERY_VALUE = 256


@dataclass(frozen=True)
class RequestInfo:
    """The parts of a request an audit event keeps."""

    method: str
    path: str
    headers: Mapping[str, str]
    client_ip: str | None
    query: dict[str, str] = field(default_factory=dict)


UserIdGetter = Callable[[RequestInfo], str | None]


@dataclass
class RequestAuditSettings:
    """How requests become events (shared by the Flask and ASGI middleware)."""

    user_id_header: str = "X-User-ID"
    session_id_header: str = "X-Session-ID"
    action: str = "http_request"
    event_type: EventType = EventType.USER_ACTIVITY
    security_level: SecurityLevel = SecurityLevel.LOW
    exclude_paths: tuple[str, ...] = ()
    # Query strings can carry tokens: their keys are always kept, their values only when asked for.
    record_query_values: bool = False
    user_id_getter: UserIdGetter | None = None

    def skip(self, path: str) -> bool:
        """True for paths that are not audited (health checks, static files)."""
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exclude_paths)

    def build_event(
        self,
        audit_logger: AuditLogger,
        request: RequestInfo,
        *,
        status_code: int,
        duration_ms: float,
        error: BaseException | None,
        extra: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """The event for one finished request: failure on 5xx or an exception, success otherwise."""
        user_id = (self.user_id_getter(request) if self.user_id_getter else None) or request.headers.get(
            self.user_id_header.lower()
        )
        details: dict[str, Any] = {
            "method": request.method,
            "response_status": status_code,
            "duration_ms": round(duration_ms, 3),
            "query_params": {
                key: (value[:MAX_QUERY_VALUE] if self.record_query_values else "")
                for key, value in request.query.items()
            },
        }
        if error is not None:
            details["error_type"] = type(error).__name__
        if extra:
            details.update(extra)
        failed = error is not None or status_code >= 500
        return audit_logger.create_audit_event(
            event_type=self.event_type,
            user_id=(user_id or ANONYMOUS)[:255],
            action=self.action,
            resource_path=request.path[:4096],
            ip_address=request.client_ip,
            user_agent=(request.headers.get("user-agent") or None),
            session_id=(request.headers.get(self.session_id_header.lower()) or None),
            status=EventStatus.FAILURE if failed else EventStatus.SUCCESS,
            security_level=self.security_level,
            details=details,
        )


def valid_ip(value: str | None) -> str | None:
    """The client address if it is an IP address (test clients report names like 'testclient')."""
    import ipaddress

    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
