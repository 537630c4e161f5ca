"""The seed's convenience functions: one call per file operation or user activity.

`log_file_operation(audit_logger=logger, operation="upload", ...)` and
`log_user_activity(audit_logger=logger, activity="login", ...)` are coroutines, as in the seed;
`*_sync` twins serve code without an event loop.
"""

from __future__ import annotations

from typing import Any, Final

from audit_common.models import ComplianceStandard, EventStatus, EventType, SecurityLevel
from audit_trail.logger import AuditEvent, AuditLogger

FILE_OPERATIONS: Final[dict[str, EventType]] = {
    "upload": EventType.FILE_UPLOAD,
    "download": EventType.FILE_DOWNLOAD,
    "delete": EventType.FILE_DELETE,
    "modify": EventType.FILE_MODIFY,
    "access": EventType.FILE_ACCESS,
    "share": EventType.FILE_SHARE,
    "folder_create": EventType.FOLDER_CREATE,
    "folder_delete": EventType.FOLDER_DELETE,
}
# Destructive or exposing operations default to a higher level; pass security_level to override.
_FILE_LEVELS: Final[dict[EventType, SecurityLevel]] = {
    EventType.FILE_DELETE: SecurityLevel.HIGH,
    EventType.FOLDER_DELETE: SecurityLevel.HIGH,
    EventType.FILE_SHARE: SecurityLevel.MEDIUM,
    EventType.FILE_MODIFY: SecurityLevel.MEDIUM,
}
USER_ACTIVITIES: Final[dict[str, EventType]] = {
    "login": EventType.USER_LOGIN,
    "logout": EventType.USER_LOGOUT,
    "permission_change": EventType.PERMISSION_CHANGE,
}


def file_operation_event(
    audit_logger: AuditLogger,
    operation: str,
    user_id: str,
    file_path: str,
    *,
    user_email: str | None = None,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
    compliance_tags: list[ComplianceStandard] | None = None,
    security_level: SecurityLevel | str | None = None,
    status: EventStatus | str = EventStatus.SUCCESS,
    **fields: Any,
) -> AuditEvent:
    """The event `log_file_operation` logs (`operation`: upload, download, delete, modify, access, share...)."""
    event_type = FILE_OPERATIONS.get(operation.lower())
    if event_type is None:
        raise ValueError(f"operation: {operation!r} is not one of {', '.join(FILE_OPERATIONS)}")
    return audit_logger.create_audit_event(
        event_type=event_type,
        user_id=user_id,
        action=f"file_{operation.lower()}" if not operation.startswith("folder") else operation.lower(),
        resource_path=file_path,
        user_email=user_email,
        ip_address=ip_address,
        details=details,
        compliance_tags=compliance_tags,
        security_level=security_level or _FILE_LEVELS.get(event_type, SecurityLevel.LOW),
        status=status,
        **fields,
    )


async def log_file_operation(
    audit_logger: AuditLogger, operation: str, user_id: str, file_path: str, **kwargs: Any
) -> AuditEvent:
    """Log a file operation; returns the event logged."""
    event = file_operation_event(audit_logger, operation, user_id, file_path, **kwargs)
    await audit_logger.log_event(event)
    return event


def log_file_operation_sync(
    audit_logger: AuditLogger, operation: str, user_id: str, file_path: str, **kwargs: Any
) -> AuditEvent:
    """Synchronous `log_file_operation`."""
    event = file_operation_event(audit_logger, operation, user_id, file_path, **kwargs)
    audit_logger.log_event_sync(event)
    return event


def user_activity_event(
    audit_logger: AuditLogger,
    activity: str,
    user_id: str,
    *,
    user_email: str | None = None,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
    status: EventStatus | str = EventStatus.SUCCESS,
    resource_path: str | None = None,
    **fields: Any,
) -> AuditEvent:
    """The event `log_user_activity` logs: login/logout get their own types, anything else is user_activity.

    A failed login is `activity="login", status="failure"` (the detection rules count those).
    """
    event_type = USER_ACTIVITIES.get(activity.lower(), EventType.USER_ACTIVITY)
    return audit_logger.create_audit_event(
        event_type=event_type,
        user_id=user_id,
        action=activity,
        resource_path=resource_path,
        user_email=user_email,
        ip_address=ip_address,
        details=details,
        status=status,
        **fields,
    )


async def log_user_activity(audit_logger: AuditLogger, activity: str, user_id: str, **kwargs: Any) -> AuditEvent:
    """Log a user activity (login, logout, anything else); returns the event logged."""
    event = user_activity_event(audit_logger, activity, user_id, **kwargs)
    await audit_logger.log_event(event)
    return event


def log_user_activity_sync(audit_logger: AuditLogger, activity: str, user_id: str, **kwargs: Any) -> AuditEvent:
    """Synchronous `log_user_activity`."""
    event = user_activity_event(audit_logger, activity, user_id, **kwargs)
    audit_logger.log_event_sync(event)
    return event
