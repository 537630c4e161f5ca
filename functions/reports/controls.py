"""Section builders shared by the standards: review of alerts, retention, integrity, access to tagged data.

Each returns a Section whose status is computed from the facts by a rule written in its docstring
(docs/reports.md lists every control with its rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from reports.facts import Facts
from reports.model import EvidenceTable, Integrity, Section, Status

COMPLETE_PASS: Final = 99.0
"""Field completeness (percent of unredacted events) at or above which a completeness control passes."""
COMPLETE_ATTENTION: Final = 95.0
"""... at or above which it needs attention, and below which it fails."""


def percent(part: int, whole: int) -> float | None:
    """part/whole as a percentage with two decimals (None when whole is 0)."""
    return None if whole == 0 else round(100.0 * part / whole, 2)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """'1 event', '2 events'."""
    return f"{count} {noun if count == 1 else (plural_form or noun + 's')}"


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], total: int | None = None) -> EvidenceTable:
    """An evidence table; `total` is how many rows exist when only the first are shown."""
    return EvidenceTable(
        title=title,
        columns=list(columns),
        rows=[list(row) for row in rows],
        truncated=total is not None and total > len(rows),
    )


def minutes(seconds: float | None) -> float | None:
    """Seconds as minutes with one decimal."""
    return None if seconds is None else round(float(seconds) / 60.0, 1)


def review(facts: Facts, control_id: str, title: str, requirement: str, hours: int) -> Section:
    """Alerts of the period reviewed within `hours` (acknowledged or resolved, by whom, how fast).

    fail: a high or critical alert stayed open longer than `hours`; attention: another alert did,
    or alerts are still open inside the window; pass: every alert was reviewed, or none was raised.
    """
    alerts = facts.alerts(hours)
    total, reviewed, overdue = int(alerts["total"]), int(alerts["reviewed"]), int(alerts["overdue"])
    overdue_high, still_open = int(alerts["overdue_high"]), total - reviewed
    window = f"{hours} h" if hours < 48 else f"{hours // 24} days"
    if total == 0:
        status, reason = Status.PASS, "No alerts were raised in the period, so none awaited review."
    elif overdue_high:
        status = Status.FAIL
        reason = f"{plural(overdue_high, 'high or critical alert')} stayed open longer than {window} without review."
    elif overdue:
        status = Status.ATTENTION
        reason = f"{plural(overdue, 'alert')} stayed open longer than {window} without review."
    elif still_open:
        status = Status.ATTENTION
        reason = f"{plural(still_open, 'alert')} of {total} still await review (within the {window} window)."
    else:
        median = minutes(alerts["median_review_seconds"])
        status, reason = (
            Status.PASS,
            f"All {plural(total, 'alert')} were reviewed (median {median} min after detection).",
        )
    reviewers = alerts["reviewers"]
    rows = alerts["rows"]
    return Section(
        control_id=control_id,
        title=title,
        requirement=requirement,
        status=status,
        status_reason=reason,
        metrics={
            "alerts": total,
            "reviewed": reviewed,
            "open": still_open,
            "overdue": overdue,
            "review_window_hours": hours,
            "median_minutes_to_review": minutes(alerts["median_review_seconds"]),
            "max_minutes_to_review": minutes(alerts["max_review_seconds"]),
            "reviewers": len(reviewers),
        },
        evidence=[
            table(
                "Alerts and their review",
                [
                    "rule",
                    "severity",
                    "risk",
                    "first event",
                    "detected",
                    "status",
                    "reviewed by",
                    "reviewed at",
                    "overdue",
                ],
                [
                    [
                        a["rule"],
                        a["severity"],
                        a["risk_score"],
                        a["first_event_at"],
                        a["detected_at"],
                        a["status"],
                        a["reviewed_by"],
                        a["reviewed_at"],
                        a["overdue"],
                    ]
                    for a in rows
                ],
                total,
            ),
            table("Reviewers", ["reviewer", "alerts reviewed"], [[r["reviewer"], r["alerts"]] for r in reviewers]),
        ],
    )


def retention(
    facts: Facts,
    control_id: str,
    title: str,
    requirement: str,
    *,
    tag: str | None,
    required_days: int,
    require_history: bool = False,
) -> Section:
    """The retention policy for `tag` keeps events at least `required_days`, and none was redacted early.

    fail: the policy is shorter, or events of the period were redacted for retention before their
    policy allowed; attention (`require_history` only): the trail is younger than `required_days`,
    so the history cannot be shown yet; pass otherwise.
    """
    policy = facts.retention(tag)
    days = int(policy["policy_days"])
    history = policy["history_days"]
    early = int(facts.overview["redacted_early"])
    label = f"{tag} events" if tag else "events"
    if days < required_days:
        status, reason = Status.FAIL, f"The policy keeps {label} {days} days, less than the {required_days} required."
    elif early:
        status = Status.FAIL
        reason = f"{plural(early, 'event')} of the period were redacted for retention before the policy allowed."
    elif require_history and (history is None or int(history) < required_days):
        status = Status.ATTENTION
        reason = (
            f"The policy keeps {label} {days} days, but the trail holds only {int(history or 0)} days of history "
            f"(oldest record {policy['oldest_event_at'] or 'none'}), so {required_days} days cannot be shown yet."
        )
    else:
        status, reason = Status.PASS, f"The policy keeps {label} {days} days (at least {required_days} required)."
    last_run = policy["last_completed_run"]
    return Section(
        control_id=control_id,
        title=title,
        requirement=requirement,
        status=status,
        status_reason=reason,
        metrics={
            "policy_days": days,
            "required_days": required_days,
            "legal_floor_days": policy["floor_days"],
            "history_days": history,
            "oldest_event_at": policy["oldest_event_at"],
            "redacted_early_in_period": early,
            "last_retention_run": last_run["finished_at"] if last_run else None,
            "active_legal_holds": policy["active_legal_holds"],
        },
        evidence=[policies_table(policy["policies"])],
    )


def policies_table(policies: list[dict[str, Any]]) -> EvidenceTable:
    """The retention policies in force."""
    return table(
        "Retention policies in force",
        ["scope", "value", "days", "override reason", "updated by", "updated at"],
        [
            [p["scope"], p["scope_value"], p["days"], p["override_reason"], p["updated_by"], p["updated_at"]]
            for p in policies
        ],
    )


def integrity_control(integrity: Integrity, control_id: str, title: str, requirement: str) -> Section:
    """The period's chain verified, and anchored by a signed digest.

    fail: the chain does not verify; attention: it verifies but no signed digest exists yet;
    pass: it verifies and a digest anchors it.
    """
    if not integrity.valid:
        status = Status.FAIL
        reason = f"The chain does not verify: {integrity.reason} at seq {integrity.first_invalid_seq}."
    elif integrity.digest is None:
        status = Status.ATTENTION
        reason = f"The chain verifies over {plural(integrity.checked, 'event')}, but no signed digest anchors it yet."
    else:
        status = Status.PASS
        reason = (
            f"The chain verifies over {plural(integrity.checked, 'event')} and the newest signed digest covers "
            f"{integrity.digest.tree_size} events."
        )
    return Section(
        control_id=control_id,
        title=title,
        requirement=requirement,
        status=status,
        status_reason=reason,
        metrics={
            "chain_valid": integrity.valid,
            "events_checked": integrity.checked,
            "first_invalid_seq": integrity.first_invalid_seq,
            "digest_tree_size": integrity.digest.tree_size if integrity.digest else None,
            "digest_root_hash": integrity.digest.root_hash if integrity.digest else None,
        },
        notes=integrity.method,
    )


def tag_access(facts: Facts, tag: str, control_id: str, title: str, requirement: str, data: str) -> Section:
    """Access to data tagged `tag`, per user.

    attention: nothing tagged `tag` was recorded (access cannot be evidenced); pass otherwise.
    """
    access = facts.tag_access(tag)
    events, users = int(access["events"]), int(access["users"])
    if events == 0:
        status = Status.ATTENTION
        reason = f"No events tagged {tag} were recorded, so access to {data} cannot be evidenced for the period."
    else:
        status = Status.PASS
        reason = (
            f"{plural(events, 'event')} on {data} by {plural(users, 'user')} were recorded, "
            "each with user, time, action and outcome."
        )
    return Section(
        control_id=control_id,
        title=title,
        requirement=requirement,
        status=status,
        status_reason=reason,
        metrics={
            "events": events,
            "users": users,
            "reads": access["reads"],
            "changes": access["changes"],
            "failures": access["failures"],
        },
        evidence=[
            table(
                f"Access to {data} per user",
                ["user", "events", "reads", "changes", "failures", "resources", "first", "last"],
                [
                    [
                        u["user_id"],
                        u["events"],
                        u["reads"],
                        u["changes"],
                        u["failures"],
                        u["resources"],
                        u["first_at"],
                        u["last_at"],
                    ]
                    for u in access["top_users"]
                ],
                users,
            )
        ],
    )


def failed_access_table(facts: Facts) -> EvidenceTable:
    """Who failed to log in or was refused, most first."""
    failed = facts.failed_access
    return table(
        "Failed and refused access per user",
        ["user", "failures", "failed logins", "source addresses", "first", "last"],
        [
            [u["user_id"], u["failures"], u["failed_logins"], u["addresses"], u["first_at"], u["last_at"]]
            for u in failed["top_users"]
        ],
        int(failed["users"]),
    )


def admin_actions_table(facts: Facts) -> EvidenceTable:
    """Administrative actions: untagged and admin-granting ones first."""
    actions = facts.admin_actions
    return table(
        "Administrative actions and permission changes",
        ["seq", "time", "user", "action", "resource", "granted", "grants admin", "status", "tags"],
        [
            [
                a["seq"],
                a["timestamp"],
                a["user_id"],
                a["action"],
                a["resource"],
                a["granted"],
                a["grants_admin"],
                a["status"],
                " ".join(a["compliance_tags"]) or "(none)",
            ]
            for a in actions["rows"]
        ],
        int(actions["total"]),
    )


def completeness(
    facts: Facts, control_id: str, title: str, requirement: str, *, complete_key: str, fields: str
) -> Section:
    """Share of unredacted events carrying every field in `fields`.

    pass: at least 99 %; attention: at least 95 % (or no events); fail: below 95 %.
    """
    overview = facts.overview
    unredacted, complete = int(overview["unredacted"]), int(overview[complete_key])
    share = percent(complete, unredacted)
    if share is None:
        status, reason = Status.ATTENTION, "No unredacted events in the period, so completeness cannot be shown."
    elif share >= COMPLETE_PASS:
        status, reason = Status.PASS, f"{share} % of {unredacted} events carry every required field ({fields})."
    elif share >= COMPLETE_ATTENTION:
        status = Status.ATTENTION
        reason = f"{share} % of events carry every required field ({fields}); {unredacted - complete} lack one."
    else:
        status = Status.FAIL
        reason = f"Only {share} % of events carry every required field ({fields}); {unredacted - complete} lack one."
    return Section(
        control_id=control_id,
        title=title,
        requirement=requirement,
        status=status,
        status_reason=reason,
        metrics={
            "complete_percent": share,
            "events_checked": unredacted,
            "complete": complete,
            "missing_origin": overview["missing_origin"],
            "missing_resource": overview["missing_resource"],
            "missing_session_or_agent": overview["missing_session"],
            "redacted_excluded": overview["redacted"],
        },
        notes=f"Required fields: {fields}. Redacted events are excluded: redaction blanks origin fields on purpose.",
    )
