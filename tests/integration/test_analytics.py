"""GET /analytics on the real database: a seeded Monday with an attack, asserted value by value.

The alerts are raised by the real detect handler (webhook per event), so the alert figures are compared
with what the detection stored; every other figure is known from the scenario itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from analytics.config import get_analytics_settings
from analytics.handler import lambda_handler
from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from detect.handler import lambda_handler as detect_handler
from tests.support.apigw import ApiResponse, invoke, proxy_event
from tests.support.aws import WEBHOOK_SECRET, AlertSinks
from tests.support.events import make_event, one

ROOT = Path(__file__).resolve().parents[2]
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday: working hours are 08:00-18:00 UTC
PERIOD = "from=2026-11-23T00:00:00Z&to=2026-11-24T00:00:00Z&bucket=1h"


def at(hours: float, day: datetime = MONDAY) -> datetime:
    return day + timedelta(hours=hours)


def event(n: int, when: datetime, user: str, ip: str, event_type: str, **fields: Any) -> dict[str, Any]:
    base = make_event(
        n,
        event_id=f"an-{n}-{uuid.uuid4().hex[:8]}",
        timestamp=when.isoformat(),
        user_id=user,
        ip_address=ip,
        event_type=event_type,
        status="success",
        compliance_tags=[],
        security_level="low",
        details={},
    )
    base.update(fields)
    return base


def scenario() -> list[dict[str, Any]]:
    """Friday history, then a Monday: office work, a password-guessing burst at 02:00, an admin grant at 23:00."""
    failure = {"status": "failure", "action": "login", "details": {"reason": "bad_password"}}
    events = [
        # history: alice already used 10.0.0.1
        event(0, at(10, MONDAY - timedelta(days=3)), "alice", "10.0.0.1", "user_login", action="login"),
        # outside the period on both sides (the end is exclusive)
        event(1, MONDAY - timedelta(seconds=1), "carol", "10.0.0.50", "file_access"),
        event(2, at(24), "carol", "10.0.0.50", "file_access"),
    ]
    # 02:00-02:03 (after hours): six failed logins for "victim" from one address -> multiple_failed_logins
    events += [
        event(10 + i, at(2) + timedelta(seconds=30 * i), "victim", "203.0.113.7", "user_login", **failure)
        for i in range(6)
    ]
    # 09:00-09:10: alice at her usual address
    events += [event(20 + i, at(9) + timedelta(minutes=5 * i), "alice", "10.0.0.1", "file_access") for i in range(3)]
    # 10:00: alice from a new address
    events.append(event(30, at(10), "alice", "10.0.0.2", "file_download"))
    # 12:30: bob's upload fails; 23:00 (after hours): bob grants himself admin -> privilege_escalation
    events.append(event(31, at(12.5), "bob", "10.0.0.9", "file_upload", status="failure"))
    events.append(
        event(
            32,
            at(23),
            "bob",
            "10.0.0.9",
            "permission_change",
            action="grant_role",
            details={"role": "admin", "target_user": "bob"},
            security_level="high",
        )
    )
    return events


def store(transport: PostgresTransport, events: list[dict[str, Any]]) -> list[int]:
    result = event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])
    return [r.seq for r in result.results]


def analyse(seqs: list[int]) -> None:
    """Deliver the database webhook for each event, as pg_net would."""
    for seq in seqs:
        body = {
            "type": "INSERT",
            "table": "audit_events",
            "schema": "audit",
            "record": {"seq": seq, "event_id": "x"},
            "old_record": None,
        }
        response = invoke(
            detect_handler,
            proxy_event("POST", "/webhooks/supabase", body=body, headers={"X-Audit-Webhook-Secret": WEBHOOK_SECRET}),
        )
        assert response.status == 200, response.body


def get(query: str = PERIOD) -> ApiResponse:
    return invoke(lambda_handler, proxy_event("GET", f"/analytics?{query}" if query else "/analytics"))


@pytest.fixture
def analytics_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Analytics settings read afresh from the environment the test sets."""
    get_analytics_settings.cache_clear()
    yield monkeypatch
    get_analytics_settings.cache_clear()


