"""The event model: lenient where harmless, strict where evidence is at stake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from audit_common.api import ingest_request_adapter
from audit_common.models import AuditEventBatch, AuditEventIn, ComplianceStandard, EventType, SecurityLevel
from audit_common.validation import field_errors
from tests.support.events import make_event


def errors_of(data: Any) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ValidationError) as caught:
        ingest_request_adapter.validate_python(data)
    return [
        (e.index, e.field, e.message)
        for e in field_errors([{**x, "loc": ("body", *x["loc"])} for x in caught.value.errors()])
    ]


@pytest.mark.parametrize("value", ["FILE_UPLOAD", "file_upload", "File_Upload", "fIlE_uPlOaD"])
def test_enum_value_or_name_in_any_case(value: str) -> None:
    """Given an enum as value or NAME in any case, When validated, Then the value is stored."""
    assert AuditEventIn.model_validate(make_event(0, event_type=value)).event_type is EventType.FILE_UPLOAD


def test_defaults_fill_what_a_minimal_event_omits() -> None:
    """Given only type, user and action, When validated, Then id, time, status, level, tags and objects default."""
    event = AuditEventIn.model_validate({"event_type": "user_login", "user_id": "u1", "action": "login"})
    assert len(event.event_id) == 36
    assert datetime.now(UTC) - event.timestamp < timedelta(seconds=5)
    assert (event.status.value, event.security_level, event.compliance_tags) == (
        "success",
        SecurityLevel.LOW,
        [],
    )
    assert event.details == {} and event.metadata == {}


def test_tags_are_deduplicated_and_sorted() -> None:
    """Given repeated tags in mixed case, When validated, Then each appears once, sorted."""
    event = AuditEventIn.model_validate(make_event(0, compliance_tags=["SOX", "gdpr", "sox", "PCI_DSS"]))
    assert event.compliance_tags == [
        ComplianceStandard.GDPR,
        ComplianceStandard.PCI_DSS,
        ComplianceStandard.SOX,
    ]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("192.168.1.100", "192.168.1.100"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::1", "::1"),
    ],
)
def test_ip_addresses_are_stored_in_canonical_form(given: str, stored: str) -> None:
    """Given an IP in any valid spelling, When validated, Then the compressed (IPv4 for mapped) form is kept."""
    assert AuditEventIn.model_validate(make_event(0, ip_address=given)).ip_address == stored


def test_timestamp_in_another_zone_is_converted_to_utc() -> None:
    """Given a +02:00 timestamp, When validated, Then it is the same instant in UTC."""
    event = AuditEventIn.model_validate(make_event(0, timestamp="2026-11-27T10:00:00.5+02:00"))
    assert event.timestamp == datetime(2026, 11, 27, 8, 0, 0, 500000, tzinfo=UTC)


def test_every_bad_event_in_a_batch_is_reported_with_its_index() -> None:
    """Given a batch with two bad events, When validated, Then both are reported with their positions."""
    batch = {"events": [make_event(0), make_event(1, ip_address="x"), make_event(2), make_event(3, status="meh")]}
    found = errors_of(batch)
    assert [(i, f) for i, f, _ in found] == [(1, "ip_address"), (3, "status")]


def test_batch_limit_is_exactly_1000() -> None:
    """Given 1000 events, When validated, Then accepted; 1001 is refused naming `events`."""
    assert len(AuditEventBatch.model_validate({"events": [make_event(n) for n in range(1000)]}).events) == 1000
    assert [(i, f) for i, f, _ in errors_of({"events": [make_event(n) for n in range(1001)]})] == [(None, "events")]


def test_details_at_exactly_64_kib_is_accepted() -> None:
    """Given details serialising to exactly 65536 bytes, When validated, Then accepted (the limit is inclusive)."""
    filler = "x" * (65536 - len('{"blob":""}'))
    assert AuditEventIn.model_validate(make_event(0, details={"blob": filler})).details["blob"] == filler
    assert errors_of(make_event(0, details={"blob": filler + "x"}))[0][1] == "details"


def test_integers_up_to_two_to_the_53_are_kept() -> None:
    """Given 2^53 (exact in a double), When validated, Then accepted; 2^53 + 1 is refused."""
    assert AuditEventIn.model_validate(make_event(0, details={"n": 2**53})).details == {"n": 2**53}
    assert "2^53" in errors_of(make_event(0, details={"n": 2**53 + 1}))[0][2]
