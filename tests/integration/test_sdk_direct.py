"""The SDK writing straight to the database's SQL API (database URL, or Supabase URL + service key).

The same sealing and `audit.ingest_events` the ingest function uses, so the chain the database
builds is verified here with the same verifier the API and the CLI use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from audit_common.db import PostgresTransport
from audit_common.verification import verify_chain
from audit_trail import AuditConfig, AuditLogger, ComplianceStandard, NotAvailableError
from tests.support.aws import archive_bucket
from tests.support.postgrest_stub import postgrest_stub

pytestmark = pytest.mark.integration
SERVICE_KEY = "service-role-key-for-sdk-tests"


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `condition` until true or `timeout` (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def direct_config(db_url: str, **overrides: Any) -> AuditConfig:
    """A logger configuration that writes to the test database as Supabase's service_role."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "database_role": "service_role",
        "flush_interval_seconds": 0.05,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.3,
        **overrides,
    }
    return AuditConfig(**values)


def stored_ids(db: psycopg.Connection[Any]) -> list[str]:
    """Every stored event_id in chain order."""
    return [row[0] for row in db.execute("select event_id from audit.audit_events order by seq").fetchall()]


def test_database_url_mode_stores_a_valid_chain(db_url: str, db: psycopg.Connection[Any]) -> None:
    """Given a logger configured with a database URL, when events are logged from several threads,
    then each is stored once, in one valid chain, and reads come back through list_events."""
    from concurrent.futures import ThreadPoolExecutor

    audit_logger = AuditLogger(direct_config(db_url, batch_size=40))
    audit_logger.initialize_sync()
    assert audit_logger.backend.description == "PostgreSQL (database_url)"

    def log(worker: int) -> list[str]:
        ids = []
        for n in range(50):
            event = audit_logger.create_audit_event(
                event_type="file_download",
                user_id=f"worker-{worker}",
                action="download",
                resource_path=f"/files/{worker}/{n}",
                compliance_tags=[ComplianceStandard.SOX],
            )
            audit_logger.log_event_sync(event)
            ids.append(event.event_id)
        return ids

    with ThreadPoolExecutor(4) as pool:
        sent = [event_id for ids in pool.map(log, range(4)) for event_id in ids]
    recent = audit_logger.get_recent_events_sync(limit=5, user_id="worker-2")
    assert audit_logger.close_sync() == 0

    assert sorted(stored_ids(db)) == sorted(sent)
    assert len(set(stored_ids(db))) == 200
    assert [event.user_id for event in recent] == ["worker-2"] * 5
    assert recent[0].seq > recent[-1].seq  # newest first
    transport = PostgresTransport(db_url, role="service_role")
    try:
        result = verify_chain(transport, from_seq=1, to_seq=None, max_rows=10_000)
    finally:
        transport.close()
    assert result.valid
    assert result.checked == 200


def test_seed_custom_configuration_over_supabase(db_url: str, db: psycopg.Connection[Any]) -> None:
    """Given the seed's "Custom Configuration" (supabase_url + supabase_key), then events reach the SQL API
    over Supabase's REST endpoint (a PostgREST stand-in on the test database)."""
    from audit_trail.config import AuditConfig, AuditLoggerFactory

    with postgrest_stub(db_url, SERVICE_KEY) as stub:

        async def main() -> str:
            config = AuditConfig(
                supabase_url=stub.url,
                supabase_key=SERVICE_KEY,
                environment="production",
                compliance_standards=[ComplianceStandard.GDPR, ComplianceStandard.SOX],
                retention_days=2555,  # 7 years
                enable_streaming=True,
                enable_security_detection=True,
            )

            logger = AuditLoggerFactory.create_file_management_logger(config)
            await logger.initialize()
            event = logger.create_audit_event(event_type="FILE_SHARE", user_id="erin", action="share")
            await logger.log_event(event)
            await logger.close()
            return event.event_id

        event_id = asyncio.run(main())
        functions = [request.path.rsplit("/", 1)[-1] for request in stub.requests]

    assert "ingest_events" in functions
    assert all(request.headers["apikey"] == SERVICE_KEY for request in stub.requests)
    row = db.execute("select event_id, event_type, compliance_tags from audit.audit_events").fetchone()
    assert row == (event_id, "file_share", ["gdpr", "sox"])


