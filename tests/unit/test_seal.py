"""The sealed object and the event checksum (docs/integrity.md, "Sealed fields" and "Checksum")."""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785

from audit_common.event_store import seal_for_storage
from audit_common.integrity import (
    SEALED_FIELDS,
    SealError,
    canonical_bytes,
    canonical_ip_address,
    event_checksum,
    format_timestamp,
    sealed_object,
)
from audit_common.integrity.seal import (
    KEPT_FIELDS,
    PRIVATE_FIELDS,
    kept_object,
    payload_commitment,
    private_object,
    seal_v2,
    sealed_object_v2,
)
from audit_common.models import AuditEventIn
from tests.support.events import make_event


class EventType(enum.StrEnum):
    FILE_UPLOAD = "file_upload"


class Level(enum.StrEnum):
    LOW = "low"


class Status(str, enum.Enum):  # noqa: UP042 - the mixin form must work too
    SUCCESS = "success"


class Standard(enum.StrEnum):
    GDPR = "gdpr"
    SOX = "sox"
    HIPAA = "hipaa"


DETAILS = {
    "file_name": "report-2026.pdf",
    "size": 1048576,
    "mime": "application/pdf",
    "bucket": "docs",
    "md5": "9e107d9d372bb6826bd81d3542a419d6",
    "duration_ms": 12.5,
    "encrypted": True,
    "tags": ["q4", "finance"],
    "client": "web",
    "retries": 0,
}

ROW: dict[str, Any] = {
    "seq": 41,
    "event_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "timestamp": "2026-11-27T08:00:00.123456Z",
    "event_type": "file_upload",
    "user_id": "user-42",
    "user_email": "alice@example.com",
    "session_id": "sess-1",
    "ip_address": "192.0.2.10",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "resource_path": "/docs/report-2026.pdf",
    "resource_id": "file-9",
    "action": "upload",
    "status": "success",
    "details": DETAILS,
    "security_level": "low",
    "compliance_tags": ["gdpr", "sox"],
    "parent_event_id": None,
    "metadata": {"app": "files"},
    "checksum": "00" * 32,
    "prev_hash": "00" * 32,
    "chain_hash": "00" * 32,
    "received_at": "2026-11-27T08:00:01.000000Z",
    "redacted_at": None,
    "redaction_reason": None,
}

MODEL_DUMP: dict[str, Any] = {
    "event_id": uuid.UUID("7C9E6679-7425-40DE-944B-E07FC1F90AE7"),
    "timestamp": datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
    "event_type": EventType.FILE_UPLOAD,
    "user_id": "user-42",
    "user_email": "alice@example.com",
    "session_id": "sess-1",
    "ip_address": ipaddress.ip_address("192.0.2.10"),
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    "resource_path": "/docs/report-2026.pdf",
    "resource_id": "file-9",
    "action": "upload",
    "status": Status.SUCCESS,
    "details": DETAILS,
    "security_level": Level.LOW,
    "compliance_tags": [Standard.SOX, Standard.GDPR, Standard.SOX],
    "metadata": {"app": "files"},
}


def test_sealed_fields_are_exactly_the_documented_ones() -> None:
    assert SEALED_FIELDS == (
        "event_id",
        "timestamp",
        "event_type",
        "user_id",
        "user_email",
        "session_id",
        "ip_address",
        "user_agent",
        "resource_path",
        "resource_id",
        "action",
        "status",
        "details",
        "security_level",
        "compliance_tags",
        "parent_event_id",
        "metadata",
    )


def test_a_model_dump_and_its_stored_row_seal_the_same() -> None:
    # Given the same event as a model dump (datetime with offset, enums, ipaddress, UUID) and as a row
    # Then both give the same sealed object and checksum
    assert sealed_object(MODEL_DUMP) == sealed_object(ROW)
    assert event_checksum(MODEL_DUMP) == event_checksum(ROW)


def test_sealed_object_has_every_field_and_ignores_the_rest() -> None:
    sealed = sealed_object(ROW)
    assert tuple(sealed) == SEALED_FIELDS
    assert "seq" not in sealed
    assert "checksum" not in sealed


def test_absent_fields_are_null_and_absent_objects_empty() -> None:
    # Given only the required minimum
    sealed = sealed_object({"event_id": "e1", "timestamp": "2026-11-27T08:00:00Z", "event_type": "user_login"})
    # Then every key is present, optional scalars null, objects {} and tags []
    assert sealed == {
        "event_id": "e1",
        "timestamp": "2026-11-27T08:00:00.000000Z",
        "event_type": "user_login",
        "user_id": None,
        "user_email": None,
        "session_id": None,
        "ip_address": None,
        "user_agent": None,
        "resource_path": None,
        "resource_id": None,
        "action": None,
        "status": None,
        "details": {},
        "security_level": None,
        "compliance_tags": [],
        "parent_event_id": None,
        "metadata": {},
    }
    assert sealed_object({"details": None, "metadata": None, "compliance_tags": None}) == sealed_object({})


