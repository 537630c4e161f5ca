"""The event model: lenient where harmless, strict where evidence is at stake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from audit_common.api import ingest_request_adapter
from audit_common.integrity import sealed_object
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


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_timestamp_with_no_utc_equivalent_is_refused_by_name(moment: str) -> None:
    """Given a time at the calendar's edge whose offset takes it outside years 1..9999 in UTC (the API fuzz
    found this a 500), When validated, Then a validation error names the timestamp."""
    with pytest.raises(ValidationError) as refused:
        AuditEventIn.model_validate(make_event(0, timestamp=moment))
    (error,) = refused.value.errors()
    assert (error["loc"], error["type"]) == (("timestamp",), "timestamp_range")


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


@given(
    event_type=st.sampled_from(list(EventType)),
    level=st.sampled_from(list(SecurityLevel)),
    tags=st.lists(st.sampled_from(list(ComplianceStandard)), max_size=6),
    ip=st.one_of(st.none(), st.ip_addresses().map(str)),
    text=st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40),
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)),
    details=st.dictionaries(
        st.text(max_size=5).filter(lambda k: "\x00" not in k), st.integers(-1000, 1000), max_size=4
    ),
)
def test_sealed_record_is_the_sealed_object(
    event_type: EventType,
    level: SecurityLevel,
    tags: list[ComplianceStandard],
    ip: str | None,
    text: str,
    moment: datetime,
    details: dict[str, int],
) -> None:
    """Given any valid event, When sealed on the hot path, Then it is exactly sealed_object of its fields."""
    event = AuditEventIn.model_validate(
        {
            "event_type": event_type.name,
            "user_id": text or "u",
            "action": text or "a",
            "user_agent": text,
            "security_level": level,
            "compliance_tags": tags,
            "ip_address": ip,
            "timestamp": moment,
            "details": details,
        }
    )
    assert event.sealed_record() == sealed_object(event.sealed_fields())


@pytest.mark.parametrize(
    "details",
    [
        {"path": "C:\\u0000dir"},  # the text backslash-u-0-0-0-0, not a NUL: the walk runs and accepts it
        {"id": "1234567890123456789"},  # sixteen digits in a string, not a number
        {"n": 9007199254740992, "m": -9007199254740992},  # exactly 2^53
        {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},  # 32 levels
        {"k" * 40: ["{", "[", "{"] * 20},  # brackets inside strings
    ],
)
def test_json_that_only_looks_suspicious_is_accepted(details: dict[str, Any]) -> None:
    """Given details that trigger the full walk but break no rule, When validated, Then they are accepted as given."""
    assert AuditEventIn.model_validate(make_event(0, details=details)).details == details


@pytest.mark.parametrize(
    ("details", "fragment"),
    [
        ({"a": [{"b": "x\x00"}]}, "a[0].b"),
        ({"a": {"b\x00": 1}}, "NUL"),
        ({"a": [1, 2, 2**53 + 1]}, "a[2]"),
        ({"a": -(2**60)}, "2^53"),
        ({"deep": orjson.loads("[" * 33 + "]" * 33)}, "deeper"),
    ],
)
def test_json_breaking_a_rule_is_refused_with_its_path(details: dict[str, Any], fragment: str) -> None:
    """Given details with a NUL, a huge integer or too much nesting, When validated, Then refused naming where."""
    found = errors_of(make_event(0, details=details))
    assert found[0][1] == "details" and fragment in found[0][2]
