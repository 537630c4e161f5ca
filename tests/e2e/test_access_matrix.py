"""Every route against every kind of caller, through `audit-trail local`: the template's Lambda
authorizer, then the function's own check, then the database.

Callers: none, an expired token, a wrong signature, `alg: none`, a wrong audience, a writer, a user,
another user, an auditor, an admin. The allowed ones get past access control (their answer is
whatever the route gives for the data: 200, 201, 404, 409, 422); the rest get exactly 401 or 403,
store nothing, and leave one `audit_access_refused` record (none when no token is sent at all: API
Gateway answers that itself without calling anything, and only its access log keeps it).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from audit_common.access import ROUTE_ROLES
from audit_common.auth import AuditRole
from audit_trail.local.tokens import jwt_claims, mint_jwt
from tests.e2e._stack import RunningStack, caller_event_count, start_stack
from tests.support.events import make_event

ALICE = "0b7a6c1e-6d0a-4a53-9f0e-1a2b3c4d5e6f"
BOB = "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b"
ERASED = "e7a5e000-0000-4000-8000-000000000017"
LATER = "2026-11-27T08:00:00Z"


@pytest.fixture(scope="module")
def matrix_stack(pg_admin_url: str) -> Iterator[RunningStack]:
    """One stack for the module, with alice's and the erasure subject's events stored by a writer."""
    from audit_trail.postgres import create_database, drop_database

    name = f"audit_matrix_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name)
    running = start_stack(url, Path(tempfile.mkdtemp(prefix="audit-matrix-")) / "stack")
    try:
        if not running.checks_tokens:
            pytest.fail("template.yaml has no JWT authorizer: the local stack checks no tokens")
        with running.client() as client:
            events = [make_event(n, user_id=ALICE, event_id=f"alice-{n}") for n in range(3)]
            events.append(make_event(9, user_id=ERASED, event_id="erased-0"))
            assert client.post("/events", json={"events": events}).status_code == 201
        yield running
    finally:
        running.stop()
        drop_database(pg_admin_url, name)


def _secret(stack: RunningStack) -> str:
    return str(stack.state["secrets"]["JwtSecretArn"])


def _callers(stack: RunningStack) -> dict[str, str | None]:
    """The Authorization header of each kind of caller (None: no header at all)."""
    secret = _secret(stack)
    now = int(time.time())
    auditor = jwt_claims(AuditRole.AUDITOR, str(uuid.uuid4()))
    forged_none = jwt.encode(auditor, key="", algorithm="none")
    return {
        "none": None,
        "expired": mint_jwt(secret, AuditRole.ADMIN, str(uuid.uuid4()), ttl_seconds=60, now=_ago(3600)),
        "wrong-signature": jwt.encode(auditor, "not-the-project-secret-but-long-enough-0123", algorithm="HS256"),
        "alg-none": forged_none,
        "wrong-audience": jwt.encode({**auditor, "aud": "someone-else", "exp": now + 600}, secret, algorithm="HS256"),
        "writer": stack.tokens.for_role(AuditRole.WRITER),
        "user": mint_jwt(secret, AuditRole.USER, ALICE),
        "other-user": mint_jwt(secret, AuditRole.USER, BOB),
        "auditor": stack.tokens.for_role(AuditRole.AUDITOR),
        "admin": mint_jwt(secret, AuditRole.ADMIN, str(uuid.uuid4())),
    }


def _ago(seconds: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=seconds)


ROLE_OF = {
    "writer": AuditRole.WRITER,
    "user": AuditRole.USER,
    "other-user": AuditRole.USER,
    "auditor": AuditRole.AUDITOR,
    "admin": AuditRole.ADMIN,
}
INVALID_TOKENS = ("expired", "wrong-signature", "alg-none", "wrong-audience")


def _request(method: str, resource: str) -> tuple[str, dict[str, Any] | None]:
    """A concrete path and body for a route, about alice's data where the route is about someone."""
    path = (
        resource.replace("{event_id}", "alice-1")
        .replace("{alert_id}", str(uuid.uuid4()))
        .replace("{report_id}", str(uuid.uuid4()))
        .replace("{user_id}", ERASED if resource.endswith("erasure") else ALICE)
    )
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/events"): make_event(0, event_id=f"matrix-{uuid.uuid4().hex}"),
        ("PATCH", "/alerts/{alert_id}"): {"status": "acknowledged"},
        ("POST", "/reports"): {"standard": "pci_dss", "start": "2026-11-26T00:00:00Z", "end": LATER, "format": "json"},
    }
    query = {
        ("GET", "/integrity/consistency"): "?from=1&to=1",
        ("GET", "/analytics"): "?from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z&bucket=1h",
    }.get((method, resource), "")
    return path + query, bodies.get((method, resource))


