"""The audit of the audit: reads and refused attempts become chain events, once per request."""

from __future__ import annotations

from typing import Any

import psycopg

from audit_common.access_log import AUDIT_ACCESS_REFUSED, AUDIT_READ, AccessRequest, record_access
from audit_common.auth import AuditRole, Principal
from audit_common.db import PostgresTransport

AUDITOR = Principal(subject="auditor-1", role=AuditRole.AUDITOR, email="auditor@example.com")
REQUEST = AccessRequest(
    request_id="c0ffee00-0000-4000-8000-000000000001",
    method="GET",
    path="/events",
    resource="/events",
    query={"user_id": "user-7", "limit": "100"},
    source_ip="203.0.113.9",
    user_agent="curl/8.5",
)


def _stored(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "select event_id, event_type, user_id, host(ip_address), resource_path, action, status, details,"
        " audit.is_audit_log_access(action, resource_path) from audit.audit_events order by seq"
    ).fetchall()


def test_a_read_is_recorded_with_principal_route_and_filters(
    transport: PostgresTransport, db: psycopg.Connection[Any]
) -> None:
    """Given an auditor's read, when recorded, then the chain holds who read what, from where."""
    record_access(transport, REQUEST, AUDITOR, facts={"returned": 42})
    ((event_id, event_type, user_id, ip, path, action, status, details, counted),) = _stored(db)
    assert event_id == f"read-{REQUEST.request_id}"
    assert (event_type, user_id, ip, path, action, status) == (
        "user_activity",
        "auditor:auditor-1",
        "203.0.113.9",
        "/events",
        AUDIT_READ,
        "success",
    )
    assert details == {
        "route": "GET /events",
        "query": {"user_id": "user-7", "limit": "100"},
        "role": "auditor",
        "request_id": REQUEST.request_id,
        "returned": 42,
    }
    # The PCI DSS report counts it under 10.2.1.3 (access to audit logs).
    assert counted is True


def test_a_retried_request_is_recorded_once(transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
    record_access(transport, REQUEST, AUDITOR)
    record_access(transport, REQUEST, AUDITOR)
    assert len(_stored(db)) == 1


def test_a_refused_attempt_is_recorded_as_a_failure(transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
    """Given a request nobody could authenticate, then a failed security event names the reason."""
    record_access(transport, REQUEST, None, refused_because="token expired")
    ((event_id, event_type, user_id, _ip, _path, action, status, details, _counted),) = _stored(db)
    assert event_id == f"refused-{REQUEST.request_id}"
    assert (event_type, user_id, action, status) == ("security_event", "anonymous", AUDIT_ACCESS_REFUSED, "failure")
    assert details["reason"] == "token expired"
    assert details["role"] is None


def test_odd_request_ids_and_source_addresses_are_kept_not_refused(
    transport: PostgresTransport, db: psycopg.Connection[Any]
) -> None:
    """Given API Gateway's test console (no real address, odd ids), then the access is still recorded."""
    odd = REQUEST.model_copy(update={"request_id": "test invoke/request#1", "source_ip": "test-invoke-source-ip"})
    record_access(transport, odd, AUDITOR)
    ((event_id, _type, _user, ip, _path, _action, _status, details, _counted),) = _stored(db)
    assert event_id == "read-test_invoke_request_1"
    assert ip is None
    assert details["source"] == "test-invoke-source-ip"


def test_a_principal_email_the_event_would_refuse_is_left_out() -> None:
    """Given a token whose email claim is not an address (Supabase sends "" for phone sign-ins), then the
    access record still builds, without the email, so the answer is not withheld for it."""
    from audit_common.access_log import access_event
    from audit_common.auth import AuditRole, Principal

    for email in ("", "not-an-address", "x" * 400 + "@example.com"):
        event = access_event(REQUEST, Principal(subject="u1", role=AuditRole.USER, email=email or None))
        assert event.user_email is None
    kept = access_event(REQUEST, Principal(subject="u1", role=AuditRole.USER, email="u1@example.com"))
    assert kept.user_email == "u1@example.com"


def test_whatever_the_request_holds_its_record_builds() -> None:
    """Given a NUL in the query, path and user agent (the API fuzz sent them), a long query and a long
    subject, then the record still builds, with U+FFFD for the NUL and long values cut."""
    from audit_common.access_log import MAX_QUERY_PARAMETERS, AccessRequest, access_event
    from audit_common.auth import AuditRole, Principal

    nasty = AccessRequest(
        request_id="req\x00-1",
        method="GET",
        path="/events/\x00x",
        resource="/events/{event_id}",
        query={"cursor": "\x00", "x\x00": "y" * 5000, **{f"p{n}": "v" for n in range(80)}},
        source_ip="198.51.100.7",
        user_agent="curl\x00/8",
    )
    event = access_event(nasty, Principal(subject="s" * 400, role=AuditRole.AUDITOR), refused_because="no\x00")
    assert event.details["query"]["cursor"] == "\ufffd"
    assert event.details["query"]["x\ufffd"] == "y" * 1000
    assert len(event.details["query"]) == MAX_QUERY_PARAMETERS
    assert event.details["query_parameters_left_out"] == 82 - MAX_QUERY_PARAMETERS
    assert (event.resource_path, event.user_agent, event.details["reason"]) == (
        "/events/\ufffdx",
        "curl\ufffd/8",
        "no\ufffd",
    )
    assert len(event.user_id) == 255