def test_checksum_is_sha256_of_the_rfc8785_bytes() -> None:
    checksum = event_checksum(ROW)
    assert len(checksum) == 32
    assert checksum == hashlib.sha256(rfc8785.dumps(sealed_object(ROW))).digest()
    assert checksum == hashlib.sha256(canonical_bytes(sealed_object(ROW))).digest()


@pytest.mark.parametrize("field", SEALED_FIELDS)
def test_changing_any_sealed_field_changes_the_checksum(field: str) -> None:
    replacement: dict[str, Any] = {
        "timestamp": "2026-11-27T08:00:00.123457Z",
        "ip_address": "192.0.2.11",
        "details": {**DETAILS, "size": 1048577},
        "metadata": {"app": "files", "x": 1},
        "compliance_tags": ["gdpr"],
    }
    changed = {**ROW, field: replacement.get(field, "changed")}
    assert event_checksum(changed) != event_checksum(ROW)


def test_server_assigned_fields_do_not_change_the_checksum() -> None:
    changed = {**ROW, "seq": 99, "checksum": "ff" * 32, "received_at": "2030-01-01T00:00:00Z"}
    assert event_checksum(changed) == event_checksum(ROW)


def test_strings_are_sealed_as_stored_without_case_folding() -> None:
    # An upper-cased enum in a row is a changed row, not an equivalent one
    assert event_checksum({**ROW, "event_type": "FILE_UPLOAD"}) != event_checksum(ROW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-27T08:00:00.123456Z", "2026-11-27T08:00:00.123456Z"),
        ("2026-11-27T08:00:00Z", "2026-11-27T08:00:00.000000Z"),
        ("2026-11-27T09:00:00.5+01:00", "2026-11-27T08:00:00.500000Z"),
        ("2026-11-27 08:00:00.123456+00:00", "2026-11-27T08:00:00.123456Z"),
        ("2026-11-27T00:30:00-05:30", "2026-11-27T06:00:00.000000Z"),
        ("2026-12-31T23:59:59.999999-01:00", "2027-01-01T00:59:59.999999Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00.000000Z"),
        (datetime(2026, 11, 27, 8, 0, tzinfo=UTC), "2026-11-27T08:00:00.000000Z"),
        (
            datetime(2026, 11, 27, 3, 0, 0, 7, tzinfo=timezone(timedelta(hours=-5))),
            "2026-11-27T08:00:00.000007Z",
        ),
    ],
)
def test_format_timestamp(value: datetime | str, expected: str) -> None:
    assert format_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T08:00:00.123456",  # naive
        datetime(2026, 11, 27, 8, 0),  # naive
        "27/11/2026 08:00",
        "2026-13-01T00:00:00Z",
        "",
        1764230400,
        "9999-12-31T23:00:00-02:00",  # beyond year 9999 in UTC
    ],
)
def test_format_timestamp_refuses(value: Any) -> None:
    with pytest.raises(SealError):
        format_timestamp(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:db8:0:1:0:0:0:0", "2001:db8:0:1::"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("::FFFF:C000:0201", "192.0.2.1"),
        (ipaddress.ip_address("::ffff:192.0.2.1"), "192.0.2.1"),
        (ipaddress.ip_address("2001:db8::1"), "2001:db8::1"),
        (ipaddress.ip_address("192.0.2.1"), "192.0.2.1"),
        ("::1", "::1"),
        (None, None),
    ],
)
def test_ip_addresses_in_compressed_form_mapped_as_ipv4(value: Any, expected: str | None) -> None:
    assert canonical_ip_address(value) == expected
    assert sealed_object({"ip_address": value})["ip_address"] == expected


@pytest.mark.parametrize("value", ["192.0.2.256", "example.com", "10.0.0.0/8", "", 3232235777])
def test_invalid_ip_addresses_are_refused(value: Any) -> None:
    with pytest.raises(SealError, match="ip_address"):
        sealed_object({"ip_address": value})


def test_compliance_tags_are_sorted_and_unique() -> None:
    assert sealed_object({"compliance_tags": ["sox", "gdpr", "sox"]})["compliance_tags"] == ["gdpr", "sox"]
    assert sealed_object({"compliance_tags": (Standard.HIPAA, "gdpr")})["compliance_tags"] == [
        "gdpr",
        "hipaa",
    ]
    assert sealed_object({"compliance_tags": []})["compliance_tags"] == []


@pytest.mark.parametrize("value", ["gdpr", [None], [1], {"gdpr": True}])
def test_bad_compliance_tags_are_refused(value: Any) -> None:
    with pytest.raises(SealError, match="compliance_tags"):
        sealed_object({"compliance_tags": value})


