"""Administrative changes made in SQL (retention policies, legal holds, writer tokens) copied into the chain.

They have no API route, so no function sees them happen; the database keeps them in append-only
tables and `audit.unchained_admin_changes` lists those not yet chained. Each becomes an event whose
event_id is derived from the change, so a retried or concurrent copy stores it once. The detect
sweep runs this every five minutes, which bounds how long a change stays out of the chain.
"""

from __future__ import annotations

from typing import Any, Final

from audit_common.db import Transport
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn, EventType, SecurityLevel

MAX_CHANGES_PER_CALL: Final = 500
_RESOURCES: Final[dict[str, str]] = {
    "retention_policy_change": "/retention/policies",
    "legal_hold_placed": "/retention/holds",
    "legal_hold_released": "/retention/holds",
    "writer_token_issued": "/access/writer-tokens",
    "writer_token_revoked": "/access/writer-tokens",
}


ADMIN_CHANGE_ACTIONS: Final = tuple(_RESOURCES)
"""Every action of the chained administrative changes."""


def admin_change_event(change: dict[str, Any]) -> AuditEventIn:
    """The chain event of one policy change or legal hold placed or released."""
    return AuditEventIn(
        event_id=str(change["event_id"]),
        timestamp=change["changed_at"],
        event_type=EventType.SYSTEM_EVENT,
        user_id=str(change["actor"] or "unknown"),
        resource_path=_RESOURCES[str(change["action"])],
        action=str(change["action"]),
        status="success",
        details={key: value for key, value in change["details"].items() if value is not None},
        security_level=SecurityLevel.HIGH,
    )


def chain_admin_changes(transport: Transport, limit: int = MAX_CHANGES_PER_CALL) -> int:
    """Copy the changes not yet in the chain into it; how many were new."""
    changes = transport.call("unchained_admin_changes", {"p_limit": limit})
    if not changes:
        return 0
    return store_events(transport, [admin_change_event(change) for change in changes]).created