def _expected_refusal(caller: str, method: str, resource: str) -> int | None:
    """401 or 403 when this caller must be refused, else None."""
    if caller == "none" or caller in INVALID_TOKENS:
        return 401
    if ROLE_OF[caller] not in ROUTE_ROLES[(method, resource)]:
        return 403
    if caller == "other-user" and resource == "/subjects/{user_id}/export":
        return 403  # a user exports only their own data
    return None


def _refusals(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("select count(*) from audit.audit_events where action = 'audit_access_refused'").fetchone()
    return int(row[0]) if row else 0


CALLERS = ("none", *INVALID_TOKENS, "writer", "user", "other-user", "auditor", "admin")


@pytest.mark.parametrize("route", sorted(ROUTE_ROLES), ids=lambda route: f"{route[0]} {route[1]}")
def test_each_route_answers_only_its_principals(matrix_stack: RunningStack, route: tuple[str, str]) -> None:
    method, resource = route
    callers = _callers(matrix_stack)
    outcomes: dict[str, int] = {}
    with httpx.Client(base_url=matrix_stack.api_url, timeout=60.0) as client:
        for caller in CALLERS:
            path, body = _request(method, resource)
            authorization = callers[caller]
            headers = {"Authorization": f"Bearer {authorization}"} if authorization else {}
            stored_before = caller_event_count(matrix_stack.database_url)
            refusals_before = _refusals(matrix_stack.database_url)
            response = client.request(method, path, json=body, headers=headers)
            outcomes[caller] = response.status_code
            expected = _expected_refusal(caller, method, resource)
            if expected is None:
                assert response.status_code not in (401, 403), (caller, response.text)
                assert response.status_code < 500, (caller, response.text)
                continue
            assert response.status_code == expected, (caller, response.text)
            assert response.json()["error"]["message"], response.text
            assert "Traceback" not in response.text
            # nothing stored but the record of the attempt (none when no token reached the authorizer)
            assert caller_event_count(matrix_stack.database_url) == stored_before, caller
            assert _refusals(matrix_stack.database_url) == refusals_before + (caller != "none"), caller
    # the allowed callers, for the record of what this route does with them
    assert any(status not in (401, 403) for status in outcomes.values()), outcomes


def test_a_user_reads_only_their_own_events_end_to_end(matrix_stack: RunningStack) -> None:
    """Through the authorizer and RLS: alice lists her 3 events; bob lists none of them and gets 404 for one."""
    callers = _callers(matrix_stack)
    with httpx.Client(base_url=matrix_stack.api_url, timeout=60.0) as client:
        mine = client.get("/events?limit=1000", headers={"Authorization": f"Bearer {callers['user']}"})
        theirs = client.get("/events?limit=1000", headers={"Authorization": f"Bearer {callers['other-user']}"})
        peek = client.get("/events/alice-0", headers={"Authorization": f"Bearer {callers['other-user']}"})
        asked = client.get(f"/events?user_id={ALICE}", headers={"Authorization": f"Bearer {callers['other-user']}"})
    assert mine.status_code == 200 and {e["user_id"] for e in mine.json()["events"]} == {ALICE}
    assert {e["event_id"] for e in mine.json()["events"]} >= {"alice-0", "alice-1", "alice-2"}
    assert theirs.status_code == 200 and all(e["user_id"] == BOB for e in theirs.json()["events"])
    assert peek.status_code == 404
    assert asked.status_code == 403
