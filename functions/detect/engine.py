"""Detection logic: evaluate rules for stored events, score and record alerts, publish them.

Knows the SQL API and the publisher, nothing of Lambda or HTTP. Every step is idempotent, so a
webhook delivered three times, and the sweep analysing the same event again, change nothing:
alerts are unique per (rule, key, window) in the database, and publishing goes through an
outbox (`published_at`), so an alert is sent once even if a run dies between storing and sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from audit_common.api import AlertOut
from audit_common.db import Transport
from audit_common.observability import logger
from detect.publish import AlertPublisher
from detect.scoring import risk_score, severity_band

Source = Literal["webhook", "sweep"]


@dataclass(frozen=True)
class AnalysisResult:
    """What one analysis did: the alerts it raised or updated, and how many were published."""

    analysed: int
    alerts: list[AlertOut] = field(default_factory=list)
    created: int = 0
    published: int = 0
    publish_failed: int = 0


def summarise(hit: Mapping[str, Any]) -> str:
    """One line a person can act on, e.g. `20 failed user_login from 203.0.113.7 in 15 min (20 users)`."""
    count = hit["event_count"]
    kinds = "/".join(hit.get("event_types") or []) or hit["rule"]
    details = hit.get("details") or {}
    if int(hit["window_seconds"]) == 0:
        # the keys the rule matched on (rules are data: read them from the hit, not from here)
        keys = (hit.get("details_match") or {}).get("keys") or []
        granted = next((str(details[k]) for k in keys if k in details), "?")
        target = details.get("target_user") or details.get("target") or hit.get("user_id")
        return f"{hit['user_id']} granted {granted!r} to {target} ({hit['rule']}, event {hit['trigger_event_id']})"
    window = _duration(int(hit["window_seconds"]))
    who = f"from {hit['alert_key']}" if hit["group_by"] == "ip_address" else f"by {hit['alert_key']}"
    users = (hit.get("context") or {}).get("distinct_users")
    spread = f" across {users} users" if users else ""
    status = "failed " if hit.get("rule_status") == "failure" else ""
    return f"{count} {status}{kinds} events {who}{spread} within {window} ({hit['rule']})"


def _duration(seconds: int) -> str:
    return (
        f"{seconds // 3600} h"
        if seconds % 3600 == 0
        else f"{seconds // 60} min"
        if seconds % 60 == 0
        else f"{seconds} s"
    )


def to_alert(hit: Mapping[str, Any]) -> dict[str, Any]:
    """The alert row for a rule hit: score, band and summary added."""
    score = risk_score(hit)
    return {
        "rule": hit["rule"],
        "alert_key": hit["alert_key"],
        "window_start": hit["window_start"],
        "window_seconds": hit["window_seconds"],
        "severity": severity_band(score),
        "risk_score": score,
        "attack_id": hit["attack_id"],
        "event_count": hit["event_count"],
        "event_ids": hit["event_ids"],
        "first_event_at": hit["first_event_at"],
        "last_event_at": hit["last_event_at"],
        "trigger_seq": hit["trigger_seq"],
        "summary": summarise(hit),
        "context": {**(hit.get("context") or {}), "rule_description": hit.get("description")},
    }


def analyse(
    transport: Transport, seqs: Sequence[int], *, source: Source, publisher: AlertPublisher | None
) -> AnalysisResult:
    """Evaluate every enabled rule for these events, record the alerts, publish what is unpublished."""
    hits: list[dict[str, Any]] = transport.call("detect_events", {"p_seqs": list(seqs), "p_source": source}) or []
    alerts: list[AlertOut] = []
    created = 0
    for hit in hits:
        stored = transport.call("record_alert", {"p_alert": to_alert(hit)})
        created += bool(stored.pop("created", False))
        alerts.append(AlertOut.model_validate(stored))
    published = failed = 0
    if publisher is not None and hits:
        published, failed = publish_pending(transport, publisher)
    if alerts:
        logger.info(
            "detection raised alerts",
            extra={
                "source": source,
                "seqs": list(seqs)[:20],
                "alerts": [a.alert_id for a in alerts],
                "alerts_created": created,
            },
        )
    return AnalysisResult(len(seqs), alerts, created, published, failed)


def publish_pending(transport: Transport, publisher: AlertPublisher, limit: int = 100) -> tuple[int, int]:
    """Publish alerts not yet published (outbox); returns (published, failed). Failures stay queued."""
    pending = [AlertOut.model_validate(row) for row in transport.call("unpublished_alerts", {"p_limit": limit}) or []]
    sent: list[str] = []
    failed = 0
    for alert in pending:
        try:
            publisher.publish(alert)
        except Exception:  # one bad publish must not stop the others; the sweep retries it
            logger.exception("publishing an alert failed; it stays queued", extra={"alert_id": alert.alert_id})
            failed += 1
            continue
        sent.append(alert.alert_id)
    if sent:
        transport.call("mark_alerts_published", {"p_alert_ids": sent})
    return len(sent), failed