@pytest.fixture
def seeded(sinks: AlertSinks, transport: PostgresTransport, analytics_env: pytest.MonkeyPatch) -> list[int]:
    """The scenario stored and analysed by the real detect handler; returns the seqs."""
    seqs = store(transport, scenario())
    analyse(seqs)
    return seqs


def chain_head(db: psycopg.Connection[Any]) -> int:
    """The newest seq: each successful GET /analytics appends its own access record after answering."""
    return int(one(db, "select coalesce(max(seq), 0) from audit.audit_events")[0])


def by_hour(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(b["start"][11:13]): b for b in body["buckets"]}


def test_events_per_bucket_by_type_and_outcome(seeded: list[int]) -> None:
    """Given the seeded Monday, when the day is asked for in hours, then each hour holds exactly its events."""
    response = get()

    assert response.status == 200, response.body
    body = response.body
    assert (body["from"], body["to"], body["bucket"], body["bucket_seconds"]) == (
        "2026-11-23T00:00:00.000000Z",
        "2026-11-24T00:00:00.000000Z",
        "1h",
        3600,
    )
    assert [b["start"] for b in body["buckets"]] == [f"2026-11-23T{h:02d}:00:00.000000Z" for h in range(24)]
    hours = by_hour(body)
    assert {h: b["events"] for h, b in hours.items() if b["events"]} == {2: 6, 9: 3, 10: 1, 12: 1, 23: 1}
    assert hours[2]["by_type"] == {"user_login": {"success": 0, "failure": 6}}
    assert (hours[2]["failures"], hours[2]["failed_logins"], hours[2]["after_hours"]) == (6, 6, 6)
    assert hours[9]["by_type"] == {"file_access": {"success": 3, "failure": 0}}
    assert (hours[9]["failures"], hours[9]["after_hours"]) == (0, 0)
    assert hours[12]["by_type"] == {"file_upload": {"success": 0, "failure": 1}}
    assert (hours[12]["failures"], hours[12]["failed_logins"]) == (1, 0)
    assert (hours[23]["by_type"], hours[23]["after_hours"]) == ({"permission_change": {"success": 1, "failure": 0}}, 1)
    assert hours[5] == {
        "start": "2026-11-23T05:00:00.000000Z",
        "events": 0,
        "failures": 0,
        "failed_logins": 0,
        "after_hours": 0,
        "by_type": {},
    }
    assert body["totals"] == {
        "events": 12,
        "failures": 7,
        "failed_logins": 6,
        "after_hours": 7,
        "by_type": {
            "user_login": {"success": 0, "failure": 6},
            "file_access": {"success": 3, "failure": 0},
            "file_download": {"success": 1, "failure": 0},
            "file_upload": {"success": 0, "failure": 1},
            "permission_change": {"success": 1, "failure": 0},
        },
    }
    assert body["after_hours"] == {
        "workday_start": 8,
        "workday_end": 18,
        "workdays": [1, 2, 3, 4, 5],
        "timezone": "UTC",
        "events": 7,
        "by_type": {"user_login": 6, "permission_change": 1},
    }


def test_new_ips_per_user(seeded: list[int]) -> None:
    """Given alice's known address and three first sightings, then exactly those three are new, oldest first."""
    new_ips = get().body["new_ips"]

    assert (new_ips["pairs"], new_ips["users"]) == (3, 3)
    assert new_ips["top_users"] == [
        {
            "user_id": "victim",
            "new_ips": 1,
            "addresses": [{"ip_address": "203.0.113.7", "first_seen": "2026-11-23T02:00:00.000000Z"}],
        },
        {
            "user_id": "alice",
            "new_ips": 1,
            "addresses": [{"ip_address": "10.0.0.2", "first_seen": "2026-11-23T10:00:00.000000Z"}],
        },
        {
            "user_id": "bob",
            "new_ips": 1,
            "addresses": [{"ip_address": "10.0.0.9", "first_seen": "2026-11-23T12:30:00.000000Z"}],
        },
    ]


