"""Ingest logic: knows events and the SQL API, nothing of Lambda or HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audit_common.api import (
    EventPage,
    IngestResponse,
    StoredEvent,
    inexact_number_errors,
    request_events,
    validate_events,
)
from audit_common.cursor import decode_cursor, encode_cursor
from audit_common.db import Transport
from audit_common.errors import BadRequest
from audit_common.event_store import store_events
from audit_common.models import ComplianceStandard, EventType, SecurityLevel


def ingest_request(transport: Transport, body: Any, text: bytes | str | None = None) -> IngestResponse:
    """Validate a `POST /events` body and store its events; a refusal names every bad field and stores nothing.

    `text` is the request body as sent, of which `body` is the parse: numbers are checked in it, since
    the parse has rounded them (api.inexact_number_errors)."""
    raw_events = request_events(body)
    return store_events(transport, validate_events(raw_events, inexact_number_errors(text)))


def encode_seq_cursor(seq: int, descending: bool) -> str:
    """An opaque page cursor: the last seq served and the direction."""
    return encode_cursor({"seq": seq, "desc": descending})


def decode_seq_cursor(cursor: str, descending: bool) -> int:
    """The seq a cursor continues after; refuses foreign, corrupt or wrong-direction cursors."""
    position = decode_cursor(cursor, {"seq": int, "desc": bool})
    seq: int = position["seq"]
    if seq < 0:
        raise BadRequest("cursor: not a cursor this API issued")
    if position["desc"] is not descending:
        raise BadRequest("cursor: issued for the other sort order")
    return seq


def list_events(
    transport: Transport,
    *,
    user_id: str | None = None,
    event_type: EventType | None = None,
    security_level: SecurityLevel | None = None,
    compliance_tag: ComplianceStandard | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
    descending: bool = True,
) -> EventPage:
    """One page of events matching every given filter, newest first unless `descending` is False."""
    if start is not None and end is not None and start >= end:
        raise BadRequest("from: must be earlier than to")
    rows = transport.call(
        "list_events",
        {
            "p_user_id": user_id,
            "p_event_type": event_type.value if event_type else None,
            "p_security_level": security_level.value if security_level else None,
            "p_compliance_tag": compliance_tag.value if compliance_tag else None,
            "p_from": start,
            "p_to": end,
            "p_after_seq": decode_seq_cursor(cursor, descending) if cursor else None,
            "p_limit": limit,
            "p_descending": descending,
        },
    )
    events = [StoredEvent.model_validate(row) for row in rows]
    next_cursor = encode_seq_cursor(events[-1].seq, descending) if len(events) == limit else None
    return EventPage(events=events, next_cursor=next_cursor)


def get_event(transport: Transport, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    row = transport.call("get_event", {"p_event_id": event_id})
    return None if row is None else StoredEvent.model_validate(row)
