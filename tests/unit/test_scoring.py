"""The risk score formula and the alert messages (docs/detection.md)."""

from __future__ import annotations

from typing import Any

import pytest

from audit_common.api import AlertOut
from detect.engine import summarise, to_alert
from detect.publish import attack_url, message, subject
from detect.scoring import outside_usual_hours, risk_score, severity_band


def hit(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rule": "multiple_failed_logins",
        "rule_severity": "medium",
        "attack_id": "T1110.001",
        "description": "Repeated failed logins for one account",
        "event_types": ["user_login"],
        "rule_status": "failure",
        "group_by": "user_id",
        "alert_key": "alice",
        "window_start": "2026-11-27T08:00:00.000000Z",
        "window_seconds": 900,
        "threshold": 5,
        "event_count": 5,
        "event_ids": [f"e{i}" for i in range(5)],
        "first_event_at": "2026-11-27T08:01:00.000000Z",
        "last_event_at": "2026-11-27T08:05:00.000000Z",
        "trigger_seq": 42,
        "trigger_event_id": "e4",
        "security_level": "low",
        "user_id": "alice",
        "ip_address": "198.51.100.1",
        "details": {},
        "context": {
            "first_seen_ip": False,
            "user_events_30d": 0,
            "user_events_same_hour_30d": 0,
            "prior_alerts_24h": 0,
        },
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(("severity", "expected"), [("low", 2.0), ("medium", 4.0), ("high", 6.0), ("critical", 8.0)])
def test_base_score_follows_rule_severity(severity: str, expected: float) -> None:
    """Given no aggravating context, When scored, Then the score is the rule's base."""
    assert risk_score(hit(rule_severity=severity)) == expected


def test_every_factor_adds_as_documented() -> None:
    """Given each factor in turn, When scored, Then it adds exactly its documented weight."""
    base = risk_score(hit())
    assert risk_score(hit(security_level="critical")) == base + 2
    assert risk_score(hit(event_count=10)) == base + 1  # twice the threshold, capped at +1
    assert risk_score(hit(event_count=6)) == base + 0.2
    assert risk_score(hit(context={**hit()["context"], "first_seen_ip": True})) == base + 1
    assert (
        risk_score(hit(context={**hit()["context"], "user_events_30d": 100, "user_events_same_hour_30d": 1}))
        == base + 1
    )
    assert risk_score(hit(context={**hit()["context"], "distinct_users": 20})) == base + 1
    assert risk_score(hit(context={**hit()["context"], "prior_alerts_24h": 1})) == base + 0.5
    assert risk_score(hit(context={**hit()["context"], "prior_alerts_24h": 9})) == base + 1.5


def test_score_is_clamped_to_ten() -> None:
    """Given every factor at once on a critical rule, When scored, Then the score is 10, not more."""
    context = {
        "first_seen_ip": True,
        "user_events_30d": 500,
        "user_events_same_hour_30d": 0,
        "prior_alerts_24h": 5,
        "distinct_users": 50,
    }
    assert risk_score(hit(rule_severity="critical", security_level="critical", event_count=50, context=context)) == 10


def test_usual_hours_need_history() -> None:
    """Given too little history, When judging the hour, Then it is never called unusual."""
    assert not outside_usual_hours({"user_events_30d": 19, "user_events_same_hour_30d": 0})
    assert outside_usual_hours({"user_events_30d": 20, "user_events_same_hour_30d": 0})
    assert not outside_usual_hours({"user_events_30d": 100, "user_events_same_hour_30d": 2})


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "low"), (2.9, "low"), (3, "medium"), (6.9, "medium"), (7, "high"), (9.9, "high"), (10, "critical")],
)
def test_bands_are_the_seeds(score: float, band: str) -> None:
    """Given a score, When banded, Then low < 3, medium < 7, high < 10, critical 10."""
    assert severity_band(score) == band


def test_summaries_read_like_sentences() -> None:
    """Given window and per-event hits, When summarised, Then a person can read what happened."""
    assert summarise(hit()) == "5 failed user_login events by alice within 15 min (multiple_failed_logins)"
    spray = hit(
        rule="brute_force",
        group_by="ip_address",
        alert_key="203.0.113.7",
        event_count=20,
        context={"distinct_users": 20},
    )
    assert (
        summarise(spray) == "20 failed user_login events from 203.0.113.7 across 20 users within 15 min (brute_force)"
    )
    grant = hit(
        rule="privilege_escalation",
        window_seconds=0,
        user_id="mallory",
        details={"role": "admin", "target_user": "bob"},
        details_match={"keys": ["new_role", "role"], "values": ["admin"]},
    )
    assert summarise(grant) == "mallory granted 'admin' to bob (privilege_escalation, event e4)"


def test_notification_names_rule_score_evidence_and_next_step() -> None:
    """Given an alert, When rendered for SNS, Then subject and body carry what a responder needs."""
    stored = {
        **to_alert(hit(event_ids=[f"e{i}" for i in range(12)], event_count=12)),
        "alert_id": "a-1",
        "status": "open",
        "status_note": None,
        "status_changed_by": None,
        "status_changed_at": None,
        "created_at": "x",
        "updated_at": "x",
        "published_at": None,
    }
    alert = AlertOut.model_validate(stored)
    assert subject(alert) == f"[{alert.severity.upper()} {alert.risk_score:.1f}] multiple_failed_logins: alice"
    body = message(alert)
    assert "T1110.001 https://attack.mitre.org/techniques/T1110/001/" in body
    assert "(+2 more)" in body and "PATCH /alerts/a-1" in body
    assert attack_url("T1098") == "https://attack.mitre.org/techniques/T1098/"