def test_alerts_by_rule_severity_and_risk(seeded: list[int], db: psycopg.Connection[Any]) -> None:
    """Given the alerts the detect handler raised, then counts, histogram and top users match the alerts table."""
    stored = db.execute(
        "select rule, alert_key, severity, risk_score::float8, event_count from audit.security_alerts order by rule"
    ).fetchall()
    assert [(rule, key) for rule, key, *_ in stored] == [
        ("multiple_failed_logins", "victim"),
        ("privilege_escalation", "bob"),
    ]

    alerts = get().body["alerts"]

    assert alerts["total"] == 2
    assert alerts["by_rule"] == [
        {"rule": rule, "severity": severity, "alerts": 1, "open": 1, "max_risk_score": risk}
        for rule, _key, severity, risk, _count in stored
    ]
    severities = {"low": 0, "medium": 0, "high": 0, "critical": 0}
    for _rule, _key, severity, _risk, _count in stored:
        severities[severity] += 1
    assert alerts["by_severity"] == severities
    assert alerts["by_status"] == {"open": 2, "acknowledged": 0, "resolved": 0}
    histogram = [0] * 11
    for *_, risk, _count in stored:
        histogram[int(risk)] += 1
    assert alerts["risk_histogram"] == [{"score": k, "alerts": histogram[k]} for k in range(11)]
    ranked = sorted(stored, key=lambda row: (-row[3], row[1]))
    assert [(u["user_id"], u["alerts"], u["max_risk_score"], u["events"], u["rules"]) for u in alerts["top_users"]] == [
        (key, 1, risk, count, [rule]) for rule, key, _severity, risk, count in ranked
    ]
    assert alerts["top_ips"] == []
    hours = {int(b["start"][11:13]): b for b in alerts["buckets"]}
    assert (hours[2]["alerts"], hours[23]["alerts"], sum(b["alerts"] for b in alerts["buckets"])) == (1, 1, 2)
    assert alerts["open_now"] == 2


def test_integrity_and_detection_state(seeded: list[int], db: psycopg.Connection[Any]) -> None:
    """Given an unanchored chain, then a digest over part of it, then a tampered link: the state says so."""
    head = len(seeded)
    state = get().body
    assert state["integrity"]["status"] == "unanchored"
    assert (state["integrity"]["head_seq"], state["integrity"]["links_checked"]) == (head, head)
    assert (state["integrity"]["links_valid"], state["integrity"]["last_digest"]) == (True, None)
    assert state["integrity"]["unanchored_events"] == head
    # every event went through the webhook: nothing waits for the sweep
    assert state["detection"]["unanalysed"] == 0
    assert (state["detection"]["lag_seconds"], state["detection"]["head_seq"]) == (0, head)
    assert state["detection"]["events_above_watermark"] == head - state["detection"]["watermark"]

    chain_hash = one(db, "select chain_hash from audit.audit_events where seq = 10")[0]
    db.execute(
        "insert into audit.digests (digest_seq, chain_id, tree_size, previous_tree_size, root_hash, chain_hash,"
        " period_start, period_end, created_at, s3_key, signature, signing_key_id, signing_algorithm, body)"
        " values (1, 'default', 10, 0, %s, %s, now() - interval '1 hour', now(), now(), 'digests/1.json',"
        " 'c2lnbmF0dXJl', 'key-1', 'ECDSA_SHA_256', '{}')",
        (bytes(32), chain_hash),
    )
    head = chain_head(db)  # the first call's access record joined the chain
    anchored = get().body["integrity"]
    assert (anchored["status"], anchored["digest_matches_chain"], anchored["unanchored_events"]) == (
        "ok",
        True,
        head - 10,
    )
    assert anchored["last_digest"]["digest_seq"] == 1 and anchored["last_digest"]["chain_hash"] == chain_hash.hex()

    # tamper with a link after the digest (the append-only trigger is bypassed as an attacker with superuser would)
    db.execute("set session_replication_role = replica")
    db.execute("update audit.audit_events set chain_hash = %s where seq = 12", (bytes(32),))
    db.execute("set session_replication_role = origin")
    broken = get().body["integrity"]
    assert (broken["status"], broken["links_valid"], broken["first_invalid_seq"]) == ("broken", False, 12)


