"""The `audit-trail` command against a real database."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import psycopg
import pytest

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from audit_trail.cli import main
from audit_trail.postgres import create_database, drop_database
from tests.support.events import make_event, one


@pytest.fixture
def chain(transport: PostgresTransport) -> None:
    event_store.store_events(transport, [AuditEventIn.model_validate(make_event(n)) for n in range(25)])


@pytest.mark.usefixtures("chain")
def test_verify_prints_a_summary_and_exits_zero(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Given an intact chain, When verified from the CLI, Then the summary counts every event and exit is 0."""
    assert main(["verify", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("25/25 events valid, 0 redacted")


@pytest.mark.usefixtures("chain")
def test_verify_names_the_first_bad_seq_and_exits_one(
    db_url: str, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a row edited behind the triggers, When verified, Then exit 1 and the seq and kind are printed."""
    db.execute("set session_replication_role = replica")
    db.execute("update audit.audit_events set user_id = 'mallory' where seq = 7")

    assert main(["verify", "--database-url", db_url, "--json"]) == 1
    result = orjson.loads(capsys.readouterr().out)
    assert (result["valid"], result["first_invalid_seq"], result["reason"]) == (False, 7, "modified")


def test_db_migrate_is_idempotent(pg_server_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Given an empty database, When migrated twice, Then the second run has nothing to do."""
    name = f"audit_cli_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    try:
        assert main(["db", "migrate", "--database-url", url]) == 0
        assert "migration(s) applied" in capsys.readouterr().out
        assert main(["db", "migrate", "--database-url", url]) == 0
        assert "up to date" in capsys.readouterr().out
    finally:
        drop_database(pg_server_url, name)


def test_missing_database_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no URL anywhere, When verifying, Then the command says what to pass."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="--database-url"):
        main(["verify"])


def test_webhook_command_falls_back_to_pg_notify_and_events_are_announced(
    db_url: str,
    db: psycopg.Connection[Any],
    transport: PostgresTransport,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given vanilla PostgreSQL, When the webhook is wired, Then each insert is announced with the webhook payload."""
    monkeypatch.setenv("AUDIT_WEBHOOK_SECRET", "a-secret-of-sixteen-chars")
    assert main(["webhook", "--database-url", db_url, "--url", "https://api.example.com/v1/webhooks/supabase"]) == 0
    assert "(pg_notify)" in capsys.readouterr().out

    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen audit_detection")
        event_store.store_events(transport, [AuditEventIn.model_validate(make_event(n)) for n in range(2)])
        notices = [orjson.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=2)]

    assert [(n["type"], n["schema"], n["table"], n["record"]["seq"], n["old_record"]) for n in notices] == [
        ("INSERT", "audit", "audit_events", 1, None),
        ("INSERT", "audit", "audit_events", 2, None),
    ]


def test_webhook_command_refuses_a_short_secret(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a short secret, When wiring the webhook, Then the command refuses before touching the database."""
    monkeypatch.setenv("AUDIT_WEBHOOK_SECRET", "short")
    with pytest.raises(SystemExit, match="16 characters"):
        main(["webhook", "--database-url", db_url, "--url", "https://x.example/webhooks/supabase"])


def test_webhook_uses_supabase_functions_where_it_exists(
    db_url: str, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a database with supabase_functions.http_request, When wired, Then the trigger calls it with our args."""
    # The same signature Supabase installs (a trigger function reading its arguments from TG_ARGV).
    db.execute(
        "create schema supabase_functions;"
        "create function supabase_functions.http_request() returns trigger language plpgsql"
        " as $$ begin return new; end $$"
    )
    monkeypatch.setenv("AUDIT_WEBHOOK_SECRET", "a-secret-of-sixteen-chars")
    url = "https://abc.execute-api.eu-west-1.amazonaws.com/v1/webhooks/supabase"

    assert main(["webhook", "--database-url", db_url, "--url", url, "--timeout-ms", "3000"]) == 0

    row = one(
        db,
        "select p.proname, n.nspname, t.tgargs from pg_trigger t join pg_proc p on p.oid = t.tgfoid"
        " join pg_namespace n on n.oid = p.pronamespace where t.tgname = 'audit_events_detection_webhook'",
    )
    args = bytes(row[2]).split(b"\x00")[:-1]
    assert (row[0], row[1]) == ("http_request", "supabase_functions")
    assert [a.decode() for a in args[:2]] == [url, "POST"]
    headers = orjson.loads(args[2])
    assert headers == {"Content-Type": "application/json", "X-Audit-Webhook-Secret": "a-secret-of-sixteen-chars"}
    assert [a.decode() for a in args[3:]] == ["{}", "3000"]


def test_token_help_names_the_roles_and_the_shell_use(capsys: pytest.CaptureFixture[str]) -> None:
    """`audit-trail token --help` says which roles exist and how to capture the token in a shell."""
    with pytest.raises(SystemExit) as done:
        main(["token", "--help"])

    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "writer (POST /events), user (own events), auditor or admin" in text
    assert "TOKEN=$(audit-trail token --role auditor)" in text


def test_writers_issue_list_revoke_and_the_chain_records_it(
    db_url: str, transport: PostgresTransport, db: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given an operator issuing a writer token against a real database, Then it authenticates, is listed
    active (no secret anywhere), stops authenticating once revoked, and both acts reach the chain."""
    from audit_common.auth import Unauthorized, writer_principal
    from detect.sweep import sweep

    assert main(["writers", "issue", "--database-url", db_url, "--name", "files-app", "--by", "admin:ops"]) == 0
    printed = capsys.readouterr()
    token = printed.out.strip()
    token_id = token[4:16]
    assert token.startswith("atw_") and f"writer-{token_id}-usage-key" in printed.err
    assert writer_principal(token, transport).subject == "files-app"

    assert main(["writers", "list", "--database-url", db_url, "--json"]) == 0
    (listed,) = orjson.loads(capsys.readouterr().out)
    assert (listed["token_id"], listed["name"], listed["active"]) == (token_id, "files-app", True)
    assert token.split("_", 2)[2] not in str(listed)

    assert main(["writers", "revoke", token_id, "--database-url", db_url, "--by", "admin:sec"]) == 0
    assert "revoked by admin:sec" in capsys.readouterr().out
    with pytest.raises(Unauthorized):
        writer_principal(token, transport)
    assert main(["writers", "list", "--database-url", db_url]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["writers", "revoke", "nosuchtoken0", "--database-url", db_url, "--by", "admin:sec"]) == 2

    sweep(transport, None, batch=100, budget_seconds=30)
    recorded = db.execute(
        "select action, user_id from audit.audit_events where action like 'writer_token_%' order by seq"
    ).fetchall()
    assert recorded == [("writer_token_issued", "admin:ops"), ("writer_token_revoked", "admin:sec")]
