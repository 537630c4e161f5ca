"""The event model: lenient where harmless, strict where evidence is at stake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from audit_common.api import inexact_number_errors, ingest_request_adapter, request_events, validate_events
from audit_common.errors import InvalidInput
from audit_common.integrity import canonical_bytes, canonical_number, format_timestamp, sealed_object
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


@pytest.mark.parametrize("number", [2**53, -(2**53), 2**53 + 2, 10**18, 123456789 * 10**12, 10**21, -(10**21), 10**300])
def test_integers_whose_canonical_form_is_their_value_are_kept(number: int) -> None:
    """Given an integer whose RFC 8785 text has exactly its value (2^53 + 2 is 9007199254740994, 10^21 is 1e+21),
    When validated, Then accepted, sealed with that value (beyond 64 bits as the double, as a parsed body has
    it) and storable."""
    details = AuditEventIn.model_validate(make_event(0, details={"n": number})).details
    assert canonical_bytes(details) == canonical_bytes({"n": number})
    assert Decimal(canonical_number(details["n"])) == number
    assert orjson.loads(orjson.dumps(details)) == details


@pytest.mark.parametrize("number", [2**53 + 1, -(2**53) - 1, 2**60, 2**64, 10**21 + 1, 10**400])
def test_integers_that_would_be_rounded_are_refused(number: int) -> None:
    """Given an integer that sealing would round (2^53 + 1 becomes 9007199254740992, 2^60 1152921504606847000),
    When validated, Then refused naming the number and saying to send a string."""
    (index, field, message), *_ = errors_of(make_event(0, details={"n": number}))
    assert (index, field) == (0, "details")
    assert "cannot be stored exactly" in message and "send it as a string" in message
    assert str(number)[:20] in message


@pytest.mark.parametrize(("name", "empty"), [("details", {}), ("metadata", {}), ("compliance_tags", [])])
def test_an_explicit_null_means_absent(name: str, empty: Any) -> None:
    """Given `null` for details, metadata or compliance_tags, When validated, Then it is the empty value, as sealed."""
    event = AuditEventIn.model_validate(make_event(0, **{name: None}))
    assert getattr(event, name) == empty
    sealed = sealed_object(event.sealed_fields())
    assert sealed[name] == empty
    assert sealed == sealed_object(AuditEventIn.model_validate(make_event(0, **{name: empty})).sealed_fields())


@pytest.mark.parametrize(
    ("given", "sealed"),
    [
        ("2026-11-27T08:00:00.123456Z", "2026-11-27T08:00:00.123456Z"),
        ("2026-11-27T08:00:00.1234567Z", "2026-11-27T08:00:00.123456Z"),
        ("2026-11-27T08:00:00.1234565Z", "2026-11-27T08:00:00.123456Z"),  # not rounded half up
        ("2026-11-27T08:00:00.123456999Z", "2026-11-27T08:00:00.123456Z"),
        ("2026-11-27T08:00:00.9999999Z", "2026-11-27T08:00:00.999999Z"),  # not carried into the next second
        ("2025-12-31T23:59:59.999999999Z", "2025-12-31T23:59:59.999999Z"),  # ... nor into the next year
        ("2026-11-27T09:00:00.123456789+01:00", "2026-11-27T08:00:00.123456Z"),  # Go's RFC3339Nano
        ("2026-11-27T03:00:00.000000999-05:00", "2026-11-27T08:00:00.000000Z"),
        ("2026-11-27T08:00:00.1234567890123456789Z", "2026-11-27T08:00:00.123456Z"),
    ],
)
def test_fractions_beyond_the_microsecond_are_truncated_toward_the_past(given: str, sealed: str) -> None:
    """Given a timestamp with more than six fractional digits, When validated, Then the digits after the sixth are
    dropped (truncation toward the past, never rounding), before and after the conversion to UTC."""
    assert format_timestamp(AuditEventIn.model_validate(make_event(0, timestamp=given)).timestamp) == sealed


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
        ({"a": -(2**60)}, "-1152921504606846976"),
        ({"deep": orjson.loads("[" * 33 + "]" * 33)}, "deeper"),
    ],
)
def test_json_breaking_a_rule_is_refused_with_its_path(details: dict[str, Any], fragment: str) -> None:
    """Given details with a NUL, an inexact integer or too much nesting, When validated, Then refused naming where."""
    found = errors_of(make_event(0, details=details))
    assert found[0][1] == "details" and fragment in found[0][2]


def test_inexact_numbers_in_the_request_text_are_named_once_with_the_other_errors() -> None:
    """Given a body whose text holds numbers a parser rounds (one also refused by the model), besides other bad
    fields, When validated as the API does, Then each number is named once by its path, in event order, with
    the other errors."""
    good = orjson.dumps(make_event(0)).decode()
    bad_ip = orjson.dumps(make_event(1, ip_address="1.2.3", details={"n": "<n>"})).decode()
    bad_ip = bad_ip.replace('"<n>"', "[9007199254740993, 0.5]")
    rounded = orjson.dumps(make_event(2, metadata={"r": "<r>"})).decode().replace('"<r>"', "0.10000000000000001")
    text = f'{{"events": [{good}, {bad_ip}, {rounded}]}}'
    numbers = inexact_number_errors(text)
    assert [(e.index, e.field, e.message) for e in numbers] == [
        (1, "details.n[0]", "9007199254740993 cannot be stored exactly; send it as a string"),
        (2, "metadata.r", "0.10000000000000001 cannot be stored exactly; send it as a string"),
    ]
    with pytest.raises(InvalidInput) as refused:
        validate_events(request_events(orjson.loads(text)), numbers)
    assert [(e.index, e.field) for e in refused.value.errors] == [
        (1, "details.n[0]"),
        (1, "ip_address"),
        (2, "metadata.r"),
    ]
    with pytest.raises(InvalidInput) as only_numbers:
        validate_events(
            request_events(orjson.loads(f"[{good}, {rounded}]")), inexact_number_errors(f"[{good}, {rounded}]")
        )
    assert [(e.index, e.field) for e in only_numbers.value.errors] == [(1, "metadata.r")]
    assert inexact_number_errors(f"[{good}]") == [] and inexact_number_errors(None) == []
