"""CIS Controls v8, Control 8 (audit log management): 8.2, 8.5, 8.10, 8.11."""

from __future__ import annotations

from reports import controls
from reports.facts import Facts
from reports.model import Integrity, Section, Status

MIN_RETENTION_DAYS = 90
REVIEW_HOURS = 7 * 24


def _collect(facts: Facts) -> Section:
    """pass: events were collected in the period; attention: none were."""
    overview = facts.overview
    total = int(overview["total_events"])
    if total:
        status = Status.PASS
        reason = (
            f"{controls.plural(total, 'event')} of {len(overview['events_by_type'])} types "
            f"from {overview['distinct_users']} users were collected."
        )
    else:
        status, reason = Status.ATTENTION, "No events were collected in the period."
    return Section(
        control_id="8.2",
        title="Collect audit logs",
        requirement="Audit logs are collected per the enterprise's audit log management process.",
        status=status,
        status_reason=reason,
        metrics={"events": total, "event_types": len(overview["events_by_type"]), "users": overview["distinct_users"]},
        evidence=[
            controls.table(
                "Events by type",
                ["event type", "events"],
                sorted(overview["events_by_type"].items(), key=lambda kv: -kv[1]),
            )
        ],
    )


def _retention(facts: Facts) -> Section:
    """fail: some policy keeps events fewer than 90 days, or events were redacted early; pass otherwise."""
    policy = facts.retention(None)
    shortest, early = int(policy["min_policy_days"]), int(facts.overview["redacted_early"])
    if shortest < MIN_RETENTION_DAYS:
        status, reason = Status.FAIL, f"A retention policy keeps events only {shortest} days (at least 90 required)."
    elif early:
        status, reason = Status.FAIL, f"{controls.plural(early, 'event')} were redacted before their retention allowed."
    else:
        status, reason = Status.PASS, f"Every policy keeps events at least {shortest} days (at least 90 required)."
    return Section(
        control_id="8.10",
        title="Retain audit logs",
        requirement="Audit logs are retained for a minimum of 90 days.",
        status=status,
        status_reason=reason,
        metrics={"shortest_policy_days": shortest, "required_days": MIN_RETENTION_DAYS, "redacted_early": early},
        evidence=[controls.policies_table(policy["policies"])],
    )


def sections(facts: Facts, integrity: Integrity) -> list[Section]:
    """The CIS Control 8 sections."""
    return [
        _collect(facts),
        controls.completeness(
            facts,
            "8.5",
            "Collect detailed audit logs",
            "Detailed audit logs include event source, date, username, timestamp, source and destination addresses.",
            complete_key="details_complete",
            fields="user, time, source address, resource, session or user agent",
        ),
        _retention(facts),
        controls.review(
            facts,
            "8.11",
            "Conduct audit log reviews",
            "Audit logs are reviewed to detect anomalies or abnormal events, at least weekly.",
            hours=REVIEW_HOURS,
        ),
    ]
