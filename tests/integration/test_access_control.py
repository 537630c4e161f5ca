"""Access control inside the functions and the database: users see only their own events, whatever
the Python does; refusals are on record; the Lambda login role can do nothing but become the API's roles.

Given / When / Then, against the real database: the handlers are called with the principal the
authorizer would have put in the request context (the authorizer itself, and the whole chain from a
token to an answer, are exercised in tests/e2e/test_access_matrix.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from audit_common import guard
from audit_common.auth import AuditRole, Principal
from audit_common.db import DatabaseUser, PostgresTransport, PostgrestTransport, as_user
from audit_common.errors import AuditError
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn
from detect.handler import lambda_handler as detect_handler
from ingest.handler import lambda_handler as ingest_handler
from retention.handler import lambda_handler as retention_handler
from tests.support.apigw import invoke, proxy_event
from tests.support.events import access_records, app_event_count, make_event
from tests.support.postgrest_stub import postgrest_stub

ALICE = Principal(subject="alice", role=AuditRole.USER, email="alice@example.com")
BOB = Principal(subject="bob", role=AuditRole.USER)
AUDITOR = Principal(subject="carol", role=AuditRole.AUDITOR)
WRITER = Principal(subject="checkout-service", role=AuditRole.WRITER, token_id="k3v9q2m7x1c4")
JWT_SECRET = "stub-jwt-secret-for-tests-only-0123456789abcdef"
SERVICE_KEY = "stub-service-role-key"


def _event(n: int, user: str) -> AuditEventIn:
    return AuditEventIn.model_validate(make_event(n, user_id=user, event_id=f"{user}-{n}"))


@pytest.fixture
def trail(transport: PostgresTransport) -> PostgresTransport:
    """Three events of alice, two of bob, stored by the service role."""
    store_events(transport, [_event(n, "alice") for n in range(3)] + [_event(n, "bob") for n in range(2)])
    return transport


def claims(principal: Principal) -> DatabaseUser:
    return DatabaseUser(claims=guard.database_claims(principal))


def users(rows: Any) -> set[str]:
    return {row["user_id"] for row in rows}


class TestReadsAsTheUser:
    """The transport's `as_user`: role authenticated with the user's claims, so RLS decides."""

    def test_a_user_sees_only_their_own_events_through_every_read_function(self, trail: PostgresTransport) -> None:
        alice = as_user(trail, claims(ALICE))
        assert users(alice.call("list_events", {"p_limit": 1000})) == {"alice"}
        # asking for bob's events by filter, by id or by subject export yields nothing at all
        assert alice.call("list_events", {"p_user_id": "bob"}) == []
        assert alice.call("get_event", {"p_event_id": "bob-0"}) is None
        assert alice.call("subject_events", {"p_user_id": "bob"}) == []
        assert users(alice.call("subject_events", {"p_user_id": "alice"})) == {"alice"}

    def test_staff_claims_see_everyone(self, trail: PostgresTransport) -> None:
        assert users(as_user(trail, claims(AUDITOR)).call("list_events", {"p_limit": 1000})) == {"alice", "bob"}

    def test_a_role_claimed_in_user_metadata_is_ignored(self, trail: PostgresTransport) -> None:
        """user_metadata is editable by the user themselves; only app_metadata counts."""
        forged = DatabaseUser(
            claims={"sub": "alice", "role": "authenticated", "user_metadata": {"audit_role": "auditor"}}
        )
        assert users(as_user(trail, forged).call("list_events", {"p_limit": 1000})) == {"alice"}

    def test_a_user_cannot_write_or_reach_the_service_functions(self, trail: PostgresTransport, db: Any) -> None:
        alice = as_user(trail, claims(ALICE))
        before = app_event_count(db)
        for function, args in (
            ("ingest_events", {"p_events": []}),
            ("chain_state", {}),
            ("redact_seqs", {"p_seqs": [1], "p_reason": "erasure", "p_actor": "alice", "p_ref": "x"}),
        ):
            with pytest.raises(AuditError):
                alice.call(function, args)
        assert app_event_count(db) == before
        assert db.execute("select count(*) from audit.audit_events where redacted_at is not null").fetchone()[0] == 0

    def test_anon_reaches_nothing(self, trail: PostgresTransport, db_url: str) -> None:
        with psycopg.connect(db_url) as conn:
            conn.execute("set local role anon")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select audit.list_events()")

    def test_over_postgrest_the_users_own_token_decides_not_the_claims_we_derive(
        self, trail: PostgresTransport, db_url: str
    ) -> None:
        """Over PostgREST the user's verified token travels, so a wrongly derived claim cannot widen access."""
        now = int(time.time())
        token = jwt.encode(
            {"sub": "alice", "role": "authenticated", "aud": "authenticated", "exp": now + 600, "iat": now},
            JWT_SECRET,
            algorithm="HS256",
        )
        # a bug that derived auditor claims for alice: over PostgREST they are not even sent
        confused = DatabaseUser(claims=guard.database_claims(AUDITOR), token=token)
        with postgrest_stub(db_url, SERVICE_KEY, jwt_secret=JWT_SECRET) as stub:
            service = PostgrestTransport(stub.url, SERVICE_KEY)
            try:
                assert users(service.call("list_events", {"p_limit": 1000})) == {"alice", "bob"}
                assert users(service.as_user(confused).call("list_events", {"p_limit": 1000})) == {"alice"}
                assert stub.requests[-1].headers["authorization"] == f"Bearer {token}"
                forged = jwt.encode(jwt.decode(token, options={"verify_signature": False}), "not-the-secret")
                with pytest.raises(AuditError):
                    service.as_user(DatabaseUser(claims={}, token=forged)).call("list_events", {})
                with pytest.raises(AuditError, match="access token"):
                    service.as_user(DatabaseUser(claims={}))
            finally:
                service.close()