def test_answers_agree_whatever_the_rollups_hold(
    seeded: list[int], analytics_env: pytest.MonkeyPatch, db: psycopg.Connection[Any]
) -> None:
    """Given no refresh, a partial one and a full one, then every answer is the same (the tail fills the gap)."""
    analytics_env.setenv("AUDIT_ANALYTICS_REFRESH_MAX_EVENTS", "0")
    get_analytics_settings.cache_clear()
    unrolled = get().body
    assert one(db, "select rolled_up_seq from audit.analytics_state")[0] == 0

    analytics_env.setenv("AUDIT_ANALYTICS_REFRESH_MAX_EVENTS", "7")
    get_analytics_settings.cache_clear()
    partial = get().body
    assert one(db, "select rolled_up_seq from audit.analytics_state")[0] == 7

    analytics_env.delenv("AUDIT_ANALYTICS_REFRESH_MAX_EVENTS")
    get_analytics_settings.cache_clear()
    head = chain_head(db)  # the seeded events and the two earlier calls' access records
    assert head == len(seeded) + 2
    full = get().body
    assert one(db, "select rolled_up_seq from audit.analytics_state")[0] == head
    assert one(db, "select sum(events) from audit.analytics_slots")[0] == head
    assert one(db, "select sum(events) from audit.analytics_hours")[0] == head

    def comparable(body: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in body.items() if key not in ("as_of", "integrity", "detection")}

    assert comparable(unrolled) == comparable(partial) == comparable(full)
    # a period that does not start on a 5-minute slot reads its edges from the events
    edge = get("from=2026-11-23T02:01:00Z&to=2026-11-23T09:07:00Z&bucket=5m").body
    assert edge["totals"]["events"] == 4 + 2  # 02:01:30 .. 02:02:30 and 09:00, 09:05
    assert edge["buckets"][0]["start"] == "2026-11-23T02:00:00.000000Z"


def test_a_refresh_held_elsewhere_is_skipped_and_the_answer_stays_exact(
    seeded: list[int], db: psycopg.Connection[Any]
) -> None:
    """Given another session holding the refresh lock, when the dashboard asks, then it does not wait for the
    lock, the rollups stay where they were, and the events above the watermark are counted from the trail."""
    db.execute("select pg_advisory_lock(hashtext('audit.analytics_refresh'))")
    try:
        held = get().body
        assert one(db, "select rolled_up_seq from audit.analytics_state")[0] == 0
    finally:
        db.execute("select pg_advisory_unlock(hashtext('audit.analytics_refresh'))")

    head = chain_head(db)
    refreshed = get().body

    assert one(db, "select rolled_up_seq from audit.analytics_state")[0] == head == len(seeded) + 1
    assert held["totals"] == refreshed["totals"] and held["new_ips"] == refreshed["new_ips"]
    assert held["totals"]["events"] == 12


def test_erasure_forgets_the_subjects_addresses(
    seeded: list[int], transport: PostgresTransport, db: psycopg.Connection[Any]
) -> None:
    """Given the rollups hold victim's address, when victim is erased, then no answer names it any more."""
    assert get().body["new_ips"]["users"] == 3
    erased = transport.call("erase_subject", {"p_user_id": "victim", "p_actor": "dpo", "p_request_id": "gdpr-1"})
    assert erased is not None

    new_ips = get().body["new_ips"]

    assert [u["user_id"] for u in new_ips["top_users"]] == ["alice", "bob"]
    assert one(db, "select count(*) from audit.analytics_user_ips where user_id = 'victim'")[0] == 0
    assert one(db, "select count(*) from audit.analytics_user_ips where user_id = 'alice'")[0] == 2
    assert transport.call("analytics_refresh", {"p_max_events": 1}) is not None
    counts = get().body["totals"]
    assert counts["failed_logins"] == 6  # redaction keeps type, status and time: the counts do not change


