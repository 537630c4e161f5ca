"""Scheduled invocations: EventBridge Scheduler delivers the schedule's explicit `Input` as the event."""

from __future__ import annotations

from typing import Any

from audit_common.errors import BadRequest


def require_action(event: Any, action: str) -> None:
    """Refuse (rather than guess at) anything but `{"action": <action>}`: a misrouted schedule must fail loudly."""
    if not isinstance(event, dict) or event.get("action") != action:
        raise BadRequest(f"action: expected {action!r}, got {event!r:.100}")
