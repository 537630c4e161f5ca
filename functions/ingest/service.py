"""Ingest logic: knows events and the SQL API, nothing of Lambda or HTTP."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from audit_common.api import EventPage, EventResult, IngestResponse, StoredEvent, request_events, validate_events
from audit_common.db import Transport
from audit_common.errors import BadRequest, FieldError, InvalidInput
from audit_common.integrity import canonical_bytes, sealed_object
from audit_common.models import AuditEventIn, ComplianceStandard, EventType, SecurityLevel
from audit_common.validation import invalid_input

FIRST_CHUNK_EVENTS = 100
CHUNK_EVENTS = 300
"""Events per SQL API call inside one request: the database stores one chunk while the next is
validated and sealed. The first chunk is smaller because nothing overlaps its preparation."""


def _chunk_bounds(count: int) -> Iterator[tuple[int, int]]:
    start, size = 0, FIRST_CHUNK_EVENTS
    while start < count:
        yield start, min(start + size, count)
        start, size = start + size, CHUNK_EVENTS


def seal_for_storage(event: AuditEventIn) -> dict[str, Any]:
    """The event's sealed object plus its checksum, as the SQL API's `ingest_events` takes it."""
    sealed = sealed_object(event.sealed_fields())
    record = dict(sealed)
    record["checksum"] = hashlib.sha256(canonical_bytes(sealed)).hexdigest()
    return record


def ingest_request(transport: Transport, body: Any) -> IngestResponse:
    """Validate a `POST /events` body and store its events, all or nothing, in one transaction.

    Every event is validated even after a bad one, so the refusal names all bad fields; any
    refusal rolls back what earlier chunks stored.
    """
    raw_events = request_events(body)

    def chunks() -> Iterator[list[dict[str, Any]]]:
        refused: list[FieldError] = []
        for start, end in _chunk_bounds(len(raw_events)):
            try:
                events = validate_events(raw_events[start:end], offset=start)
            except InvalidInput as exc:
                refused.extend(exc.errors)
                continue
            if not refused:
                yield [seal_for_storage(event) for event in events]
        if refused:
            raise invalid_input(refused)

    return _store(transport, chunks())


def store_events(transport: Transport, events: Sequence[AuditEventIn]) -> IngestResponse:
    """Store already validated events in one transaction; replays of stored event_ids are duplicates."""
    chunks = ([seal_for_storage(event) for event in events[start:end]] for start, end in _chunk_bounds(len(events)))
    return _store(transport, chunks)


def _store(transport: Transport, chunks: Iterable[list[dict[str, Any]]]) -> IngestResponse:
    outcomes = transport.call_chunked("ingest_events", "p_events", chunks)
    # The database numbers events within each call; the response numbers them within the request.
    results = [EventResult.model_validate({**outcome, "index": index}) for index, outcome in enumerate(outcomes)]
    created = sum(1 for result in results if result.status == "created")
    return IngestResponse(results=results, created=created, duplicates=len(results) - created)


def encode_cursor(seq: int, descending: bool) -> str:
    """An opaque page cursor: the last seq served and the direction."""
    raw = orjson.dumps({"v": 1, "seq": seq, "desc": descending})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, descending: bool) -> int:
    """The seq a cursor continues after; refuses foreign, corrupt or wrong-direction cursors."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        seq = data["seq"]
        if data.get("v") != 1 or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError("unknown cursor")
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("cursor: not a cursor this API issued") from None
    if data.get("desc") is not descending:
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
            "p_after_seq": decode_cursor(cursor, descending) if cursor else None,
            "p_limit": limit,
            "p_descending": descending,
        },
    )
    events = [StoredEvent.model_validate(row) for row in rows]
    next_cursor = encode_cursor(events[-1].seq, descending) if len(events) == limit else None
    return EventPage(events=events, next_cursor=next_cursor)


def get_event(transport: Transport, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    row = transport.call("get_event", {"p_event_id": event_id})
    return None if row is None else StoredEvent.model_validate(row)