def test_working_hours_follow_the_configured_zone(seeded: list[int], analytics_env: pytest.MonkeyPatch) -> None:
    """Given working hours in New York, then every Monday event (before 18:00 there is before 13:00 UTC...) counts."""
    analytics_env.setenv("AUDIT_ANALYTICS_TIMEZONE", "America/New_York")
    get_analytics_settings.cache_clear()

    body = get().body

    # 02:00Z is Sunday evening there; 09:00Z-12:30Z is before 08:00; 23:00Z is 18:00, the end of the day
    assert body["totals"]["after_hours"] == 12
    assert body["after_hours"]["timezone"] == "America/New_York"


def test_working_hours_in_a_half_hour_zone(seeded: list[int], analytics_env: pytest.MonkeyPatch) -> None:
    """Given Kolkata (UTC+05:30), whose hours straddle UTC hours, then after hours is still exact per event."""
    analytics_env.setenv("AUDIT_ANALYTICS_TIMEZONE", "Asia/Kolkata")
    get_analytics_settings.cache_clear()

    body = get().body

    # 02:00Z is 07:30 (before 08:00): 6; 09:00-10:00Z is 14:30-15:30: 0; 12:30Z is 18:00: 1; 23:00Z is 04:30: 1
    assert body["totals"]["after_hours"] == 8
    assert body["after_hours"]["by_type"] == {"user_login": 6, "file_upload": 1, "permission_change": 1}
    assert body["totals"]["events"] == 12


def test_empty_period_and_defaults(configured: str, analytics_env: pytest.MonkeyPatch) -> None:
    """Given no events, then every figure is zero; given no parameters, the last 24 hours in 5-minute buckets."""
    body = get("from=2026-01-05T00:00:00Z&to=2026-01-06T00:00:00Z&bucket=6h").body

    assert [b["events"] for b in body["buckets"]] == [0, 0, 0, 0]
    assert body["totals"] == {"events": 0, "failures": 0, "failed_logins": 0, "after_hours": 0, "by_type": {}}
    assert body["alerts"]["risk_histogram"] == [{"score": k, "alerts": 0} for k in range(11)]
    assert (body["alerts"]["total"], body["alerts"]["top_users"], body["new_ips"]["pairs"]) == (0, [], 0)
    assert (body["integrity"]["status"], body["integrity"]["head_seq"], body["integrity"]["links_checked"]) == (
        "unanchored",
        0,
        0,
    )

    default = get("").body
    span = datetime.fromisoformat(default["to"]) - datetime.fromisoformat(default["from"])
    assert (default["bucket"], span, len(default["buckets"]) in (288, 289)) == ("5m", timedelta(hours=24), True)


@pytest.mark.parametrize(
    ("query", "field", "fragment"),
    [
        ("bucket=2m", "bucket", "'5m'"),
        ("from=2026-11-23T00:00:00Z&to=2026-11-22T00:00:00Z", "to", "after from"),
        ("from=2025-01-01T00:00:00Z&to=2026-11-23T00:00:00Z&bucket=1d", "to", "at most 400 days"),
        ("from=2026-01-01T00:00:00Z&to=2026-11-23T00:00:00Z&bucket=5m", "bucket", "choose 12h or larger"),
        ("from=yesterday", "from", ""),
        ("from=2026-11-23T00:00:00", "from", "timezone"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    configured: str, analytics_env: pytest.MonkeyPatch, query: str, field: str, fragment: str
) -> None:
    """Given a bad parameter, then 422 names it and says why."""
    response = get(query)

    assert response.status == 422, response.body
    assert [error["field"] for error in response.body["errors"]] == [field]
    assert fragment in response.body["errors"][0]["message"]


def test_sample_event_replays(seeded: list[int]) -> None:
    """Given events/analytics/get_analytics.json, when replayed, then it answers the seeded day in hours."""
    sample = json.loads((ROOT / "events" / "analytics" / "get_analytics.json").read_text())

    response = invoke(lambda_handler, sample)

    assert response.status == 200, response.body
    assert (response.body["bucket"], len(response.body["buckets"]), response.body["totals"]["events"]) == ("1h", 24, 12)
