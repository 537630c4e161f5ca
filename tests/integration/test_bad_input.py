"""Bad input gets a clear error naming the field, and a refused request stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from audit_common.integrity import canonical_bytes
from ingest.handler import lambda_handler
from tests.support.apigw import invoke, proxy_event
from tests.support.events import access_records, event_count, make_event

GOOD = make_event(0)


def without(*fields: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k not in fields}


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events)}


def with_number(field: str, text: str, event: dict[str, Any] = GOOD) -> bytes:
    """An event as request text whose `field` is {"n": <text>}: numbers as written, not as a parser rounds them."""
    return orjson.dumps({**event, field: {"n": "<number>"}}).replace(b'"<number>"', text.encode())


# A day ahead, not minutes: the module is imported once and a long run must not overtake it.
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
NEAR_FUTURE_OK = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()

# (id, raw body or JSON body, status, (index, field) expected in errors or None for 400, message fragment)
CASES: list[tuple[str, Any, int, tuple[int | None, str] | None, str]] = [
    ("not-json", b"{not json", 400, None, "not valid JSON"),
    ("truncated-json", b'{"event_type": "file_upload"', 400, None, "not valid JSON"),
    ("lone-surrogate", b'{"user_id": "\\ud800"}', 400, None, "not valid JSON"),
    ("empty-body", b"", 422, (None, "body"), ""),
    ("empty-json-array", [], 422, (None, "events"), "at least 1"),
    ("json-array-with-bad-event", [GOOD, {**GOOD, "event_type": "x"}], 422, (1, "event_type"), "file_upload"),
    ("json-array-of-1001", [make_event(n) for n in range(1001)], 422, (None, "events"), "1000"),
    ("json-string", "file_upload", 422, (0, "body"), "dictionary"),
    ("unknown-event-type", {**GOOD, "event_type": "file_teleport"}, 422, (0, "event_type"), "file_upload"),
    ("unknown-security-level", {**GOOD, "security_level": "severe"}, 422, (0, "security_level"), "critical"),
    (
        "unknown-compliance-tag",
        {**GOOD, "compliance_tags": ["gdpr", "fisma"]},
        422,
        (0, "compliance_tags[1]"),
        "gdpr",
    ),
    ("unknown-status", {**GOOD, "status": "maybe"}, 422, (0, "status"), "success"),
    # A forged redaction record or seal-version marker would count as evidence about other rows.
    (
        "forged-redaction-record",
        {
            **GOOD,
            "event_type": "system_event",
            "action": "events_redacted",
            "details": {"count": 1, "reason": "erasure", "seqs": [[1, 1]], "v1_seqs": []},
        },
        422,
        (0, "action"),
        "reserved",
    ),
    (
        "forged-seal-version-marker",
        {
            **GOOD,
            "event_type": "system_event",
            "action": "seal_version_changed",
            "details": {"seal": 2, "v1_through": 9},
        },
        422,
        (0, "action"),
        "reserved",
    ),
    ("invalid-ipv4", {**GOOD, "ip_address": "999.1.1.1"}, 422, (0, "ip_address"), "IPv4 or IPv6"),
    ("ip-word", {**GOOD, "ip_address": "unknown"}, 422, (0, "ip_address"), "IPv4 or IPv6"),
    ("ip-network", {**GOOD, "ip_address": "10.0.0.0/8"}, 422, (0, "ip_address"), "IPv4 or IPv6"),
    ("future-timestamp", {**GOOD, "timestamp": FUTURE}, 422, (0, "timestamp"), "future"),
    ("naive-timestamp", {**GOOD, "timestamp": "2026-11-27T08:00:00"}, 422, (0, "timestamp"), "time zone"),
    ("unix-timestamp", {**GOOD, "timestamp": 1795766400}, 422, (0, "timestamp"), "RFC 3339"),
    ("garbage-timestamp", {**GOOD, "timestamp": "yesterday"}, 422, (0, "timestamp"), ""),
    ("nul-in-user-id", {**GOOD, "user_id": "alice\u0000"}, 422, (0, "user_id"), "NUL"),
    ("nul-in-details-value", {**GOOD, "details": {"a": {"b": "x\u0000"}}}, 422, (0, "details"), "a.b"),
    ("nul-in-details-key", {**GOOD, "details": {"k\u0000": 1}}, 422, (0, "details"), "NUL"),
    ("overlong-user-id", {**GOOD, "user_id": "u" * 256}, 422, (0, "user_id"), "255"),
    ("overlong-action", {**GOOD, "action": "a" * 256}, 422, (0, "action"), "255"),
    ("overlong-path", {**GOOD, "resource_path": "/" + "p" * 4096}, 422, (0, "resource_path"), "4096"),
    ("details-65-kib", {**GOOD, "details": {"blob": "x" * (65 * 1024)}}, 422, (0, "details"), "65536"),
    ("details-not-object", {**GOOD, "details": ["a"]}, 422, (0, "details"), "dictionary"),
    ("inexact-integer", {**GOOD, "details": {"n": 2**60}}, 422, (0, "details.n"), "1152921504606846976 cannot be"),
    ("integer-2-53-plus-1", with_number("details", "9007199254740993"), 422, (0, "details.n"), "stored exactly"),
    (
        "decimal-that-rounds",
        with_number("details", "0.10000000000000001"),
        422,
        (0, "details.n"),
        "send it as a string",
    ),
    ("big-integer-as-double", with_number("metadata", "1000000000000000000001"), 422, (0, "metadata.n"), "exactly"),
    ("underflow", with_number("details", "[1, 1e-400]"), 422, (0, "details.n[1]"), "1E-400 cannot be stored"),
    ("overflow", with_number("details", "1E400"), 422, (0, "details.n"), "cannot be stored exactly"),
    ("subnormal-that-rounds", with_number("details", "1.4e-323"), 422, (0, "details.n"), "exactly"),
    (
        "inexact-number-in-a-batch",
        b'{"events": ['
        + orjson.dumps(make_event(1))
        + b", "
        + with_number("details", '{"r": 0.30000000000000001}')
        + b"]}",
        422,
        (1, "details.n.r"),
        "0.30000000000000001 cannot be stored exactly",
    ),
    (
        "deep-nesting",
        {**GOOD, "details": orjson.loads("[" * 40 + "]" * 40) and {"d": orjson.loads("[" * 40 + "]" * 40)}},
        422,
        (0, "details"),
        "deeper",
    ),
    ("user-id-number", {**GOOD, "user_id": 12345}, 422, (0, "user_id"), "string"),
    ("tags-not-list", {**GOOD, "compliance_tags": "gdpr"}, 422, (0, "compliance_tags"), "list"),
    ("missing-event-type", without("event_type"), 422, (0, "event_type"), "required"),
    ("missing-user-id", without("user_id"), 422, (0, "user_id"), "required"),
    ("missing-action", without("action"), 422, (0, "action"), "required"),
    ("empty-user-id", {**GOOD, "user_id": ""}, 422, (0, "user_id"), "at least 1"),
    ("bad-email", {**GOOD, "user_email": "not-an-email"}, 422, (0, "user_email"), "email"),
    ("unknown-field", {**GOOD, "usr_id": "typo"}, 422, (0, "usr_id"), "not a field"),
    ("server-field-seq", {**GOOD, "seq": 1}, 422, (0, "seq"), "not a field"),
    ("server-field-chain-hash", {**GOOD, "chain_hash": "00" * 32}, 422, (0, "chain_hash"), "not a field"),
    ("bad-event-id", {**GOOD, "event_id": "has space"}, 422, (0, "event_id"), "A-Z"),
    ("1001-events", batch(*[make_event(n) for n in range(1001)]), 422, (None, "events"), "1000"),
    ("empty-batch", batch(), 422, (None, "events"), "at least 1"),
    ("batch-not-list", {"events": {"a": 1}}, 422, (None, "events"), "list"),
    (
        "one-bad-event-in-batch",
        batch(make_event(1), make_event(2, ip_address="1.2.3"), make_event(3)),
        422,
        (1, "ip_address"),
        "IPv4 or IPv6",
    ),
]


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(("body", "status", "where", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_by_name_and_nothing_is_stored(
    db: psycopg.Connection[Any], body: Any, status: int, where: tuple[int | None, str] | None, fragment: str
) -> None:
    """Given a malformed request, When posted, Then the status, field and reason are given and no row is stored."""
    raw = body.decode() if isinstance(body, bytes) else orjson.dumps(body).decode()

    response = invoke(lambda_handler, proxy_event("POST", "/events", raw_body=raw))

    assert response.status == status, response.body
    assert set(response.body) <= {"error", "errors"}
    assert response.body["error"]["message"]
    assert "Traceback" not in response.raw
    if where is None:
        assert response.body["error"]["code"] == "bad_request"
        assert fragment in response.body["error"]["message"]
    else:
        assert response.body["error"]["code"] == "invalid_input"
        errors = response.body["errors"]
        located = [(e["index"], e["field"]) for e in errors]
        assert where in located, errors
        message = next(e["message"] for e in errors if (e["index"], e["field"]) == where)
        assert fragment.lower() in message.lower(), message
        assert "nothing was stored" in response.body["error"]["message"]
    assert event_count(db) == 0


@pytest.mark.usefixtures("configured")
def test_body_over_the_size_limit_is_413_before_parsing(db: psycopg.Connection[Any]) -> None:
    """Given a 6 MiB body, When posted, Then 413 names the body and nothing is stored."""
    response = invoke(
        lambda_handler,
        proxy_event("POST", "/events", raw_body='{"events": ["' + "x" * (6 * 1024 * 1024) + '"]}'),
    )

    assert response.status == 413
    assert response.body["error"]["message"].startswith("body:")
    assert event_count(db) == 0


@pytest.mark.usefixtures("configured")
def test_timestamp_slightly_ahead_is_accepted(db: psycopg.Connection[Any]) -> None:
    """Given a client clock 2 minutes fast, When posting, Then the event is accepted (5 minute tolerance)."""
    response = invoke(lambda_handler, proxy_event("POST", "/events", body={**GOOD, "timestamp": NEAR_FUTURE_OK}))
    assert response.status == 201
    assert event_count(db) == 1


@pytest.mark.usefixtures("configured")
@pytest.mark.usefixtures("configured")
def test_unknown_route_is_refused_with_the_envelope(db: psycopg.Connection[Any]) -> None:
    """Given a route no one was given (closed by default), When even an admin calls it, Then 403 with
    the error envelope, and the refused attempt is on record."""
    response = invoke(lambda_handler, proxy_event("DELETE", "/events"))
    assert response.status == 403
    assert response.body["error"] == {"code": "forbidden", "message": "role 'admin' may not call DELETE /events"}
    assert access_records(db) == [
        {
            "action": "audit_access_refused",
            "principal": "admin:tests",
            "route": "DELETE /events",
            "reason": "role 'admin' may not call DELETE /events",
            "status": "failure",
        }
    ]


@pytest.mark.usefixtures("configured")
def test_every_bad_event_of_a_large_batch_is_named(db: psycopg.Connection[Any]) -> None:
    """Given 1000 events with bad ones at 10 and 900, When posted, Then both are named and no row is stored."""
    events = [make_event(n) for n in range(1000)]
    events[10]["ip_address"] = "300.1.1.1"
    events[900]["event_type"] = "nope"

    response = invoke(lambda_handler, proxy_event("POST", "/events", body={"events": events}))

    assert response.status == 422
    assert [(e["index"], e["field"]) for e in response.body["errors"]] == [(10, "ip_address"), (900, "event_type")]
    assert event_count(db) == 0
    head = db.execute("select seq from audit.chain_head").fetchone()
    assert head == (0,)


@pytest.mark.usefixtures("configured")
def test_a_bad_last_event_refuses_the_whole_batch(db: psycopg.Connection[Any]) -> None:
    """Given 999 good events and a bad last one, When posted, Then 422 and nothing of the first 999 is stored."""
    events = [make_event(n) for n in range(1000)]
    events[999]["timestamp"] = "not a time"

    response = invoke(lambda_handler, proxy_event("POST", "/events", body=events))

    assert response.status == 422
    assert [(e["index"], e["field"]) for e in response.body["errors"]] == [(999, "timestamp")]
    assert event_count(db) == 0


@pytest.mark.usefixtures("configured")
def test_exact_numbers_and_explicit_nulls_are_accepted_and_stored_as_sent(db: psycopg.Connection[Any]) -> None:
    """Given numbers whose RFC 8785 form has their exact value (2^53 + 2, 10^21 as digits, 1e21, 0.1, 5e-324) and
    `null` for details, metadata and compliance_tags, When posted, Then 201 and the stored values are those
    numbers and the empty values."""
    numbers = "[9007199254740994, 1000000000000000000000, 1e21, 0.1, 5e-324, -0.0, 1.7976931348623157e308]"
    body = b'{"events": [' + with_number("details", numbers, make_event(1)) + b", "
    body += orjson.dumps(make_event(2, details=None, metadata=None, compliance_tags=None)) + b"]}"

    response = invoke(lambda_handler, proxy_event("POST", "/events", raw_body=body.decode()))

    assert response.status == 201, response.body
    rows = db.execute("select details, metadata, compliance_tags from audit.audit_events order by seq").fetchall()
    # Read back as Python parses JSONB's plain notation (1.79...e308 as a 309-digit integer): same canonical form.
    sent = {"n": [9007199254740994, 10**21, 1e21, 0.1, 5e-324, -0.0, 1.7976931348623157e308]}
    assert canonical_bytes(rows[0][0]) == canonical_bytes(sent)
    assert canonical_bytes(rows[0][0]) == b'{"n":[9007199254740994,1e+21,1e+21,0.1,5e-324,0,1.7976931348623157e+308]}'
    assert rows[1] == ({}, {}, [])
