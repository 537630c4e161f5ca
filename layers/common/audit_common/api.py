"""Request and response shapes of the HTTP API (ARCHITECTURE.md, "HTTP API")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from audit_common.models import MAX_BATCH_EVENTS, AuditEventBatch, AuditEventIn


def _ingest_shape(value: object) -> str:
    if isinstance(value, list):
        return "list"
    return "batch" if isinstance(value, dict) and "events" in value else "event"


EventList = Annotated[list[AuditEventIn], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]

IngestRequest = Annotated[
    Annotated[AuditEventBatch, Tag("batch")]
    | Annotated[EventList, Tag("list")]
    | Annotated[AuditEventIn, Tag("event")],
    Discriminator(_ingest_shape),
]
"""`POST /events` takes one event, `{"events": [...]}` or a bare JSON array, with up to 1000 events."""

ingest_request_adapter: TypeAdapter[AuditEventBatch | list[AuditEventIn] | AuditEventIn] = TypeAdapter(IngestRequest)


def events_of(body: AuditEventBatch | list[AuditEventIn] | AuditEventIn) -> list[AuditEventIn]:
    """The events of any accepted request shape, in order."""
    if isinstance(body, AuditEventBatch):
        return body.events
    return body if isinstance(body, list) else [body]


class EventResult(BaseModel):
    """What happened to one submitted event."""

    index: int = Field(description="Position of the event in the request (0 for a single event).")
    event_id: str
    status: Literal["created", "duplicate"]
    seq: int
    checksum: str = Field(description="SHA-256 of the stored event's canonical bytes, hex.")
    chain_hash: str
    content_matches: bool = Field(
        description="For a duplicate: whether the stored event has the same checksum as the one just sent."
    )


class IngestResponse(BaseModel):
    """Per-event outcomes of `POST /events`: 201 when all are new, 200 when some were already stored."""

    results: list[EventResult]
    created: int
    duplicates: int


class StoredEvent(BaseModel):
    """An event as stored, with its server-assigned integrity fields."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    event_id: str
    timestamp: str
    event_type: str
    user_id: str
    user_email: str | None
    session_id: str | None
    ip_address: str | None
    user_agent: str | None
    resource_path: str | None
    resource_id: str | None
    action: str
    status: str
    details: dict[str, object]
    security_level: str
    compliance_tags: list[str]
    parent_event_id: str | None
    metadata: dict[str, object]
    checksum: str
    prev_hash: str
    chain_hash: str
    received_at: str
    redacted_at: str | None
    redaction_reason: str | None


class EventPage(BaseModel):
    """One page of `GET /events`; pass `next_cursor` back as `cursor` for the next page."""

    events: list[StoredEvent]
    next_cursor: str | None


class VerifyResponse(BaseModel):
    """Result of chain verification over a seq range."""

    valid: bool
    checked: int = Field(description="Events whose checksum and links were checked.")
    redacted: int = Field(description="Redacted events among them (links checked, payload blank by design).")
    first_invalid_seq: int | None
    reason: str | None = Field(description="Kind of the first failure (docs/integrity.md).")
    message: str | None
    chain_id: str
    from_seq: int
    to_seq: int
    head_seq: int
    complete: bool = Field(description="False when the range was cut at the per-call limit; continue at next_from_seq.")
    next_from_seq: int | None


class ErrorDetail(BaseModel):
    """What went wrong, for people and programs."""

    code: str
    message: str


class FieldErrorOut(BaseModel):
    """One refused field; `index` is the event's position in a batch."""

    index: int | None
    field: str
    message: str


class ErrorResponse(BaseModel):
    """Every error answer: `{"error": {"code", "message"}}`, plus `errors` for refused input."""

    error: ErrorDetail
    errors: list[FieldErrorOut] | None = None
