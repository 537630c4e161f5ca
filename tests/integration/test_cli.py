"""The `audit-trail` command against a real database."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import psycopg
import pytest

from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from audit_trail.cli import main
from audit_trail.postgres import create_database, drop_database
from ingest import service
from tests.support.events import make_event


@pytest.fixture
def chain(transport: PostgresTransport) -> None:
    service.store_events(transport, [AuditEventIn.model_validate(make_event(n)) for n in range(25)])


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
