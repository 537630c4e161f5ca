"""The audit event: enums, limits and the validated input model (ARCHITECTURE.md, "The event").

Input is lenient where it costs nothing (enum values or NAMEs in any case) and strict where
evidence is at stake: unknown fields, wrong types, NUL characters, over-long strings,
unparseable IP addresses, timestamps without a zone or in the future are all refused with a
message naming the field. Output always gives enum values.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from audit_common.integrity.canonical import is_exact_number
from audit_common.integrity.seal import SEALED_FIELDS, format_timestamp

MAX_BATCH_EVENTS: Final = 1000
MAX_DETAILS_BYTES: Final = 64 * 1024
MAX_JSON_DEPTH: Final = 32
MAX_FUTURE_SKEW: Final = timedelta(minutes=5)
# RFC 8785 treats every number as an IEEE double and prints it in its shortest form. A number in
# `details` or `metadata` is accepted only if that form has exactly its value (is_exact_number), so
# nothing a client sends is silently rounded: 9007199254740993 and 0.10000000000000001 are refused,
# 9007199254740994 and 1e21 kept. The HTTP API checks the request text (api.inexact_number_errors),
# because the JSON parser has already rounded every decimal to a double; here Python integers are checked.
NO_NUL_PATTERN: Final = r"^[^\x00]*$"
EVENT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$"
_EMAIL_RE: Final = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+$")
_SIXTEEN_DIGITS: Final = re.compile(rb"[0-9]{16}")


class EventType(StrEnum):
    """What happened."""

    FILE_UPLOAD = "file_upload"
    FILE_DOWNLOAD = "file_download"
    FILE_DELETE = "file_delete"
    FILE_MODIFY = "file_modify"
    FILE_ACCESS = "file_access"
    FILE_SHARE = "file_share"
    FOLDER_CREATE = "folder_create"
    FOLDER_DELETE = "folder_delete"
    USER_LOGIN = "user_login"
    USER_LOGOUT = "user_logout"
    USER_ACTIVITY = "user_activity"
    PERMISSION_CHANGE = "permission_change"
    SYSTEM_EVENT = "system_event"
    SECURITY_EVENT = "security_event"


class SecurityLevel(StrEnum):
    """How sensitive the event is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ComplianceStandard(StrEnum):
    """Compliance regimes an event is evidence for."""

    GDPR = "gdpr"
    HIPAA = "hipaa"
    SOX = "sox"
    PCI_DSS = "pci_dss"
    ISO_27001 = "iso_27001"
    CIS = "cis"


class EventStatus(StrEnum):
    """Outcome of the action. A failed login is `user_login` with status `failure`."""

    SUCCESS = "success"
    FAILURE = "failure"


def _lower_enum_input(value: Any) -> Any:
    # Every enum NAME is its value upper-cased, so lower-casing accepts both in any case.
    return value.lower() if isinstance(value, str) else value


def _text(max_length: int, min_length: int = 0) -> Any:
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=NO_NUL_PATTERN)


def _check_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise PydanticCustomError(
            "ip_address", "not a valid IPv4 or IPv6 address: '{value}'", {"value": value[:64]}
        ) from None
    # Stored and sealed as the IPv4 address: Python versions print mapped addresses differently.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_email(value: str) -> bool:
    """Whether `value` passes the event's `user_email` check."""
    return len(value) <= 320 and _EMAIL_RE.match(value) is not None


def _check_email(value: str | None) -> str | None:
    if value is not None and not _EMAIL_RE.match(value):
        raise PydanticCustomError("email", "not an email address")
    return value


def _require_timestamp_text(value: Any) -> Any:
    # Numbers are refused: a Unix time is ambiguous (seconds or milliseconds) as evidence.
    if isinstance(value, str | datetime):
        return value
    raise PydanticCustomError("timestamp_type", "must be an RFC 3339 date-time string, e.g. 2026-11-27T08:00:00Z")


