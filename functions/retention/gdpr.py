"""GDPR data-subject requests: Art. 15 export and Art. 17 erasure, each recorded in the trail itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from audit_common.api import StoredEvent
from audit_common.db import Transport
from audit_common.errors import NotFound
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn, ComplianceStandard, EventType, SecurityLevel

EXPORT_PAGE = 5000


class SubjectExport(BaseModel):
    """Everything the trail holds about one subject (Art. 15)."""

    user_id: str
    exported_at: str
    request_id: str
    count: int
    events: list[StoredEvent]


class KeptEvent(BaseModel):
    """An event not erased, and the ground for keeping it (Art. 17(3))."""

    event_id: str
    ground: str
    tags: list[str] | None = None
    keep_until: str | None = None


class ErasureResult(BaseModel):
    """What an erasure did, and what it could not do and why."""

    user_id: str
    request_id: str
    events: int
    redacted: int
    already_redacted: int
    kept: list[KeptEvent]


def export_subject(transport: Transport, user_id: str, *, actor: str, reader: Transport | None = None) -> SubjectExport:
    """All events of `user_id`, oldest first; 404 when the trail holds nothing about them.

    `reader` reads the events (the caller's own identity, so RLS applies); `transport` records the export.
    """
    events: list[StoredEvent] = []
    after = 0
    while True:
        page = (reader or transport).call(
            "subject_events", {"p_user_id": user_id, "p_after_seq": after, "p_limit": EXPORT_PAGE}
        )
        events += [StoredEvent.model_validate(row) for row in page]
        if len(page) < EXPORT_PAGE:
            break
        after = page[-1]["seq"]
    if not events:
        raise NotFound(f"user_id: the trail holds no events of {user_id!r}")
    request_id = str(uuid.uuid4())
    _record(transport, "gdpr_export", user_id, actor, request_id, {"events": len(events)})
    return SubjectExport(
        user_id=user_id,
        exported_at=datetime.now(UTC).isoformat(),
        request_id=request_id,
        count=len(events),
        events=events,
    )


def erase_subject(transport: Transport, user_id: str, *, actor: str) -> ErasureResult:
    """Redact the subject's personal fields everywhere a hold or retention obligation does not forbid it."""
    request_id = str(uuid.uuid4())
    outcome = transport.call("erase_subject", {"p_user_id": user_id, "p_actor": actor, "p_request_id": request_id})
    if outcome is None:
        raise NotFound(f"user_id: the trail holds no events of {user_id!r}")
    result = ErasureResult.model_validate({**outcome, "request_id": request_id})
    _record(
        transport,
        "gdpr_erasure",
        user_id,
        actor,
        request_id,
        {"redacted": result.redacted, "kept": len(result.kept), "grounds": sorted({k.ground for k in result.kept})},
    )
    return result


def _record(
    transport: Transport, action: str, subject: str, actor: str, request_id: str, facts: dict[str, Any]
) -> None:
    # The request is evidence of its own (Art. 30 records, Art. 5(2) accountability): it goes in
    # the chain like any event, with the actor as user and the subject named in details.
    event = AuditEventIn(
        event_id=f"{action}-{request_id}",
        event_type=EventType.SECURITY_EVENT,
        user_id=actor,
        resource_path=f"/subjects/{subject}",
        action=action,
        details={"subject": subject, "request_id": request_id, **facts},
        security_level=SecurityLevel.HIGH,
        compliance_tags=[ComplianceStandard.GDPR],
    )
    store_events(transport, [event])
