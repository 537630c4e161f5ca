"""The SDK against the local stack's real HTTP API: the seed's README examples, streaming, outages.

Each test runs the local stack in-process (the real handlers behind werkzeug, moto, the pg_notify
webhook relay) on its own fresh database and a free port. The seed's examples are copied as they
were written; only the imports (`audit_trail`, `audit_trail.config`) and the API address (the
`AUDIT_API_URL` environment variable, and the tokens: `AUDIT_API_KEY`, a writer token, for sending and
`AUDIT_READ_TOKEN`, an auditor's access token, for reading) are adapted, plus stubs for the functions the README left to
the reader (`process_customer_data`, `send_webhook`, ...).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from audit_trail.local.stack import LocalStack
from audit_trail.local.tokens import NoJwtSecret, bearer
from tests.support.events import TRAIL_ACTIONS

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[LocalStack]:
    """The local stack on this test's database, on free ports (each starts from an empty moto account)."""
    with LocalStack(database_url=db_url, port=0, data_dir=tmp_path / "stack", write_state=False) as running:
        yield running


def auditor_token(stack: LocalStack) -> str | None:
    """An auditor's access token for the stack; None while its template checks no access tokens."""
    try:
        return stack.token("auditor")
    except NoJwtSecret:
        return None


@pytest.fixture
def writer_token(stack: LocalStack) -> str:
    """A writer token registered in the stack's database (what an operator gives the app)."""
    return stack.token("writer", "sdk-tests")