def test_enum_members_seal_as_their_values() -> None:
    sealed = sealed_object({"event_type": EventType.FILE_UPLOAD, "status": Status.SUCCESS})
    assert sealed["event_type"] == "file_upload"
    assert type(sealed["status"]) is str
    assert sealed["status"] == "success"


def test_non_string_values_in_scalar_fields_are_refused() -> None:
    class Number(enum.Enum):
        ONE = 1

    with pytest.raises(SealError, match="event_type"):
        sealed_object({"event_type": Number.ONE})
    with pytest.raises(SealError, match="user_id"):
        sealed_object({"user_id": 42})


@pytest.mark.parametrize("field", ["details", "metadata"])
def test_objects_must_be_objects(field: str) -> None:
    with pytest.raises(SealError, match=field):
        sealed_object({field: '{"a": 1}'})
    with pytest.raises(SealError, match=field):
        sealed_object({field: [1]})


def test_details_are_sealed_as_given() -> None:
    details = {"b": 1.0, "a": {"nested": [1, "two", None]}, "ünï": "çødé"}
    assert sealed_object({"details": details})["details"] is details


# --- seal version 2 ---------------------------------------------------------------------------------

SALT = bytes.fromhex("00112233445566778899aabbccddeeff")


def test_private_and_kept_fields_split_the_sealed_fields() -> None:
    assert PRIVATE_FIELDS == ("user_email", "session_id", "ip_address", "user_agent", "details", "metadata")
    assert set(KEPT_FIELDS) | set(PRIVATE_FIELDS) == set(SEALED_FIELDS)
    assert not set(KEPT_FIELDS) & set(PRIVATE_FIELDS)
    assert len(KEPT_FIELDS) == 11


def test_the_v2_sealed_object_has_the_kept_fields_the_version_and_the_commitment() -> None:
    commitment = payload_commitment(SALT, private_object(ROW))
    sealed = sealed_object_v2(kept_object(ROW), commitment)
    assert set(sealed) == {*KEPT_FIELDS, "seal", "payload_commitment"}
    assert sealed["seal"] == 2 and sealed["payload_commitment"] == commitment.hex()
    assert commitment == hashlib.sha256(SALT + rfc8785.dumps(private_object(ROW))).digest()
    assert seal_v2(ROW, SALT) == (commitment, hashlib.sha256(rfc8785.dumps(sealed)).digest())


def test_the_ingest_fast_path_seals_exactly_as_the_spec() -> None:
    """Given a validated event, Then seal_for_storage (the model's already-normal values, orjson for the kept
    part) gives the very commitment and checksum of seal_v2 over the generic sealing rules."""
    event = AuditEventIn.model_validate(
        make_event(
            1, timestamp="2026-11-27T09:00:00.5+01:00", ip_address="::ffff:192.0.2.1", details={"r": 0.1, "n": 2.0}
        )
    )
    stored = seal_for_storage(event, SALT)
    commitment, checksum = seal_v2(event.sealed_fields(), SALT)
    assert (stored["payload_commitment"], stored["checksum"], stored["seal_salt"]) == (
        commitment.hex(),
        checksum.hex(),
        SALT.hex(),
    )
    assert event.sealed_parts() == (kept_object(event.sealed_fields()), private_object(event.sealed_fields()))
    assert event_checksum({**stored, "seal_version": 2}) == checksum


def test_each_event_gets_its_own_salt() -> None:
    event = AuditEventIn.model_validate(make_event(2))
    first, second = seal_for_storage(event), seal_for_storage(event)
    assert first["seal_salt"] != second["seal_salt"] and len(bytes.fromhex(first["seal_salt"])) == 16
    assert first["checksum"] != second["checksum"]


@pytest.mark.parametrize("field", PRIVATE_FIELDS)
def test_a_private_field_changes_the_commitment_and_a_kept_field_the_checksum(field: str) -> None:
    commitment, checksum = seal_v2(ROW, SALT)
    changed = dict(ROW)
    changed[field] = {"x": 1} if field in ("details", "metadata") else ("10.1.2.3" if field == "ip_address" else "x")
    assert seal_v2(changed, SALT)[0] != commitment
    for kept in ("user_id", "action", "resource_path"):
        other = dict(ROW, **{kept: "other"})
        assert seal_v2(other, SALT) == (commitment, seal_v2(other, SALT)[1])
        assert seal_v2(other, SALT)[1] != checksum


def test_a_stored_v2_row_needs_its_commitment() -> None:
    with pytest.raises(SealError):
        event_checksum({**ROW, "seal_version": 2})
    with pytest.raises(SealError):
        event_checksum({**ROW, "seal_version": 3, "payload_commitment": "00" * 32})