def get(handler: Any, path: str, principal: Principal | None) -> Any:
    return invoke(handler, proxy_event("GET", path, principal=principal))


@pytest.mark.usefixtures("configured")
class TestHandlers:
    def test_a_user_lists_only_their_own_events_and_the_read_is_recorded(
        self, trail: PostgresTransport, db: Any
    ) -> None:
        response = get(ingest_handler, "/events", ALICE)
        assert response.status == 200
        assert users(response.body["events"]) == {"alice"} and len(response.body["events"]) == 3
        assert access_records(db) == [
            {
                "action": "audit_read",
                "principal": "user:alice",
                "route": "GET /events",
                "reason": None,
                "status": "success",
            }
        ]

    def test_a_user_asking_for_someone_else_is_refused_and_the_attempt_recorded(
        self, trail: PostgresTransport, db: Any
    ) -> None:
        response = get(ingest_handler, "/events?user_id=bob", ALICE)
        assert response.status == 403
        assert response.body["error"]["message"] == "user_id: a user may read only their own events"
        export = get(retention_handler, "/subjects/bob/export", ALICE)
        assert export.status == 403
        assert [(r["action"], r["principal"], r["route"]) for r in access_records(db)] == [
            ("audit_access_refused", "user:alice", "GET /events"),
            ("audit_access_refused", "user:alice", "GET /subjects/{user_id}/export"),
        ]
        # no gdpr_export was recorded for the refused export
        assert db.execute("select count(*) from audit.audit_events where action = 'gdpr_export'").fetchone()[0] == 0

    def test_someone_elses_event_is_not_found_not_forbidden(self, trail: PostgresTransport) -> None:
        """Its existence is not disclosed: the same 404 as an unknown id, for the event and its proof."""
        assert get(ingest_handler, "/events/bob-0", ALICE).status == 404
        assert get(ingest_handler, "/events/bob-0/proof", ALICE).status == 404
        assert get(ingest_handler, "/events/alice-0", ALICE).body["user_id"] == "alice"
        assert get(ingest_handler, "/events/bob-0", AUDITOR).body["user_id"] == "bob"

    def test_a_user_exports_their_own_data(self, trail: PostgresTransport, db: Any) -> None:
        response = get(retention_handler, "/subjects/alice/export", ALICE)
        assert response.status == 200 and response.body["count"] == 3
        recorded = db.execute(
            "select user_id, details ->> 'subject' from audit.audit_events where action = 'gdpr_export'"
        ).fetchall()
        assert recorded == [("user:alice", "alice")]

    def test_row_level_security_holds_when_the_handler_forgets_the_filter(
        self, trail: PostgresTransport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Given a bug that drops the user filter, When alice lists events, Then the database returns only hers."""
        monkeypatch.setattr("ingest.handler.own_subject", lambda principal, user_id: None)
        response = get(ingest_handler, "/events?user_id=bob", ALICE)
        assert response.status == 200 and users(response.body["events"]) in ({"alice"}, set())
        assert users(get(ingest_handler, "/events", ALICE).body["events"]) == {"alice"}

    def test_roles_outside_a_route_are_refused_before_the_request_is_read(
        self, trail: PostgresTransport, db: Any
    ) -> None:
        """A writer reading, a user on a staff route, anyone without a principal: refused and recorded,
        even with a body the route would refuse as invalid (the request is not parsed first)."""
        assert get(ingest_handler, "/events", WRITER).status == 403
        assert get(detect_handler, "/alerts", ALICE).status == 403
        post = invoke(ingest_handler, proxy_event("POST", "/events", raw_body="{not json", principal=ALICE))
        assert post.status == 403
        nobody = get(ingest_handler, "/events", None)
        assert nobody.status == 401 and nobody.body["error"]["code"] == "unauthorized"
        assert [(r["principal"], r["route"]) for r in access_records(db)] == [
            ("writer:checkout-service", "GET /events"),
            ("user:alice", "GET /alerts"),
            ("user:alice", "POST /events"),
            ("anonymous", "GET /events"),
        ]
        assert {r["action"] for r in access_records(db)} == {"audit_access_refused"}
        assert app_event_count(db) == 5  # nothing of the refused POST was stored

    def test_an_alert_change_names_the_principal_and_is_recorded(self, trail: PostgresTransport, db: Any) -> None:
        db.execute(
            "insert into audit.security_alerts (rule, alert_key, window_start, window_seconds, severity, risk_score,"
            " attack_id, event_count, event_ids, first_event_at, last_event_at, trigger_seq, summary)"
            " values ('brute_force', '203.0.113.5', now(), 900, 'high', 8, 'T1110', 1, '{alice-0}', now(), now(),"
            " 1, 'test alert')"
        )
        alert_id = db.execute("select alert_id from audit.security_alerts").fetchone()[0]
        response = invoke(
            detect_handler,
            proxy_event("PATCH", f"/alerts/{alert_id}", body={"status": "acknowledged"}, principal=AUDITOR),
        )
        assert response.status == 200, response.body
        changed = db.execute("select status_changed_by from audit.security_alerts").fetchone()[0]
        assert changed == "auditor:carol"
        assert [(r["action"], r["route"]) for r in access_records(db)] == [("audit_change", "PATCH /alerts/{alert_id}")]

    def test_no_answer_leaves_without_its_record(self, trail: PostgresTransport, db: Any) -> None:
        """Given the chain cannot take the access record, When a user reads, Then 503 and no events are served."""
        db.execute("revoke execute on function audit.ingest_events(json) from service_role")
        response = get(ingest_handler, "/events", ALICE)
        assert response.status == 503
        assert "events" not in response.body


@pytest.fixture
def lambda_login(db_url: str, db: Any) -> Iterator[str]:
    """A connection string for the audit_lambda role (trust auth here; a password in production)."""
    db.execute("alter role audit_lambda login")
    try:
        yield make_conninfo(db_url, user="audit_lambda")
    finally:
        db.execute("alter role audit_lambda nologin")


class TestLambdaLoginRole:
    def test_alone_it_can_read_and_call_nothing(self, lambda_login: str) -> None:
        with psycopg.connect(lambda_login, autocommit=True) as conn:
            for statement in (
                "select count(*) from audit.audit_events",
                "select audit.list_events()",
                "select audit.chain_state()",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)

    def test_it_cannot_become_the_owner(self, lambda_login: str) -> None:
        with (
            psycopg.connect(lambda_login, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("set role postgres")

    def test_through_the_transport_it_runs_the_sql_api_and_reads_as_users(self, lambda_login: str) -> None:
        transport = PostgresTransport(lambda_login, role="service_role")
        try:
            stored = store_events(transport, [_event(0, "alice"), _event(0, "bob")])
            assert stored.created == 2
            assert users(transport.call("list_events", {})) == {"alice", "bob"}
            assert users(as_user(transport, claims(BOB)).call("list_events", {})) == {"bob"}
        finally:
            transport.close()