@pytest.fixture
def api_env(stack: LocalStack, writer_token: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment a deployed app would have: the API's address and its tokens (the seed's examples
    read no arguments): a writer token to send events, an auditor's token for the reads and reports."""
    monkeypatch.setenv("AUDIT_API_URL", stack.api_url)
    monkeypatch.setenv("AUDIT_API_KEY", writer_token)
    reader = auditor_token(stack)
    if reader:
        monkeypatch.setenv("AUDIT_READ_TOKEN", reader)
    else:
        monkeypatch.delenv("AUDIT_READ_TOKEN", raising=False)
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "AUDIT_OVERFLOW_POLICY", "AUDIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return stack.api_url


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `condition` until true or `timeout` (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def stored_ids(db: psycopg.Connection[Any]) -> list[str]:
    """Every event_id the apps stored, in chain order (the API's records of its own use left out)."""
    query = "select event_id from audit.audit_events where action <> all(%s) order by seq"
    return [row[0] for row in db.execute(query, (list(TRAIL_ACTIONS),)).fetchall()]


def chain_is_valid(stack: LocalStack) -> bool:
    """The API's own verification of the whole chain (asked as an auditor)."""
    answer = httpx.get(f"{stack.api_url}/integrity/verify", headers=bearer(auditor_token(stack)), timeout=30).json()
    return bool(answer["valid"]) and answer["first_invalid_seq"] is None


# --- the seed's README, example by example --------------------------------------------------------


def test_seed_basic_usage(api_env: str, stack: LocalStack, db: psycopg.Connection[Any]) -> None:
    """Given the seed's "Basic Usage" example, when run, then the event is stored and a report generated."""
    from audit_trail import AuditEventType, ComplianceStandard, SecurityLevel
    from audit_trail.config import setup_production_audit_logger

    printed: list[str] = []

    async def main() -> None:
        # Initialize audit logger
        logger = await setup_production_audit_logger()

        try:
            # Log a file operation
            event = logger.create_audit_event(
                event_type=AuditEventType.FILE_UPLOAD,
                user_id="user123",
                action="upload_report",
                resource_path="/documents/quarterly_report.pdf",
                user_email="user@company.com",
                security_level=SecurityLevel.MEDIUM,
                compliance_tags=[ComplianceStandard.SOX],
                details={"file_size": 2048576, "department": "finance"},
            )

            await logger.log_event(event)

            # Generate compliance report
            from datetime import datetime, timedelta, timezone

            end_date = datetime.now(timezone.utc)  # noqa: UP017 - the seed's code as written
            start_date = end_date - timedelta(days=30)

            report = await logger.generate_compliance_report(
                standard=ComplianceStandard.GDPR, start_date=start_date, end_date=end_date
            )

            printed.append(f"Generated report with {report['report_metadata']['total_events']} events")

        finally:
            await logger.close()

    asyncio.run(main())

    assert printed[0].startswith("Generated report with ")
    row = db.execute(
        "select event_type, user_id, security_level, compliance_tags, details from audit.audit_events"
        " where action <> all(%s)",
        (list(TRAIL_ACTIONS),),
    ).fetchone()
    assert row == ("file_upload", "user123", "medium", ["sox"], {"file_size": 2048576, "department": "finance"})


def test_seed_convenience_functions_and_context_manager(
    api_env: str, stack: LocalStack, db: psycopg.Connection[Any]
) -> None:
    """Given "Using Convenience Functions" and "Context Manager Usage", then three events with their outcomes."""
    from audit_trail import AuditEventType, ComplianceStandard, SecurityLevel, log_file_operation, log_user_activity
    from audit_trail.config import setup_development_audit_logger

    async def process_customer_data() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        logger = await setup_development_audit_logger()
        # Log file operations
        await log_file_operation(
            audit_logger=logger,
            operation="upload",
            user_id="user123",
            file_path="/documents/important_file.pdf",
            user_email="user@company.com",
            ip_address="192.168.1.100",
            details={"file_size": 1024, "file_type": "pdf"},
            compliance_tags=[ComplianceStandard.GDPR, ComplianceStandard.SOX],
        )

        # Log user activities
        await log_user_activity(
            audit_logger=logger,
            activity="login",
            user_id="user123",
            user_email="user@company.com",
            ip_address="192.168.1.100",
        )

        async with logger.audit_context(
            user_id="user123",
            action="process_customer_data",
            resource_path="/data/customers/",
            event_type=AuditEventType.FILE_MODIFY,
            security_level=SecurityLevel.HIGH,
            compliance_tags=[ComplianceStandard.GDPR, ComplianceStandard.HIPAA],
        ) as event:
            # Your business logic here
            await process_customer_data()

            # Add custom details
            event.details["records_processed"] = 150
            event.details["data_classification"] = "customer_pii"

        await logger.close()

    asyncio.run(main())

    rows = db.execute(
        "select event_type, action, host(ip_address), compliance_tags, status, details from audit.audit_events "
        "where action <> all(%s) order by seq",
        (list(TRAIL_ACTIONS),),
    ).fetchall()
    assert [row[:5] for row in rows] == [
        ("file_upload", "file_upload", "192.168.1.100", ["gdpr", "sox"], "success"),
        ("user_login", "login", "192.168.1.100", [], "success"),
        ("file_modify", "process_customer_data", None, ["gdpr", "hipaa"], "success"),
    ]
    context_details = rows[2][5]
    assert context_details["records_processed"] == 150
    assert context_details["data_classification"] == "customer_pii"
    assert context_details["duration_ms"] >= 0
    assert chain_is_valid(stack)


def test_seed_environment_setups(api_env: str, db: psycopg.Connection[Any]) -> None:
    """Given "Environment-Specific Setup" (production, development, compliance), then each logger works."""
    from audit_trail import ComplianceStandard
    from audit_trail.config import (
        setup_compliance_audit_logger,
        setup_development_audit_logger,
        setup_production_audit_logger,
    )

    async def main() -> list[tuple[str, str]]:
        made = []
        for setup in (setup_production_audit_logger, setup_development_audit_logger):
            logger = await setup()
            made.append((logger.config.environment, logger.config.overflow_policy.value))
            await logger.log_event(logger.create_audit_event(event_type="system_event", user_id="ops", action="boot"))
            await logger.close()

        logger = await setup_compliance_audit_logger(
            [ComplianceStandard.GDPR, ComplianceStandard.HIPAA, ComplianceStandard.SOX]
        )
        await logger.log_event(logger.create_audit_event(event_type="file_access", user_id="dr", action="read"))
        await logger.close()
        return made

    made = asyncio.run(main())

    assert made == [("production", "block"), ("development", "drop")]
    query = "select compliance_tags from audit.audit_events where action <> all(%s) order by seq"
    tags = [row[0] for row in db.execute(query, (list(TRAIL_ACTIONS),)).fetchall()]
    assert tags == [[], [], ["gdpr", "hipaa", "sox"]]


def test_seed_streaming_callbacks_and_alert_handler(api_env: str, stack: LocalStack) -> None:
    """Given "Real-time Event Streaming" and "Alert Management", when a user fails to log in 5 times,
    then the event callbacks see each event and the alert handler gets the alert with its risk score."""
    from audit_trail import SecurityLevel
    from audit_trail.config import setup_production_audit_logger

    dashboard: list[str] = []
    security_alerts: list[str] = []
    webhooks: list[dict[str, Any]] = []
    handled: list[tuple[str, float]] = []

    async def send_to_monitoring_dashboard(event: Any) -> None:
        dashboard.append(event.event_id)

    async def send_security_alert(event: Any) -> None:
        security_alerts.append(event.event_id)

    async def send_webhook(url: str, data: dict[str, Any]) -> None:
        webhooks.append({"url": url, **data})

    async def send_emergency_alert(event: Any, analysis: dict[str, Any]) -> None:
        handled.append(("emergency", analysis["risk_score"]))

    async def lock_user_account(user_id: str) -> None:
        return None

    async def send_security_team_notification(event: Any, analysis: dict[str, Any]) -> None:
        handled.append(("team", analysis["risk_score"]))

    async def increase_monitoring(user_id: str) -> None:
        return None

    async def my_streaming_callback(event: Any) -> None:
        print(f"Real-time event: {event.event_type.value} - {event.action}")

        # Send to monitoring systems
        await send_to_monitoring_dashboard(event)

        # Send alerts for critical events
        if event.security_level == SecurityLevel.CRITICAL:
            await send_security_alert(event)

    async def webhook_callback(event: Any) -> None:
        if event.security_level in [SecurityLevel.HIGH, SecurityLevel.CRITICAL]:
            webhook_data = {
                "alert_type": "security_event",
                "event_id": event.event_id,
                "user_id": event.user_id,
                "action": event.action,
                "security_level": event.security_level.value,
                "timestamp": event.timestamp.isoformat(),
            }

            await send_webhook("https://alerts.company.com/security", webhook_data)

    async def handle_security_alert(event: Any, analysis: dict[str, Any]) -> None:
        risk_score = analysis["risk_score"]

        if risk_score >= 9.0:
            await send_emergency_alert(event, analysis)
            await lock_user_account(event.user_id)
        elif risk_score >= 7.0:
            await send_security_team_notification(event, analysis)
            await increase_monitoring(event.user_id)
        else:
            handled.append(("noted", risk_score))

    async def main() -> list[str]:
        logger = await setup_production_audit_logger(alert_poll_interval_seconds=0.2, flush_interval_seconds=0.05)
        logger.register_streaming_callback(my_streaming_callback)
        logger.register_streaming_callback(webhook_callback)
        logger.register_streaming_callback(handle_security_alert)
        sent = []
        for attempt in range(5):
            event = logger.create_audit_event(
                event_type="user_login",
                user_id="mallory",
                action="login",
                status="failure",
                ip_address="203.0.113.9",
                security_level=SecurityLevel.CRITICAL if attempt == 4 else SecurityLevel.HIGH,
            )
            await logger.log_event(event)
            sent.append(event.event_id)
        assert await logger.flush(timeout=60), logger.stats  # a bounded wait: a failure, not a hang
        assert await asyncio.to_thread(wait_until, lambda: bool(handled))
        await logger.close()
        return sent

    sent = asyncio.run(main())

    assert dashboard == sent
    assert security_alerts == [sent[-1]]
    assert [hook["event_id"] for hook in webhooks] == sent
    assert webhooks[0]["url"] == "https://alerts.company.com/security"
    assert webhooks[0]["security_level"] == "high"
    assert len(handled) == 1
    assert handled[0][1] >= 0


def test_seed_compliance_reports(api_env: str, stack: LocalStack) -> None:
    """Given "Compliance Reporting" (GDPR for one user, HIPAA, SOX), then each report answers with its metadata."""
    from audit_trail import ComplianceStandard
    from audit_trail.config import setup_production_audit_logger

    async def main() -> list[dict[str, Any]]:
        logger = await setup_production_audit_logger()
        await logger.log_event(
            logger.create_audit_event(
                event_type="file_access", user_id="specific_user", action="read", compliance_tags=["gdpr", "hipaa"]
            )
        )
        end_date = datetime.now(UTC)
        start_date = end_date - timedelta(days=30)
        reports = [
            await logger.generate_compliance_report(
                standard=ComplianceStandard.GDPR,
                start_date=start_date,
                end_date=end_date,
                user_id="specific_user",  # Optional
            )
        ]
        for standard in (ComplianceStandard.HIPAA, ComplianceStandard.SOX):
            reports.append(
                await logger.generate_compliance_report(standard=standard, start_date=start_date, end_date=end_date)
            )
        await logger.close()
        return reports

    reports = asyncio.run(main())

    assert [report["report_metadata"]["standard"] for report in reports] == ["gdpr", "hipaa", "sox"]
    assert all(report["download_url"] for report in reports)
    assert reports[0]["user_scope"]["user_id"] == "specific_user"
    assert reports[0]["user_scope"]["total_events"] == 1


def test_seed_troubleshooting_connection_check(api_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given "Database Connection Issues", then initialize() succeeds against the API and fails clearly without it."""
    from audit_trail.config import AuditConfig
    from audit_trail.logger import AuditLogger

    printed: list[str] = []

    async def check(logger: AuditLogger) -> None:
        try:
            await logger.initialize()
            printed.append("Database connection successful")
        except Exception as e:
            printed.append(f"Database connection failed: {e}")
        await logger.close()

    asyncio.run(check(AuditLogger(AuditConfig())))
    asyncio.run(check(AuditLogger(AuditConfig(api_url="http://127.0.0.1:9", request_timeout_seconds=2))))

    assert printed[0] == "Database connection successful"
    assert printed[1].startswith("Database connection failed: 503 unreachable: cannot reach the API")


# --- the API going down mid-stream ------------------------------------------------------------------


def test_api_stopped_mid_stream_loses_nothing_with_block_policy(
    stack: LocalStack, writer_token: str, db: psycopg.Connection[Any]
) -> None:
    """Given events flowing, when the API stops (connections refused) and comes back, then every event
    logged is stored exactly once, in the order logged, and the chain verifies."""
    from audit_trail import AuditConfig, AuditLogger

    logger = AuditLogger(
        AuditConfig(
            api_url=stack.api_url,
            api_key=writer_token,
            batch_size=25,
            flush_interval_seconds=0.05,
            retry_base_seconds=0.05,
            retry_max_seconds=0.3,
            request_timeout_seconds=3,
            overflow_policy="block",
        )
    )
    logger.initialize_sync()
    sent: list[str] = []

    def log(count: int) -> None:
        for n in range(count):
            event = logger.create_audit_event(
                event_type="file_download", user_id=f"user-{n % 7}", action="download", resource_path=f"/f/{n}"
            )
            assert logger.log_event_sync(event)
            sent.append(event.event_id)

    log(100)
    assert logger.flush_sync(timeout=30)
    stack.pause_api()  # connections now refused

    log(300)  # accepted into the buffer while the API is down
    assert wait_until(lambda: logger.stats.retries >= 2)
    assert len(logger.pending_events()) > 0

    stack.resume_api()
    assert logger.flush_sync(timeout=60)
    assert logger.close_sync() == 0

    assert stored_ids(db) == sent
    assert logger.stats.delivered + logger.stats.duplicates == 400
    assert logger.stats.dropped == 0
    assert chain_is_valid(stack)


def test_database_outage_behind_the_api_with_drop_policy(
    stack: LocalStack, writer_token: str, db: psycopg.Connection[Any], pg_server_url: str
) -> None:
    """Given the API answering 503 (its database refuses connections) and a small buffer with the drop
    policy, then exactly the events log_event kept are stored once the database is back, the rest counted."""
    from audit_trail import AuditConfig, AuditLogger

    logger = AuditLogger(
        AuditConfig(
            api_url=stack.api_url,
            api_key=writer_token,
            batch_size=10,
            buffer_limit=40,
            flush_interval_seconds=0.05,
            retry_base_seconds=0.05,
            retry_max_seconds=0.3,
            overflow_policy="drop",
        )
    )
    logger.initialize_sync()
    dbname = db.info.dbname
    kept: list[str] = []
    outcomes: list[bool] = []

    def log(count: int) -> None:
        for n in range(count):
            event = logger.create_audit_event(event_type="file_access", user_id=f"u{n % 5}", action="read")
            accepted = logger.log_event_sync(event)
            outcomes.append(accepted)
            if accepted:
                kept.append(event.event_id)

    log(20)
    assert logger.flush_sync(timeout=30)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        # The API's connection is cut and it cannot open another: every POST /events answers 503.
        admin.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(dbname)))
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (dbname,),
        )
        try:
            log(200)
            assert wait_until(lambda: logger.stats.retries >= 2), logger.stats
            assert logger.stats.last_error is not None
            # 503 from the handler, or from the gateway when the authorizer cannot look up the writer token
            # (AUTHORIZER_FAILURE, mapped to 503 in template.yaml): an outage the SDK retries.
            assert logger.stats.last_error[:3] == "503", logger.stats.last_error
        finally:
            admin.execute(sql.SQL("alter database {} allow_connections true").format(sql.Identifier(dbname)))
    db = psycopg.connect(stack.database_url, autocommit=True)  # the fixture's connection was cut too

    assert logger.flush_sync(timeout=60)
    assert logger.close_sync() == 0

    assert stored_ids(db) == kept
    assert logger.stats.dropped == outcomes.count(False)
    assert logger.stats.dropped > 0
    assert len(kept) >= 20 + 40 - 10  # the buffer's room at the outage, less a batch possibly in flight
    assert chain_is_valid(stack)


def test_two_loggers_replaying_the_same_events_store_them_once(
    stack: LocalStack, writer_token: str, db: psycopg.Connection[Any]
) -> None:
    """Given the same events sent twice (a retry from another process), then the API answers duplicate."""
    from audit_trail import AuditConfig, AuditLogger

    first = AuditLogger(AuditConfig(api_url=stack.api_url, api_key=writer_token, flush_interval_seconds=0.05))
    second = AuditLogger(AuditConfig(api_url=stack.api_url, api_key=writer_token, flush_interval_seconds=0.05))
    events = [
        first.create_audit_event(event_type="file_share", user_id="u", action="share", event_id=f"app-{uuid.uuid4()}")
        for _ in range(5)
    ]
    for event in events:
        first.log_event_sync(event)
    first.close_sync()
    for event in events:
        second.log_event_sync(event)
    second.close_sync()

    assert stored_ids(db) == [event.event_id for event in events]
    assert first.stats.delivered == 5
    assert second.stats.duplicates == 5
    assert second.stats.conflicts == 0


# --- a token the API refuses -------------------------------------------------------------------------


def test_a_refused_token_keeps_the_events_and_says_which_setting_to_check(
    stack: LocalStack, writer_token: str, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Given a writer token the API does not know and the block policy, when more events are logged than the
    buffer holds, then none is stored or lost: one ERROR names 401 and api_key/AUDIT_API_KEY, log_event
    raises BufferFullError at once instead of blocking, close() hands back every accepted event, and a
    logger with the right token stores them."""
    from audit_trail import AuditConfig, AuditLogger, AuthenticationError, BufferFullError

    if stack.jwt_secret is None:
        pytest.skip("this template has no authorizer yet: the API accepts any token")
    unknown = "atw_" + "q" * 12 + "_" + "x" * 43
    config = {"flush_interval_seconds": 0.05, "retry_base_seconds": 0.05, "retry_max_seconds": 0.2}
    logger = AuditLogger(
        AuditConfig(
            api_url=stack.api_url,
            api_key=unknown,
            buffer_limit=20,
            batch_size=10,
            block_timeout_seconds=120,
            overflow_policy="block",
            **config,
        )
    )
    caplog.set_level("INFO", logger="audit_trail")
    with pytest.raises(AuthenticationError) as refused:
        logger.initialize_sync()
    assert refused.value.status == 401
    events = [logger.create_audit_event(event_type="file_access", user_id="u", action="read") for _ in range(20)]
    for event in events:
        assert logger.log_event_sync(event)
    assert wait_until(lambda: logger.stats.retries >= 3 and logger.stats.credentials_refused is not None)

    with pytest.raises(BufferFullError, match="refuses our credentials"):
        logger.log_event_sync(logger.create_audit_event(event_type="file_access", user_id="u", action="read"))
    assert logger.close_sync(timeout=0.5) == 20

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "credentials" in r.getMessage()]
    assert len([m for m in errors if m.startswith("audit API refused our credentials")]) == 1
    assert "401" in errors[0]
    assert "check api_key/AUDIT_API_KEY" in errors[0]
    assert stored_ids(db) == []
    kept = logger.pending_events()
    assert [event.event_id for event in kept] == [event.event_id for event in events]

    with AuditLogger(AuditConfig(api_url=stack.api_url, api_key=writer_token, **config)) as fixed:
        for event in kept:
            fixed.log_event_sync(event)
    assert stored_ids(db) == [event.event_id for event in events]


def test_reads_with_the_writer_token_are_refused_with_the_setting_to_check(
    stack: LocalStack, writer_token: str
) -> None:
    """Given only a writer token (no read token), when the app reads events, then the API refuses (403: writers
    may only send) and the error names the setting to check."""
    from audit_trail import AuditConfig, AuditLogger, AuthenticationError

    if stack.jwt_secret is None:
        pytest.skip("this template has no authorizer yet: the API accepts any token")
    logger = AuditLogger(AuditConfig(api_url=stack.api_url, api_key=writer_token))
    try:
        with pytest.raises(AuthenticationError) as refused:
            logger.get_recent_events_sync(limit=5)
    finally:
        logger.close_sync()

    assert refused.value.status == 403
    assert "api_key/AUDIT_API_KEY" in str(refused.value)