def to_utc(value: datetime) -> datetime:
    """`value` in UTC; a time at the calendar's edge with an offset (0001-01-01T00:00:00+05:00) has no
    UTC equivalent in Python, and is refused as a validation error naming the field (not an OverflowError)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError("timestamp_range", "is outside the years 1 to 9999 once converted to UTC") from None


# The chain's own records (docs/integrity.md 6.3): written by the database in the transaction that redacts, or
# by the seal-v2 migration. One sent by an application would count as evidence about other rows: a forged
# redaction record or seal-version marker could make an intact chain fail verification.
CHAIN_RECORD_ACTIONS: Final = frozenset({"events_redacted", "seal_version_changed"})


def _check_action(value: str) -> str:
    if value in CHAIN_RECORD_ACTIONS:
        raise PydanticCustomError(
            "reserved_action",
            "{action} is reserved for the trail's own records of its chain (docs/integrity.md 6.3)",
            {"action": value},
        )
    return value


def _check_timestamp(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timestamp_zone", "must include a time zone offset or Z")
    value = to_utc(value)
    if value > datetime.now(UTC) + MAX_FUTURE_SKEW:
        raise PydanticCustomError("timestamp_future", "is more than 5 minutes in the future")
    return value


def check_json_object(value: dict[str, Any], max_bytes: int = MAX_DETAILS_BYTES) -> dict[str, Any]:
    """Refuse what JSONB or canonical JSON cannot keep exactly: NUL, inexact integers, deep nesting, size."""
    try:
        dumped = orjson.dumps(value)
    except TypeError:
        _walk_json(value, "", 0)  # names the offending path
        # Left: exact integers beyond 64 bits (10**21), which orjson does not write. They are kept as the
        # double they denote, as a parsed request body has them (same canonical form, and storable).
        value = _big_ints_as_doubles(value)
        dumped = orjson.dumps(value)
    # The serialised text shows when a full walk is needed, which is rare: a NUL is always written
    # as \u0000, an integer beyond 2^53 (only those can be inexact) needs 16 digits, and nesting
    # deeper than the limit needs more brackets than the limit. Skipping the walk otherwise saves a
    # few microseconds per event.
    if (
        b"\\u0000" in dumped
        or _SIXTEEN_DIGITS.search(dumped) is not None
        or dumped.count(b"{") + dumped.count(b"[") > MAX_JSON_DEPTH
    ):
        _walk_json(value, "", 0)
    size = len(dumped)
    if size > max_bytes:
        raise PydanticCustomError(
            "json_too_large",
            "is {size} bytes of JSON; the limit is {limit}",
            {"size": size, "limit": max_bytes},
        )
    return value


def _big_ints_as_doubles(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _big_ints_as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_doubles(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    return value


def _walk_json(value: Any, path: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise PydanticCustomError("json_depth", "nests deeper than {limit} levels", {"limit": MAX_JSON_DEPTH})
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("json_nul", "contains a NUL character at {path}", {"path": path or "."})
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return
    elif isinstance(value, int):
        if not is_exact_number(value):
            raise PydanticCustomError(
                "json_number",
                "has {number} at {path}, which cannot be stored exactly; send it as a string",
                {"number": number_text(value), "path": path or "."},
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise PydanticCustomError("json_key", "has a non-string key at {path}", {"path": path or "."})
            if "\x00" in key:
                raise PydanticCustomError(
                    "json_nul", "contains a NUL character in a key at {path}", {"path": path or "."}
                )
            _walk_json(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk_json(item, f"{path}[{index}]", depth + 1)
    else:
        raise PydanticCustomError("json_type", "holds a value that is not JSON at {path}", {"path": path or "."})


def number_text(number: Any, limit: int = 40) -> str:
    """A refused number as an error message shows it: its text, shortened if very long."""
    text = str(number)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _dedupe_tags(tags: list[ComplianceStandard]) -> list[ComplianceStandard]:
    return sorted(set(tags))


def _null_as_empty_object(value: Any) -> Any:
    # An explicit null means absent, as the sealed object has it (docs/integrity.md, section 1).
    return {} if value is None else value


def _null_as_empty_list(value: Any) -> Any:
    return [] if value is None else value


LenientEventType = Annotated[EventType, BeforeValidator(_lower_enum_input)]
LenientSecurityLevel = Annotated[SecurityLevel, BeforeValidator(_lower_enum_input)]
LenientStandard = Annotated[ComplianceStandard, BeforeValidator(_lower_enum_input)]
LenientStatus = Annotated[EventStatus, BeforeValidator(_lower_enum_input)]
EventId = Annotated[str, StringConstraints(pattern=EVENT_ID_PATTERN)]
JsonObject = Annotated[
    dict[str, Any],
    AfterValidator(check_json_object),
    BeforeValidator(_null_as_empty_object, json_schema_input_type=dict[str, Any] | None),
]


_JSON_OBJECT_DESCRIPTION: Final = (
    "Free-form JSON object, at most 64 KiB; null is {}. Each number must be exact as a double: a decimal "
    "that would be rounded (0.10000000000000001, 9007199254740993) is refused; send it as a string."
)


def new_event_id() -> str:
    """A server-side event id, for events that arrive without one (retries then cannot be detected)."""
    return str(uuid.uuid4())


class AuditEventIn(BaseModel):
    """One event as a client sends it. `event_id` is the idempotency key: send it to make retries safe."""

    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=False)

    event_id: EventId = Field(
        default_factory=new_event_id,
        description="Client-chosen id (1-255 of A-Z a-z 0-9 . _ : -); the idempotency key. Server UUID if absent.",
    )
    timestamp: Annotated[datetime, BeforeValidator(_require_timestamp_text), AfterValidator(_check_timestamp)] = Field(
        default_factory=lambda: datetime.now(UTC),
        description="When it happened, RFC 3339 with zone; at most 5 minutes in the future. Receipt time if absent.",
    )
    event_type: LenientEventType
    user_id: Annotated[str, _text(255, 1)]
    user_email: Annotated[Annotated[str, _text(320)] | None, AfterValidator(_check_email)] = None
    session_id: Annotated[str, _text(255)] | None = None
    ip_address: Annotated[Annotated[str, _text(64)] | None, AfterValidator(_check_ip)] = None
    user_agent: Annotated[str, _text(1024)] | None = None
    resource_path: Annotated[str, _text(4096)] | None = None
    resource_id: Annotated[str, _text(255)] | None = None
    action: Annotated[str, _text(255, 1), AfterValidator(_check_action)]
    status: LenientStatus = EventStatus.SUCCESS
    details: JsonObject = Field(default_factory=dict, description=_JSON_OBJECT_DESCRIPTION)
    security_level: LenientSecurityLevel = SecurityLevel.LOW
    compliance_tags: Annotated[
        list[LenientStandard],
        Field(max_length=16),
        AfterValidator(_dedupe_tags),
        BeforeValidator(
            _null_as_empty_list,
            json_schema_input_type=Annotated[list[LenientStandard], Field(max_length=16)] | None,
        ),
    ] = Field(default_factory=list, description="At most 16; stored deduplicated and sorted; null is [].")
    parent_event_id: Annotated[str, _text(255)] | None = None
    metadata: JsonObject = Field(default_factory=dict, description=_JSON_OBJECT_DESCRIPTION)

    def sealed_record(self) -> dict[str, Any]:
        """The sealed object itself, built from values validation already normalised.

        Equal to `sealed_object(self.sealed_fields())` (a unit test holds them together) but without
        normalising every value a second time: sealing is on the ingest hot path.
        """
        return {
            "event_id": self.event_id,
            "timestamp": format_timestamp(self.timestamp),
            "event_type": self.event_type.value,
            "user_id": self.user_id,
            "user_email": self.user_email,
            "session_id": self.session_id,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "resource_path": self.resource_path,
            "resource_id": self.resource_id,
            "action": self.action,
            "status": self.status.value,
            "details": self.details,
            "security_level": self.security_level.value,
            "compliance_tags": [tag.value for tag in self.compliance_tags],
            "parent_event_id": self.parent_event_id,
            "metadata": self.metadata,
        }

    def sealed_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The kept and the private fields of seal version 2, from values validation already normalised.

        Equal to `(kept_object(f), private_object(f))` for `f = self.sealed_fields()` (a unit test holds them
        together), without normalising every value a second time.
        """
        kept = {
            "event_id": self.event_id,
            "timestamp": format_timestamp(self.timestamp),
            "event_type": self.event_type.value,
            "user_id": self.user_id,
            "resource_path": self.resource_path,
            "resource_id": self.resource_id,
            "action": self.action,
            "status": self.status.value,
            "security_level": self.security_level.value,
            "compliance_tags": [tag.value for tag in self.compliance_tags],
            "parent_event_id": self.parent_event_id,
        }
        private = {
            "user_email": self.user_email,
            "session_id": self.session_id,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "details": self.details,
            "metadata": self.metadata,
        }
        return kept, private

    def sealed_fields(self) -> dict[str, Any]:
        """The sealed fields as the model holds them (datetime, enum members): `sealed_object` input."""
        return {name: getattr(self, name) for name in SEALED_FIELDS}


class AuditEventBatch(BaseModel):
    """Several events in one request, stored in order."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[AuditEventIn], Field(min_length=1, max_length=MAX_BATCH_EVENTS)]
