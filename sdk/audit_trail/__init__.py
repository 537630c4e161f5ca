"""audit_trail: the Python SDK of the tamper-evident audit trail (the seed's API), its CLI and local stack.

    from audit_trail import AuditLogger, AuditEventType, SecurityLevel, ComplianceStandard
    from audit_trail.config import AuditConfig, setup_production_audit_logger

Importing the package is light: the logger, its configuration and the shared event model. HTTP
(httpx), the database driver (psycopg), boto3 and web frameworks load only when a logger is started
with that destination or a middleware is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit_common.models import ComplianceStandard, EventStatus, EventType, SecurityLevel
from audit_trail.buffer import BufferStats
from audit_trail.config import AuditConfig, ConfigError, OverflowPolicy
from audit_trail.errors import (
    APIError,
    AuditTrailError,
    AuthenticationError,
    BufferFullError,
    LoggerClosedError,
    NotAvailableError,
)
from audit_trail.factory import (
    AuditLoggerFactory,
    setup_compliance_audit_logger,
    setup_development_audit_logger,
    setup_production_audit_logger,
)
from audit_trail.helpers import (
    log_file_operation,
    log_file_operation_sync,
    log_user_activity,
    log_user_activity_sync,
)
from audit_trail.logger import AuditContext, AuditEvent, AuditLogger

if TYPE_CHECKING:
    from audit_trail.middleware.asgi import AuditASGIMiddleware, FastAPIAuditMiddleware
    from audit_trail.middleware.flask import FlaskAuditMiddleware

AuditEventType = EventType
"""The seed's name for the shared layer's `EventType`."""

__all__ = [
    "APIError",
    "AuditASGIMiddleware",
    "AuditConfig",
    "AuditContext",
    "AuditEvent",
    "AuditEventType",
    "AuditLogger",
    "AuditLoggerFactory",
    "AuditTrailError",
    "AuthenticationError",
    "BufferFullError",
    "BufferStats",
    "ComplianceStandard",
    "ConfigError",
    "EventStatus",
    "EventType",
    "FastAPIAuditMiddleware",
    "FlaskAuditMiddleware",
    "LoggerClosedError",
    "NotAvailableError",
    "OverflowPolicy",
    "SecurityLevel",
    "log_file_operation",
    "log_file_operation_sync",
    "log_user_activity",
    "log_user_activity_sync",
    "setup_compliance_audit_logger",
    "setup_development_audit_logger",
    "setup_production_audit_logger",
]

_LAZY = {
    "FlaskAuditMiddleware": "audit_trail.middleware.flask",
    "AuditASGIMiddleware": "audit_trail.middleware.asgi",
    "FastAPIAuditMiddleware": "audit_trail.middleware.asgi",
}


def __getattr__(name: str) -> Any:
    # PEP 562: middleware loads its framework only when asked for.
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'audit_trail' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