def test_database_outage_in_direct_mode_loses_nothing(
    db_url: str, db: psycopg.Connection[Any], pg_server_url: str
) -> None:
    """Given the database refusing connections mid-stream, then the buffered events are stored once it is back."""
    audit_logger = AuditLogger(direct_config(db_url, batch_size=10, overflow_policy="block"))
    audit_logger.initialize_sync()
    dbname = db.info.dbname
    sent: list[str] = []

    def log(count: int) -> None:
        for _ in range(count):
            event = audit_logger.create_audit_event(event_type="file_access", user_id="frank", action="read")
            assert audit_logger.log_event_sync(event)
            sent.append(event.event_id)

    log(15)
    assert audit_logger.flush_sync(timeout=30)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(dbname)))
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (dbname,),
        )
        try:
            log(60)
            assert wait_until(lambda: audit_logger.stats.retries >= 2), audit_logger.stats
        finally:
            admin.execute(sql.SQL("alter database {} allow_connections true").format(sql.Identifier(dbname)))

    assert audit_logger.flush_sync(timeout=60)
    assert audit_logger.close_sync() == 0
    with psycopg.connect(db_url) as fresh:
        assert stored_ids(fresh) == sent


def test_events_are_flushed_when_the_program_exits(db_url: str, db: psycopg.Connection[Any]) -> None:
    """Given a program that logs events and exits without close(), then the exit hook delivers them."""
    import os
    import subprocess
    import sys

    program = (
        "from audit_trail import AuditConfig, AuditLogger\n"
        "logger = AuditLogger(AuditConfig(flush_interval_seconds=60, batch_size=1000))\n"
        "for n in range(10):\n"
        "    logger.log_event_sync(logger.create_audit_event(event_type='system_event', user_id='cron',"
        " action='tick', event_id=f'exit-{n}'))\n"
        "print(len(logger.pending_events()))\n"
    )
    env = {**os.environ, "DATABASE_URL": db_url, "AUDIT_DATABASE_ROLE": "service_role"}
    env.pop("AUDIT_API_URL", None)
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "10"  # still buffered when the program's last line ran
    assert stored_ids(db) == [f"exit-{n}" for n in range(10)]


def test_reports_in_direct_mode_say_what_to_configure(db_url: str) -> None:
    """Given a logger writing to the database, when a report is asked for, then the error names the way."""
    audit_logger = AuditLogger(direct_config(db_url))
    end = datetime.now(UTC)

    with pytest.raises(NotAvailableError) as caught:
        audit_logger.generate_compliance_report_sync(ComplianceStandard.GDPR, end - timedelta(days=30), end)
    audit_logger.close_sync()

    assert "api_url" in str(caught.value)
    assert "audit-trail report" in str(caught.value)


def test_cleanup_old_events_runs_retention_in_direct_mode(db_url: str, db: psycopg.Connection[Any]) -> None:
    """Given events 8 years old and an archive bucket, when cleanup_old_events runs, then they are archived
    and redacted, recent ones kept, and the chain still verifies; without a bucket the error says so."""
    now = datetime.now(UTC)
    with archive_bucket() as bucket:
        audit_logger = AuditLogger(direct_config(db_url, archive_bucket=bucket))
        old = [
            audit_logger.create_audit_event(
                event_type="file_access", user_id="gina", action="read", timestamp=now - timedelta(days=8 * 365)
            )
            for _ in range(3)
        ]
        recent = audit_logger.create_audit_event(event_type="file_access", user_id="gina", action="read")
        for event in [*old, recent]:
            audit_logger.log_event_sync(event)
        assert audit_logger.flush_sync(timeout=30)

        result = asyncio.run(audit_logger.cleanup_old_events())
        audit_logger.close_sync()

    assert result["archived"] == 3
    assert result["redacted"] == 3
    redacted = db.execute(
        "select event_id from audit.audit_events where redacted_at is not null order by seq"
    ).fetchall()
    assert [row[0] for row in redacted] == [event.event_id for event in old]
    transport = PostgresTransport(db_url, role="service_role")
    try:
        assert verify_chain(transport, from_seq=1, to_seq=None, max_rows=100).valid
    finally:
        transport.close()

    without_bucket = AuditLogger(direct_config(db_url))
    with pytest.raises(NotAvailableError, match="archive_bucket"):
        without_bucket.cleanup_old_events_sync()
    without_bucket.close_sync()
