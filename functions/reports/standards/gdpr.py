"""GDPR: personal-data access by subject, Art. 15 and 17 requests, Art. 5(1)(e) storage limitation,
Art. 32 integrity, Art. 33 breach candidates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from reports import controls
from reports.facts import Facts
from reports.model import EvidenceTable, Integrity, Section, Status

RUN_GRACE: Final = timedelta(hours=48)
"""A retention run must have completed this recently once anything can be past retention."""


def _requests_table(rows: list[dict[str, Any]], article: str) -> EvidenceTable:
    if article == "Art. 15":
        columns = ["requested at", "request id", "subject", "by", "events exported"]
        body = [[r["at"], r["request_id"], r["subject"], r["actor"], r["exported_events"]] for r in rows]
    else:
        columns = [
            "requested at",
            "request id",
            "subject",
            "by",
            "redacted",
            "kept",
            "grounds",
            "left unredacted",
            "complete",
        ]
        body = [
            [
                r["at"],
                r["request_id"],
                r["subject"],
                r["actor"],
                r["redacted"],
                r["kept"],
                ", ".join(r["grounds"] or []),
                r["left_unredacted"],
                r["complete"],
            ]
            for r in rows
        ]
    return controls.table(f"{article} requests", columns, body)


def _access_requests(facts: Facts) -> Section:
    """pass: every export recorded is answered by construction (the export is synchronous)."""
    requests = facts.gdpr_requests
    rows = [r for r in requests["rows"] if r["article"] == "Art. 15"]
    count = int(requests["exports"])
    reason = (
        f"{controls.plural(count, 'access request')} answered with a full export at the time of the request."
        if count
        else "No access requests in the period."
    )
    return Section(
        control_id="Art. 15",
        title="Right of access: subject exports",
        requirement="A data subject obtains a copy of their personal data, within one month of the request.",
        status=Status.PASS,
        status_reason=reason,
        metrics={"requests": count},
        evidence=[_requests_table(rows, "Art. 15")],
    )


def _erasures(facts: Facts) -> Section:
    """fail: after an erasure, more of the subject's earlier events are unredacted than it kept on a
    stated ground (legal hold, retention obligation); pass otherwise."""
    requests = facts.gdpr_requests
    rows = [r for r in requests["rows"] if r["article"] == "Art. 17"]
    count = int(requests["erasures"])
    incomplete = [r for r in rows if r["complete"] is False]
    kept = sum(int(r["kept"] or 0) for r in rows)
    if incomplete:
        status = Status.FAIL
        reason = f"{controls.plural(len(incomplete), 'erasure')} left personal data unredacted without a stated ground."
    elif count:
        status = Status.PASS
        reason = (
            f"{controls.plural(count, 'erasure')} carried out: {sum(int(r['redacted'] or 0) for r in rows)} events "
            f"redacted, {kept} kept on Art. 17(3) grounds."
        )
    else:
        status, reason = Status.PASS, "No erasure requests in the period."
    return Section(
        control_id="Art. 17",
        title="Right to erasure",
        requirement=(
            "Personal data is erased without undue delay unless an Art. 17(3) exception "
            "(e.g. a legal obligation) applies."
        ),
        status=status,
        status_reason=reason,
        metrics={"requests": count, "incomplete": len(incomplete), "events_kept": kept},
        evidence=[_requests_table(rows, "Art. 17")],
        notes="Erasure redacts the subject's personal fields and keeps the chain; kept events name their ground.",
    )


def _storage_limitation(facts: Facts) -> Section:
    """fail: events of the period are past retention, unredacted and not on hold; attention: events can
    be past retention but no retention run completed in the last 48 h; pass otherwise."""
    overdue = int(facts.overview["overdue_retention"])
    policy = facts.retention("gdpr")
    history, min_days = policy["history_days"], int(policy["min_policy_days"])
    last_run = policy["last_completed_run"]
    finished = datetime.fromisoformat(last_run["finished_at"]) if last_run else None
    stale = finished is None or datetime.now(UTC) - finished > RUN_GRACE
    if overdue:
        status = Status.FAIL
        reason = f"{controls.plural(overdue, 'event')} of the period are past retention and still hold personal data."
    elif history is not None and int(history) >= min_days and stale:
        status = Status.ATTENTION
        reason = "Events can be past retention, but no retention run completed in the last 48 hours."
    else:
        status, reason = Status.PASS, "No event of the period is kept past its retention."
    return Section(
        control_id="Art. 5(1)(e)",
        title="Storage limitation",
        requirement="Personal data is kept no longer than necessary for its purposes.",
        status=status,
        status_reason=reason,
        metrics={
            "overdue_events": overdue,
            "gdpr_policy_days": policy["policy_days"],
            "shortest_policy_days": min_days,
            "history_days": history,
            "last_retention_run": last_run["finished_at"] if last_run else None,
            "active_legal_holds": policy["active_legal_holds"],
        },
        evidence=[controls.policies_table(policy["policies"])],
    )


def _breaches(facts: Facts) -> Section:
    """fail: a breach candidate (high or critical alert) is still open 72 h after detection;
    attention: one is open within 72 h; pass: none, or all handled."""
    alerts = facts.alerts(72)
    candidates = [a for a in alerts["rows"] if a["severity"] in ("high", "critical")]
    total, still_open, late = (
        int(alerts["breach_candidates"]),
        int(alerts["breach_open"]),
        int(alerts["breach_open_over_72h"]),
    )
    if late:
        status = Status.FAIL
        reason = f"{controls.plural(late, 'breach candidate')} still open more than 72 hours after detection."
    elif still_open:
        status = Status.ATTENTION
        reason = f"{controls.plural(still_open, 'breach candidate')} open: assess within 72 hours of detection."
    elif total:
        status, reason = Status.PASS, f"All {controls.plural(total, 'breach candidate')} were assessed."
    else:
        status, reason = Status.PASS, "No breach candidates (high or critical alerts) in the period."
    return Section(
        control_id="Art. 33",
        title="Breach candidates and detection times",
        requirement=(
            "A personal data breach is notified to the supervisory authority within 72 hours of becoming aware of it."
        ),
        status=status,
        status_reason=reason,
        metrics={
            "breach_candidates": total,
            "open": still_open,
            "open_over_72h": late,
            "max_detection_minutes": controls.minutes(alerts["max_detection_seconds"]),
        },
        evidence=[
            controls.table(
                "Breach candidates",
                [
                    "rule",
                    "severity",
                    "first event",
                    "detected",
                    "minutes to detect",
                    "status",
                    "reviewed by",
                    "reviewed at",
                ],
                [
                    [
                        a["rule"],
                        a["severity"],
                        a["first_event_at"],
                        a["detected_at"],
                        controls.minutes(a["detection_seconds"]),
                        a["status"],
                        a["reviewed_by"],
                        a["reviewed_at"],
                    ]
                    for a in candidates
                ],
                total,
            )
        ],
    )


def sections(facts: Facts, integrity: Integrity) -> list[Section]:
    """The GDPR sections."""
    return [
        controls.tag_access(
            facts,
            "gdpr",
            "Art. 30",
            "Personal-data access by subject",
            "Processing of personal data is recorded (records of processing activities).",
            "personal data (events tagged gdpr)",
        ),
        _access_requests(facts),
        _erasures(facts),
        _storage_limitation(facts),
        controls.integrity_control(
            integrity,
            "Art. 32",
            "Integrity of processing records",
            "Processing is secured, including the integrity of personal data and of its records.",
        ),
        _breaches(facts),
    ]
