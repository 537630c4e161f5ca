"""Detection on the real database and moto: rules, windows, dedup, sweep, publishing, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from audit_common.observability import logger
from audit_common.settings import get_settings
from detect import handler as detect_handler
from detect.handler import lambda_handler
from detect.sweep import sweep
from tests.support.apigw import ApiResponse, invoke, proxy_event
from tests.support.aws import WEBHOOK_SECRET as SECRET
from tests.support.aws import AlertSinks
from tests.support.events import make_event, one

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def event(n: int, *, at: datetime, **fields: Any) -> dict[str, Any]:
    return make_event(n, event_id=f"evt-{uuid.uuid4()}", timestamp=at.isoformat(), **fields)


def failed_login(n: int, *, user: str, ip: str, at: datetime) -> dict[str, Any]:
    return event(
        n,
        at=at,
        event_type="user_login",
        status="failure",
        user_id=user,
        ip_address=ip,
        action="login",
        security_level="medium",
        details={"reason": "bad_password"},
    )


def store(transport: PostgresTransport, events: list[dict[str, Any]]) -> list[int]:
    result = event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])
    return [r.seq for r in result.results]


def webhook_body(
    seq: int, *, kind: str = "INSERT", table: str = "audit_events", schema: str = "audit"
) -> dict[str, Any]:
    return {"type": kind, "table": table, "schema": schema, "record": {"seq": seq, "event_id": "x"}, "old_record": None}


def call_webhook(body: Any, *, secret: str | None = SECRET, raw: str | None = None) -> ApiResponse:
    headers = {"X-Audit-Webhook-Secret": secret} if secret is not None else {}
    return invoke(lambda_handler, proxy_event("POST", "/webhooks/supabase", body=body, raw_body=raw, headers=headers))


def deliver(seqs: list[int], times: int = 1) -> None:
    for _ in range(times):
        for seq in seqs:
            response = call_webhook(webhook_body(seq))
            assert response.status == 200, response.body


def alerts(db: psycopg.Connection[Any], rule: str | None = None) -> list[tuple[Any, ...]]:
    query = "select rule, alert_key, event_count, severity, risk_score from audit.security_alerts"
    if rule:
        return db.execute(query + " where rule = %s", (rule,)).fetchall()
    return db.execute(query).fetchall()


def scenario(rule: str, count: int) -> list[dict[str, Any]]:
    """`count` events that feed `rule`, 20 seconds apart, inside its window."""
    at = [T0 + timedelta(seconds=20 * i) for i in range(count)]
    if rule == "multiple_failed_logins":
        return [failed_login(i, user="victim", ip=f"198.51.100.{i + 1}", at=at[i]) for i in range(count)]
    if rule == "brute_force":
        return [failed_login(i, user=f"sprayed-{i}", ip="203.0.113.66", at=at[i]) for i in range(count)]
    if rule == "unusual_file_access":
        at = [T0 + timedelta(seconds=5 * i) for i in range(count)]
        return [
            event(i, at=at[i], event_type="file_access", status="success", user_id="collector", ip_address="10.1.1.1")
            for i in range(count)
        ]
    if rule == "data_exfiltration":
        at = [T0 + timedelta(seconds=60 * i) for i in range(count)]
        return [
            event(i, at=at[i], event_type="file_download", status="success", user_id="insider", ip_address="10.2.2.2")
            for i in range(count)
        ]
    raise AssertionError(rule)


THRESHOLDS = {"multiple_failed_logins": 5, "brute_force": 20, "unusual_file_access": 100, "data_exfiltration": 50}


@pytest.mark.usefixtures("sinks")
class TestRules:
    @pytest.mark.parametrize("rule", list(THRESHOLDS))
    def test_threshold_minus_one_raises_nothing(
        self, rule: str, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given one event fewer than the threshold, When each webhook arrives, Then no alert for the rule."""
        deliver(store(transport, scenario(rule, THRESHOLDS[rule] - 1)))
        assert alerts(db, rule) == []

    @pytest.mark.parametrize("rule", list(THRESHOLDS))
    def test_threshold_raises_exactly_one_even_when_delivered_three_times(
        self, rule: str, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given threshold events, When every webhook is delivered three times, Then exactly one alert."""
        seqs = store(transport, scenario(rule, THRESHOLDS[rule]))
        deliver(seqs, times=3)

        found = alerts(db, rule)
        assert len(found) == 1
        assert found[0][2] == THRESHOLDS[rule]

    def test_alerts_are_raised_with_info_logging_as_deployed(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given the template's INFO log level, When a webhook raises an alert, Then 200 and the log says so.

        A log `extra` key that collides with a LogRecord attribute (`created`) raised a KeyError only
        at INFO, so the webhook answered 500 in Lambda while every test at WARNING passed.
        """
        previous = logger.log_level
        logger.setLevel("INFO")
        try:
            deliver(store(transport, scenario("multiple_failed_logins", THRESHOLDS["multiple_failed_logins"])))
        finally:
            logger.setLevel(previous)
        assert len(alerts(db, "multiple_failed_logins")) == 1

    def test_spraying_one_ip_over_twenty_users_is_brute_force_only(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given 20 failed logins from one IP over 20 users, When analysed, Then one brute_force and nothing else."""
        deliver(store(transport, scenario("brute_force", 20)))
        found = alerts(db)
        assert [(f[0], f[1]) for f in found] == [("brute_force", "203.0.113.66")]
        assert found[0][3] in ("high", "critical")

    def test_events_outside_the_window_do_not_count(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given 4 failures and a fifth 16 minutes after the first, When analysed, Then no alert (15-minute window)."""
        events = [failed_login(i, user="slow", ip="198.51.100.9", at=T0 + timedelta(seconds=i)) for i in range(4)]
        events.append(failed_login(9, user="slow", ip="198.51.100.9", at=T0 + timedelta(minutes=16)))
        deliver(store(transport, events))
        assert alerts(db) == []

    def test_admin_grant_is_privilege_escalation_and_a_viewer_grant_is_not(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a grant of 'viewer' and one of 'Admin', When analysed, Then one privilege_escalation alert."""
        grants = [
            event(
                1,
                at=T0,
                event_type="permission_change",
                user_id="mallory",
                action="grant_role",
                details={"target_user": "mallory-alt", "role": "viewer"},
            ),
            event(
                2,
                at=T0 + timedelta(seconds=5),
                event_type="permission_change",
                user_id="mallory",
                action="grant_role",
                details={"target_user": "mallory-alt", "role": "Admin"},
            ),
        ]
        deliver(store(transport, grants), times=3)
        found = alerts(db)
        assert [(f[0], f[1], f[2]) for f in found] == [("privilege_escalation", "mallory", 1)]

    def test_disabling_a_rule_is_configuration_not_code(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given the rule's threshold lowered to 3 in the table, When 3 failures arrive, Then it fires."""
        db.execute("update audit.detection_rules set threshold = 3 where name = 'multiple_failed_logins'")
        deliver(store(transport, scenario("multiple_failed_logins", 3)))
        assert len(alerts(db, "multiple_failed_logins")) == 1
        db.execute("update audit.detection_rules set enabled = false where name = 'multiple_failed_logins'")
        deliver(store(transport, [failed_login(50 + i, user="other", ip="198.51.100.77", at=T0) for i in range(3)]))
        assert len(alerts(db, "multiple_failed_logins")) == 1


class TestPublishing:
    def test_high_alerts_reach_sns_and_every_alert_reaches_the_bus(
        self, sinks: AlertSinks, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a brute force (high) and a failed-login burst (medium), When analysed, Then SNS gets one, bus both."""
        deliver(store(transport, scenario("brute_force", 20)))
        low_risk = [
            event(
                i,
                at=T0 + timedelta(seconds=i),
                event_type="user_login",
                status="failure",
                user_id="forgetful",
                ip_address="192.0.2.10",
                security_level="low",
            )
            for i in range(5)
        ]
        deliver(store(transport, low_risk), times=2)

        severities = {rule: severity for rule, _k, _c, severity, _s in alerts(db)}
        paged = [r for r, s in severities.items() if s in ("high", "critical")]
        sns = sinks.sns_messages()
        bus = sinks.bus_events()
        assert sorted(m["MessageAttributes"]["rule"]["Value"] for m in sns) == sorted(paged)
        assert sorted(e["detail"]["rule"] for e in bus) == sorted(severities)
        assert all(e["source"] == "audit-trail.detect" and e["detail-type"] == "Security Alert" for e in bus)
        brute = next(m for m in sns if m["MessageAttributes"]["rule"]["Value"] == "brute_force")
        assert "203.0.113.66" in brute["Subject"]
        assert "attack.mitre.org/techniques/T1110/" in brute["Message"]
        assert "PATCH /alerts/" in brute["Message"]
        assert one(db, "select count(*) from audit.security_alerts where published_at is null") == (0,)

    def test_publish_failure_keeps_the_alert_queued_for_the_sweep(
        self,
        sinks: AlertSinks,
        transport: PostgresTransport,
        db: psycopg.Connection[Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Given EventBridge failing, When an alert is raised, Then it stays unpublished and the sweep sends it."""

        def broken(*_args: Any, **_kwargs: Any) -> None:
            raise ConnectionError("eventbridge unreachable")

        publisher = detect_handler.publisher()
        monkeypatch.setattr(publisher, "publish", broken)
        deliver(store(transport, scenario("brute_force", 20)))
        assert one(db, "select count(*) from audit.security_alerts where published_at is null") == (1,)
        assert sinks.bus_events() == []

        monkeypatch.undo()
        monkeypatch.setenv("AUDIT_WEBHOOK_SECRET", SECRET)
        result = sweep(transport, detect_handler.publisher(), batch=100, budget_seconds=30)

        assert result.published == 1
        assert [e["detail"]["rule"] for e in sinks.bus_events()] == ["brute_force"]


class TestSweep:
    def test_dropped_webhooks_are_caught_by_the_sweep(
        self, sinks: AlertSinks, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given 5 failed logins whose webhooks never arrived, When the sweep runs, Then the alert is raised once."""
        seqs = store(transport, scenario("multiple_failed_logins", 5))
        deliver(seqs[:2])  # some webhooks did arrive

        first = sweep(transport, detect_handler.publisher(), batch=2, budget_seconds=30)
        second = sweep(transport, detect_handler.publisher(), batch=2, budget_seconds=30)

        assert (first.analysed, first.complete, first.watermark) == (3, True, seqs[-1])
        assert (second.analysed, second.alerts_created) == (0, 0)
        assert len(alerts(db, "multiple_failed_logins")) == 1
        assert len(sinks.bus_events()) == 1
        assert one(db, "select watermark from audit.detection_state") == (seqs[-1],)

    def test_watermark_cannot_pass_an_unanalysed_event(self, transport: PostgresTransport) -> None:
        """Given an event nobody analysed, When the watermark is moved past it, Then the database refuses."""
        seqs = store(transport, scenario("multiple_failed_logins", 2))
        from audit_common.errors import InvalidInput

        with pytest.raises(InvalidInput, match="not been analysed"):
            transport.call("advance_detection_watermark", {"p_seq": seqs[-1]})


def test_window_queries_use_the_detection_indexes(transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
    """Given 20,000 events of 200 users, When a rule's window query is planned, Then it is an index-only range scan."""
    start_at = T0 - timedelta(hours=6)
    events = [
        event(
            i,
            at=start_at + timedelta(seconds=i),
            event_type=["user_login", "file_access"][i % 2],
            user_id=f"u{i % 200}",
            ip_address=f"10.9.{i % 250}.{i % 200 + 1}",
            status=["success", "failure"][i % 3 == 0],
        )
        for i in range(20_000)
    ]
    for start in range(0, len(events), 1000):
        store(transport, events[start : start + 1000])
    db.execute("vacuum analyze audit.audit_events")
    window = (start_at, start_at + timedelta(minutes=15))

    by_user = db.execute(
        "explain select count(*) from audit.window_events_by_user('u7', '{user_login}', 'failure', %s, %s)", window
    ).fetchall()
    by_ip = db.execute(
        "explain select count(*) from audit.window_events_by_ip('10.9.7.8', '{user_login}', 'failure', %s, %s)", window
    ).fetchall()

    user_plan = "\n".join(r[0] for r in by_user)
    ip_plan = "\n".join(r[0] for r in by_ip)
    assert "audit_events_detect_user_idx" in user_plan and "Seq Scan" not in user_plan, user_plan
    assert "audit_events_detect_ip_idx" in ip_plan and "Seq Scan" not in ip_plan, ip_plan


BAD_CALLS: list[tuple[str, dict[str, Any], int, str]] = [
    ("no-secret", {"body": webhook_body(1), "secret": None}, 401, "missing"),
    ("wrong-secret", {"body": webhook_body(1), "secret": "not-the-secret-at-all"}, 401, "wrong"),
    ("secret-prefix", {"body": webhook_body(1), "secret": SECRET[:-1]}, 401, "wrong"),
    ("not-json", {"raw": "{oops"}, 400, "JSON"),
    ("missing-type", {"body": {k: v for k, v in webhook_body(1).items() if k != "type"}}, 422, "type"),
    ("missing-record", {"body": {k: v for k, v in webhook_body(1).items() if k != "record"}}, 422, "record"),
    ("record-not-object", {"body": {**webhook_body(1), "record": "seq=1"}}, 422, "record"),
    ("record-without-seq", {"body": {**webhook_body(1), "record": {"event_id": "x"}}}, 422, "record.seq"),
    ("seq-not-integer", {"body": {**webhook_body(1), "record": {"seq": "1; drop"}}}, 422, "record.seq"),
    ("body-is-list", {"body": [webhook_body(1)]}, 422, "body"),
]


@pytest.mark.usefixtures("sinks")
@pytest.mark.parametrize(("kwargs", "status", "fragment"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_webhook_calls_are_refused_and_store_nothing(
    kwargs: dict[str, Any], status: int, fragment: str, transport: PostgresTransport, db: psycopg.Connection[Any]
) -> None:
    """Given an unsigned, wrongly signed or malformed call, When it arrives, Then the right status and no state."""
    store(transport, scenario("multiple_failed_logins", 5))

    response = call_webhook(kwargs.get("body"), secret=kwargs.get("secret", SECRET), raw=kwargs.get("raw"))

    assert response.status == status, response.body
    text = response.body["error"]["message"] + orjson.dumps(response.body.get("errors", [])).decode()
    assert fragment in text
    assert alerts(db) == []
    assert one(db, "select count(*) from audit.detection_log") == (0,)


@pytest.mark.usefixtures("sinks")
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (webhook_body(1, kind="UPDATE"), "UPDATE"),
        (webhook_body(1, kind="DELETE"), "DELETE"),
        (webhook_body(1, table="profiles", schema="public"), "public.profiles"),
    ],
)
def test_other_operations_and_tables_are_ignored_with_a_reason(
    body: dict[str, Any], reason: str, db: psycopg.Connection[Any]
) -> None:
    """Given an UPDATE, DELETE or another table, When delivered, Then 200 ignored, naming why."""
    response = call_webhook(body)
    assert response.status == 200
    assert response.body["status"] == "ignored" and reason in response.body["reason"]
    assert one(db, "select count(*) from audit.detection_log") == (0,)


def test_missing_secret_configuration_fails_closed(configured: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no webhook secret configured, When a call arrives, Then 503, never accepted unauthenticated."""
    monkeypatch.delenv("AUDIT_WEBHOOK_SECRET", raising=False)
    get_settings.cache_clear()
    response = call_webhook(webhook_body(1))
    assert response.status == 503


@pytest.mark.usefixtures("sinks")
class TestAlertRoutes:
    @pytest.fixture
    def alert_id(self, transport: PostgresTransport) -> str:
        deliver(store(transport, scenario("brute_force", 20)))
        page = invoke(lambda_handler, proxy_event("GET", "/alerts?status=open")).body
        return str(page["alerts"][0]["alert_id"])

    def test_list_filters_by_status_severity_rule_and_key(self, alert_id: str) -> None:
        """Given a brute-force alert, When listing with filters, Then it is found by each and not by others."""
        assert len(invoke(lambda_handler, proxy_event("GET", "/alerts?rule=brute_force")).body["alerts"]) == 1
        assert len(invoke(lambda_handler, proxy_event("GET", "/alerts?ip_address=203.0.113.66")).body["alerts"]) == 1
        assert invoke(lambda_handler, proxy_event("GET", "/alerts?status=resolved")).body["alerts"] == []
        assert invoke(lambda_handler, proxy_event("GET", "/alerts?severity=low")).body["alerts"] == []
        bad = invoke(lambda_handler, proxy_event("GET", "/alerts?severity=urgent"))
        assert bad.status == 422 and bad.body["errors"][0]["field"] == "severity"

    def test_acknowledge_then_resolve_records_who_and_why(self, alert_id: str, db: psycopg.Connection[Any]) -> None:
        """Given an open alert, When acknowledged then resolved, Then status, note and actor are stored."""
        path = f"/alerts/{alert_id}"
        ack = invoke(
            lambda_handler,
            proxy_event(
                "PATCH",
                path,
                resource="/alerts/{alert_id}",
                path_parameters={"alert_id": alert_id},
                body={"status": "acknowledged", "note": "investigating"},
            ),
        )
        assert ack.status == 200 and ack.body["status"] == "acknowledged"
        done = invoke(
            lambda_handler,
            proxy_event(
                "PATCH",
                path,
                resource="/alerts/{alert_id}",
                path_parameters={"alert_id": alert_id},
                body={"status": "resolved"},
            ),
        )
        assert done.body["status"] == "resolved"
        row = one(db, "select status, status_note, status_changed_by from audit.security_alerts")
        assert row[0] == "resolved" and row[1] == "investigating" and row[2] == "admin:tests"

    @pytest.mark.parametrize(
        ("alert", "body", "status"),
        [
            ("00000000-0000-4000-8000-000000000000", {"status": "resolved"}, 404),
            ("not-a-uuid", {"status": "resolved"}, 422),
            (None, {"status": "closed"}, 422),
            (None, {"status": "resolved", "extra": 1}, 422),
        ],
    )
    def test_bad_patches_are_refused(self, alert_id: str, alert: str | None, body: dict[str, Any], status: int) -> None:
        """Given an unknown alert, a bad id or a bad body, When patched, Then 404/422 and nothing changes."""
        target = alert or alert_id
        response = invoke(
            lambda_handler,
            proxy_event(
                "PATCH",
                f"/alerts/{target}",
                resource="/alerts/{alert_id}",
                path_parameters={"alert_id": target},
                body=body,
            ),
        )
        assert response.status == status, response.body
        listed = invoke(lambda_handler, proxy_event("GET", "/alerts")).body["alerts"]
        assert [a["status"] for a in listed] == ["open"]
