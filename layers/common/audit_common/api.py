"""Request and response shapes of the HTTP API (ARCHITECTURE.md, "HTTP API")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from audit_common.errors import FieldError
from audit_common.integrity.canonical import inexact_number_items, might_hold_inexact_number
from audit_common.integrity.digest import Digest
from audit_common.models import MAX_BATCH_EVENTS, NO_NUL_PATTERN, AuditEventBatch, AuditEventIn, number_text
from audit_common.validation import field_errors, invalid_input

MAX_SEQ: Final = 2**63 - 1
"""Largest seq or digest_seq (PostgreSQL bigint); larger query values are refused, not sent to SQL."""


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
"""`POST /events` takes one event, `{"events": [...]}` or a bare JSON array, with up to 1000 events.

This is the schema published in OpenAPI. The ingest function enforces it in two steps, the
envelope (`request_events`) and then the events (`validate_events`), because Powertools would
reduce a JSON array body to its first element for a type it does not see as a sequence.
"""

ingest_request_adapter: TypeAdapter[AuditEventBatch | list[AuditEventIn] | AuditEventIn] = TypeAdapter(IngestRequest)


class _BatchEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]


_envelope_adapter: TypeAdapter[_BatchEnvelope | list[Any] | dict[str, Any]] = TypeAdapter(
    Annotated[
        Annotated[_BatchEnvelope, Tag("batch")]
        | Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH_EVENTS), Tag("list")]
        | Annotated[dict[str, Any], Tag("event")],
        Discriminator(_ingest_shape),
    ]
)
_event_list_adapter: TypeAdapter[list[AuditEventIn]] = TypeAdapter(list[AuditEventIn])


def request_events(body: Any) -> list[Any]:
    """The raw events of a `POST /events` body, after checking its shape and size (not the events)."""
    try:
        envelope = _envelope_adapter.validate_python(body)
    except ValidationError as exc:
        raise invalid_input([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    if isinstance(envelope, _BatchEnvelope):
        return envelope.events
    return envelope if isinstance(envelope, list) else [envelope]


def inexact_number_errors(body: bytes | str | None) -> list[FieldError]:
    """Every number in an event's `details` or `metadata` that would not be stored exactly, from the
    request text itself (docs/integrity.md, section 1, "Numbers").

    The JSON parser has already rounded each decimal to a double by the time the events are validated
    (0.10000000000000001 arrives as 0.1, 1000000000000000000001 as 1e21), so the text is looked at:
    a prescreen that passes almost every body, and for the rest a second parse that keeps each number's
    exact decimal value. The errors name the event and the path: `details.ratio`.
    """
    if not body:
        return []
    text = body.encode() if isinstance(body, str) else body
    if not might_hold_inexact_number(text):
        return []
    try:
        parsed = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
        return []  # not JSON this parser reads (the request is refused on its own account)
    if isinstance(parsed, dict) and isinstance(parsed.get("events"), list):
        raw_events: list[Any] = parsed["events"]
    else:
        raw_events = parsed if isinstance(parsed, list) else [parsed]
    errors: list[FieldError] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            continue
        for name in ("details", "metadata"):
            value = raw.get(name)
            if isinstance(value, dict):
                errors.extend(
                    FieldError(
                        field=path,
                        message=f"{number_text(number)} cannot be stored exactly; send it as a string",
                        index=index,
                    )
                    for path, number in inexact_number_items(value, name)
                )
    return errors


def validate_events(raw_events: Sequence[Any], number_errors: Sequence[FieldError] = ()) -> list[AuditEventIn]:
    """Validate every event; each error is located at the event's position in the request.

    `number_errors` (from `inexact_number_errors`) are reported with the others, in event order, in
    place of the model's own verdict on the same numbers."""
    try:
        events = _event_list_adapter.validate_python(raw_events)
    except ValidationError as exc:
        found = field_errors([{**e, "loc": ("body", "list", *e["loc"])} for e in exc.errors()])
        if number_errors:
            named = {(error.index, error.field.partition(".")[0]) for error in number_errors}
            found = [e for e in found if (e.index, e.field) not in named or "exactly" not in e.message]
            found = sorted([*number_errors, *found], key=lambda e: -1 if e.index is None else e.index)
        raise invalid_input(found) from None
    if number_errors:
        raise invalid_input(list(number_errors))
    return events


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
    seal_version: int = Field(
        description="1 or 2 (docs/integrity.md section 1): how the checksum was computed from the fields"
    )
    seal_salt: str | None = Field(
        description="Seal version 2: the 16-byte salt (hex) of payload_commitment; null once redacted"
    )
    payload_commitment: str | None = Field(
        description="Seal version 2: SHA-256(seal_salt || canonical private fields), hex; kept after redaction"
    )
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


class AlertOut(BaseModel):
    """A risk-scored security alert: one per (rule, key, window)."""

    alert_id: str
    rule: str
    alert_key: str = Field(description="The user_id or IP address the rule counted for.")
    window_start: str
    window_seconds: int
    severity: Literal["low", "medium", "high", "critical"]
    risk_score: float = Field(ge=0, le=10)
    attack_id: str = Field(description="MITRE ATT&CK technique id.")
    event_count: int
    event_ids: list[str] = Field(description="The events that triggered it (at most 200, oldest first).")
    first_event_at: str
    last_event_at: str
    trigger_seq: int
    summary: str
    context: dict[str, Any]
    status: Literal["open", "acknowledged", "resolved"]
    status_note: str | None
    status_changed_by: str | None
    status_changed_at: str | None
    created_at: str
    updated_at: str
    published_at: str | None


class AlertPage(BaseModel):
    """One page of `GET /alerts`, newest first; pass `next_cursor` back as `cursor`."""

    alerts: list[AlertOut]
    next_cursor: str | None


class AlertUpdate(BaseModel):
    """`PATCH /alerts/{alert_id}`: acknowledge, resolve or reopen, with an optional note."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "acknowledged", "resolved"]
    note: Annotated[str, Field(max_length=2000, pattern=NO_NUL_PATTERN)] | None = None


class SignedDigest(BaseModel):
    """A signed digest as stored: the object (its RFC 8785 bytes are what was signed), the signature and the key."""

    digest: Digest = Field(description="The digest object; its RFC 8785 canonical bytes are the S3 object body.")
    s3_key: str = Field(description="Key of the digest object in the digest bucket.")
    signature: str = Field(description="Base64 KMS signature over the canonical bytes (also in S3 metadata).")
    public_key_pem: str | None = Field(description="The signing key's public half (SubjectPublicKeyInfo PEM).")
    public_key_s3_key: str | None = Field(description="Where the same PEM lies beside the digests in the bucket.")


class InclusionProofResponse(BaseModel):
    """`GET /events/{event_id}/proof`: RFC 6962 inclusion of the event's checksum in a signed Merkle root."""

    event_id: str
    seq: int
    checksum: str = Field(description="The event's checksum (the leaf data: leaf hash = SHA-256(0x00 || checksum)).")
    leaf_index: int = Field(description="seq - 1")
    tree_size: int
    root_hash: str
    inclusion_proof: list[str] = Field(description="RFC 6962 PATH, hex, from the leaf's sibling up to the root.")
    digest: SignedDigest


class ConsistencyProofResponse(BaseModel):
    """`GET /integrity/consistency`: RFC 6962 proof that one digest's tree is a prefix of a later one's."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    consistency_proof: list[str] = Field(description="RFC 6962 PROOF(old_size, D[new_size]), hex.")
    old_digest: SignedDigest
    new_digest: SignedDigest
