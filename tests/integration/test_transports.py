"""Both transports against the real database; the Postgres one also through outages.

The Supabase (PostgREST) transport is contract-tested against tests/support/postgrest_stub.py,
a stand-in for PostgREST's RPC endpoint backed by the same database: PostgREST itself cannot
run here.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from audit_common import event_store
from audit_common.db import PostgresTransport, PostgrestTransport
from audit_common.errors import ConfigurationError, InvalidInput, ServiceUnavailable
from audit_common.models import AuditEventIn
from audit_common.verification import verify_chain
from ingest import service
from tests.support.events import event_count, make_event
from tests.support.postgrest_stub import postgrest_stub

SERVICE_KEY = "service-role-key-for-tests"


def sealed(n: int, **overrides: Any) -> dict[str, Any]:
    return event_store.seal_for_storage(AuditEventIn.model_validate(make_event(n, **overrides)))


class TestPostgrestContract:
    def test_rpc_request_shape_and_result(self, db_url: str, db: psycopg.Connection[Any]) -> None:
        """Given the Supabase transport, When it ingests, Then it POSTs /rest/v1/rpc with the audit profile and keys."""
        with postgrest_stub(db_url, SERVICE_KEY) as stub:
            transport = PostgrestTransport(stub.url, SERVICE_KEY)
            result = transport.call("ingest_events", {"p_events": [sealed(1), sealed(2)]})
            transport.close()

        assert [r["status"] for r in result] == ["created", "created"]
        request = stub.requests[0]
        assert request.path == "/rest/v1/rpc/ingest_events"
        assert request.headers["content-profile"] == "audit"
        assert request.headers["apikey"] == SERVICE_KEY
        assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
        assert request.headers["content-type"].startswith("application/json")
        assert list(request.body) == ["p_events"] and len(request.body["p_events"]) == 2
        assert event_count(db) == 2

    def test_same_service_code_runs_over_either_transport(self, db_url: str, transport: PostgresTransport) -> None:
        """Given events written over PostgREST, When read back over Postgres, Then both agree and the chain verifies."""
        with postgrest_stub(db_url, SERVICE_KEY) as stub:
            rest = PostgrestTransport(stub.url, SERVICE_KEY)
            written = event_store.store_events(rest, [AuditEventIn.model_validate(make_event(n)) for n in range(30)])
            replay = event_store.store_events(rest, [AuditEventIn.model_validate(make_event(n)) for n in range(30)])
            page_rest = service.list_events(rest, user_id="user-3", limit=10)
            verify_rest = verify_chain(rest)
            rest.close()

        page_pg = service.list_events(transport, user_id="user-3", limit=10)
        assert written.created == 30 and replay.duplicates == 30
        assert page_rest == page_pg
        assert verify_rest.valid and verify_rest.checked == 30
        assert verify_chain(transport) == verify_rest

    def test_database_refusal_becomes_invalid_input(self, db_url: str) -> None:
        """Given an event the database refuses, When sent over PostgREST, Then the error is InvalidInput."""
        with postgrest_stub(db_url, SERVICE_KEY) as stub:
            transport = PostgrestTransport(stub.url, SERVICE_KEY)
            with pytest.raises(InvalidInput, match="check constraint"):
                transport.call("ingest_events", {"p_events": [{**sealed(1), "status": "bogus"}]})

    def test_outage_becomes_service_unavailable(self, db_url: str) -> None:
        """Given PostgREST answering 503, When called, Then the caller gets ServiceUnavailable (retryable)."""
        with postgrest_stub(db_url, SERVICE_KEY) as stub:
            stub.fail_with = (
                503,
                {"code": "PGRST000", "message": "database unavailable", "details": None, "hint": None},
            )
            transport = PostgrestTransport(stub.url, SERVICE_KEY)
            with pytest.raises(ServiceUnavailable):
                transport.call("chain_state", {"p_before_seq": 1})

    def test_unreachable_host_is_service_unavailable(self) -> None:
        """Given nothing listening, When called, Then ServiceUnavailable rather than a raw network error."""
        transport = PostgrestTransport("http://127.0.0.1:9", SERVICE_KEY, timeout=2)
        with pytest.raises(ServiceUnavailable):
            transport.call("chain_state", {})


class TestPostgresTransport:
    def test_reconnects_after_the_server_drops_the_connection(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a warm connection killed by the server, When the next call comes, Then it reconnects and succeeds."""
        transport.call("chain_state", {"p_before_seq": 1})
        db.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'audit-trail' and datname = current_database()"  # not other tests' sessions
        )

        state = transport.call("chain_state", {"p_before_seq": 1})

        assert state["head_seq"] == 0

    def test_retry_after_a_lost_commit_answer_is_a_duplicate_not_a_second_row(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a committed batch, When the call is retried (lost answer), Then nothing is stored twice."""
        payload = [sealed(n) for n in range(5)]
        transport.call("ingest_events", {"p_events": payload})
        db.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where application_name = 'audit-trail' and datname = current_database()"  # not other tests' sessions
        )

        retried = transport.call("ingest_events", {"p_events": payload})

        assert [r["status"] for r in retried] == ["duplicate"] * 5
        assert event_count(db) == 5

    def test_unreachable_database_is_service_unavailable(self) -> None:
        """Given a database that does not answer, When called, Then ServiceUnavailable names no secret."""
        transport = PostgresTransport("postgresql://audit:s3cret@127.0.0.1:9/none", connect_timeout=1)
        with pytest.raises(ServiceUnavailable) as caught:
            transport.call("chain_state", {})
        assert "s3cret" not in str(caught.value)

    def test_statement_timeout_is_service_unavailable(self, db_url: str) -> None:
        """Given a statement that outlives the timeout, When called, Then ServiceUnavailable, not a hang."""
        transport = PostgresTransport(db_url, statement_timeout_ms=100)
        conn = transport._connection()
        conn.execute("create function audit.slow() returns jsonb language sql as 'select pg_sleep(2)::text::jsonb'")
        with pytest.raises(ServiceUnavailable, match="in time"):
            transport.call("slow")

    def test_role_without_grant_is_a_configuration_error(self, db_url: str) -> None:
        """Given the anon role, When it calls the SQL API, Then the error says the grant is missing."""
        transport = PostgresTransport(db_url, role="anon")
        with pytest.raises(ConfigurationError, match="grant"):
            transport.call("chain_state", {})
