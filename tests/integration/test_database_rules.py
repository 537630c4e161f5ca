"""The database owns the invariants: chain trigger, append-only, roles and row level security."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.integrity import ChainVerifier
from audit_common.models import AuditEventIn
from tests.support.events import event_count, make_event, one


def store(transport: PostgresTransport, events: list[dict[str, Any]]) -> Any:
    return event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])


def verify_all(conn: psycopg.Connection[Any]) -> Any:
    """Verify the whole chain with the same verifier the API uses, paging through chain_segment."""
    verifier = ChainVerifier()
    next_seq = 1
    while True:
        rows = one(conn, "select audit.chain_segment(%s, null, 5000)", (next_seq,))[0]
        if not rows:
            break
        verifier.feed_many(rows)
        next_seq = rows[-1]["seq"] + 1
    head = one(conn, "select seq, chain_hash from audit.chain_head")
    return verifier.finish(expected_head_seq=head[0], expected_head_hash=bytes(head[1]))


def as_role(conn: psycopg.Connection[Any], role: str, claims: str | None = None) -> None:
    """Impersonate a Supabase role inside the current transaction, as PostgREST does."""
    if claims is not None:
        conn.execute("select set_config('request.jwt.claims', %s, true)", (claims,))
    conn.execute(f"set local role {role}")


class TestChain:
    def test_eight_concurrent_writers_build_one_valid_chain(self, db_url: str, db: psycopg.Connection[Any]) -> None:
        """Given 8 writers of 2,000 events each, When they write at once, Then 16,000 rows form one valid chain."""
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def writer(w: int) -> None:
            transport = PostgresTransport(db_url, role="service_role")
            try:
                barrier.wait()
                for start in range(0, 2000, 250):
                    store(transport, [make_event(w * 10_000 + n) for n in range(start, start + 250)])
            except BaseException as exc:  # surfaced below: a thread's failure must fail the test
                errors.append(exc)
            finally:
                transport.close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert event_count(db) == 16_000
        seqs = one(db, "select min(seq), max(seq), count(distinct seq) from audit.audit_events")
        assert seqs == (1, 16_000, 16_000)
        result = verify_all(db)
        assert result.valid, result.message
        assert result.checked == 16_000

    def test_rolled_back_savepoint_leaves_no_hole(
        self, db: psycopg.Connection[Any], transport: PostgresTransport
    ) -> None:
        """Given an insert rolled back to a savepoint, When more events follow, Then the chain has no gap."""
        events = [AuditEventIn.model_validate(make_event(n)) for n in range(4)]
        payload = [event_store.seal_for_storage(e) for e in events]
        with db.transaction():
            db.execute("select audit.ingest_events(%s::json)", (psycopg.types.json.Json(payload[:1]),))
            with pytest.raises(pg_errors.CheckViolation), db.transaction():
                db.execute("select audit.ingest_events(%s::json)", (psycopg.types.json.Json(payload[1:2]),))
                db.execute(
                    "select audit.ingest_events(%s::json)",
                    (psycopg.types.json.Json([{**payload[2], "status": "bogus"}]),),
                )
            db.execute("select audit.ingest_events(%s::json)", (psycopg.types.json.Json(payload[3:]),))

        assert db.execute("select array_agg(seq order by seq) from audit.audit_events").fetchone() == ([1, 2],)
        assert verify_all(db).valid

    def test_insert_that_skips_a_row_after_its_seq_was_assigned_is_refused(self, db: psycopg.Connection[Any]) -> None:
        """Given a stored event, When a direct INSERT ON CONFLICT DO NOTHING replays it, Then it fails."""
        event = event_store.seal_for_storage(AuditEventIn.model_validate(make_event(1)))
        db.execute("select audit.ingest_events(%s::json)", (psycopg.types.json.Json([event]),))

        with pytest.raises(pg_errors.IntegrityConstraintViolation, match="chain would break"):
            db.execute(
                """insert into audit.audit_events (event_id, "timestamp", event_type, user_id, action, status,
                          security_level, checksum)
                   values (%s, now(), 'file_upload', 'u', 'a', 'success', 'low', %s)
                   on conflict (event_id) do nothing""",
                (event["event_id"], hashlib.sha256(b"x").digest()),
            )
        assert verify_all(db).valid

    def test_client_cannot_choose_seq_or_hashes(self, db: psycopg.Connection[Any]) -> None:
        """Given an INSERT naming seq and chain_hash, When it runs, Then the trigger overrides them."""
        db.execute(
            """insert into audit.audit_events (seq, event_id, "timestamp", event_type, user_id, action, status,
                      security_level, checksum, prev_hash, chain_hash)
               values (999, 'forged', now(), 'file_upload', 'u', 'a', 'success', 'low', %s, %s, %s)""",
            (hashlib.sha256(b"c").digest(), b"\x01" * 32, b"\x02" * 32),
        )
        row = one(db, "select seq, prev_hash, chain_hash from audit.audit_events")
        assert row[0] == 1 and bytes(row[1]) == bytes(32)
        assert bytes(row[2]) == hashlib.sha256(bytes(32) + hashlib.sha256(b"c").digest()).digest()


STATEMENTS = {
    "update": "update audit.audit_events set action = 'changed'",
    "delete": "delete from audit.audit_events",
    "truncate": "truncate audit.audit_events",
}
AUDITOR_CLAIMS = '{"sub": "auditor-1", "role": "authenticated", "app_metadata": {"audit_role": "auditor"}}'


class TestAppendOnly:
    @pytest.fixture(autouse=True)
    def _events(self, transport: PostgresTransport) -> None:
        store(transport, [make_event(n) for n in range(3)])

    @pytest.mark.parametrize("statement", list(STATEMENTS))
    @pytest.mark.parametrize(
        ("role", "claims"),
        [("service_role", None), ("authenticated", AUDITOR_CLAIMS), ("anon", None), ("owner", None)],
    )
    def test_no_role_can_change_or_remove_events(
        self, db: psycopg.Connection[Any], statement: str, role: str, claims: str | None
    ) -> None:
        """Given stored events, When any role updates, deletes or truncates, Then it fails and nothing changes."""
        with pytest.raises(pg_errors.InsufficientPrivilege) as caught, db.transaction():
            if role != "owner":
                as_role(db, role, claims)
            db.execute(STATEMENTS[statement])

        message = str(caught.value)
        assert "append-only" in message or "permission denied" in message
        assert event_count(db) == 3
        assert db.execute("select count(*) from audit.audit_events where action = 'changed'").fetchone() == (0,)

    def test_redaction_function_blanks_payload_and_keeps_the_proof(self, db: psycopg.Connection[Any]) -> None:
        """Given an event, When redacted through the function, Then payload is blank, hashes kept, chain verifies."""
        event_id = make_event(1)["event_id"]
        before = one(db, "select seq, checksum, chain_hash from audit.audit_events where event_id = %s", (event_id,))
        with db.transaction():
            as_role(db, "service_role")
            out = one(
                db, "select audit.redact_events(%s::jsonb, 'erasure', 'dpo@example.com', 'req-1')", (Jsonb([event_id]),)
            )
        assert out[0] == {"requested": 1, "redacted": 1}

        row = one(
            db,
            "select seq, checksum, chain_hash, user_email, ip_address, details, redaction_reason, redacted_by"
            " from audit.audit_events where event_id = %s",
            (event_id,),
        )
        assert row[:3] == before
        assert row[3:] == (None, None, {}, "erasure", "dpo@example.com")
        result = verify_all(db)
        assert result.valid and result.redacted == 1

    def test_redaction_does_not_open_the_table_for_the_rest_of_the_transaction(
        self, db: psycopg.Connection[Any]
    ) -> None:
        """Given a redaction in a transaction, When the same transaction then updates, Then it is still refused."""
        with pytest.raises(pg_errors.InsufficientPrivilege, match="append-only"), db.transaction():
            db.execute(
                "select audit.redact_events(%s, 'retention', 'retention-job')", (Jsonb([make_event(0)["event_id"]]),)
            )
            db.execute("update audit.audit_events set action = 'changed'")

    def test_redaction_needs_a_reason_and_an_actor(self, db: psycopg.Connection[Any]) -> None:
        """Given no actor or an unknown reason, When redacting, Then the function refuses."""
        with pytest.raises(pg_errors.InvalidParameterValue):
            db.execute("select audit.redact_events(%s, 'because', 'me')", (Jsonb([make_event(0)["event_id"]]),))
        with pytest.raises(pg_errors.InvalidParameterValue):
            db.execute("select audit.redact_events(%s, 'erasure', '  ')", (Jsonb([make_event(0)["event_id"]]),))

    def test_api_roles_cannot_insert_around_the_sql_api(self, db: psycopg.Connection[Any]) -> None:
        """Given the API roles, When one inserts directly, Then permission is denied (only ingest_events writes)."""
        for role in ("service_role", "authenticated", "anon"):
            with pytest.raises(pg_errors.InsufficientPrivilege), db.transaction():
                as_role(db, role, AUDITOR_CLAIMS if role == "authenticated" else None)
                db.execute(
                    'insert into audit.audit_events (event_id, "timestamp", event_type, user_id, action, status,'
                    " security_level, checksum) values ('x', now(), 'file_upload', 'u', 'a', 'success', 'low', %s)",
                    (bytes(32),),
                )


class TestRowLevelSecurity:
    @pytest.fixture(autouse=True)
    def _events(self, transport: PostgresTransport) -> None:
        # user-0 .. user-16 own the events (make_event: user_id = user-{n % 17})
        store(transport, [make_event(n) for n in range(34)])

    def visible(self, db: psycopg.Connection[Any], role: str, claims: str | None) -> set[str]:
        with db.transaction():
            as_role(db, role, claims)
            rows = db.execute("select user_id from audit.audit_events").fetchall()
            listed = one(db, "select audit.list_events(p_limit => 1000)")
            assert {e["user_id"] for e in listed[0]} == {r[0] for r in rows}, "SQL API and table disagree"
        return {r[0] for r in rows}

    def test_user_sees_only_their_own_events(self, db: psycopg.Connection[Any]) -> None:
        """Given events of 17 users, When user-3 reads with their JWT, Then only user-3's events are visible."""
        claims = '{"sub": "user-3", "role": "authenticated"}'
        assert self.visible(db, "authenticated", claims) == {"user-3"}

    def test_auditor_sees_everything(self, db: psycopg.Connection[Any]) -> None:
        """Given an auditor JWT, When reading, Then all users' events are visible."""
        assert len(self.visible(db, "authenticated", AUDITOR_CLAIMS)) == 17

    def test_user_metadata_cannot_grant_auditor(self, db: psycopg.Connection[Any]) -> None:
        """Given audit_role in user_metadata (which users edit themselves), When reading, Then it grants nothing."""
        claims = '{"sub": "user-5", "role": "authenticated", "user_metadata": {"audit_role": "auditor"}}'
        assert self.visible(db, "authenticated", claims) == {"user-5"}

    def test_anon_sees_nothing(self, db: psycopg.Connection[Any]) -> None:
        """Given the anon role, When it reads the table or the SQL API, Then permission is denied."""
        with pytest.raises(pg_errors.InsufficientPrivilege), db.transaction():
            as_role(db, "anon")
            db.execute("select count(*) from audit.audit_events")
        with pytest.raises(pg_errors.InsufficientPrivilege), db.transaction():
            as_role(db, "anon")
            db.execute("select audit.list_events()")

    def test_authenticated_cannot_write_through_the_sql_api(self, db: psycopg.Connection[Any]) -> None:
        """Given an auditor JWT, When it calls ingest_events or redact_events, Then permission is denied."""
        for call in (
            "select audit.ingest_events('[]'::json)",
            "select audit.redact_events('[]', 'erasure', 'x')",
        ):
            with pytest.raises(pg_errors.InsufficientPrivilege), db.transaction():
                as_role(db, "authenticated", AUDITOR_CLAIMS)
                db.execute(call)
