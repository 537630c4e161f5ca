"""ISO/IEC 27001:2022 Annex A: 8.15 logging, 8.16 monitoring, 8.17 clock synchronisation, 5.28 evidence."""

from __future__ import annotations

from reports import controls
from reports.facts import Facts
from reports.model import Integrity, Section, Status

REVIEW_HOURS = 7 * 24
SKEW_FAIL_PERCENT = 1.0
"""Share of events with a clock finding at or above which A.8.17 fails (below: attention)."""


def _logging(facts: Facts, integrity: Integrity) -> Section:
    """fail: the chain does not verify, or fewer than 95 % of events are complete; attention: fewer than
    99 % complete, untagged administrative actions, or no events; pass otherwise."""
    overview = facts.overview
    unredacted, complete = int(overview["unredacted"]), int(overview["fields_complete"])
    share = controls.percent(complete, unredacted)
    untagged_admin = int(overview["untagged_admin_actions"])
    if not integrity.valid:
        status, reason = (
            Status.FAIL,
            f"The log is not protected: the chain breaks at seq {integrity.first_invalid_seq}.",
        )
    elif share is None:
        status, reason = Status.ATTENTION, "No events were logged in the period."
    elif share < controls.COMPLETE_ATTENTION:
        status, reason = Status.FAIL, f"Only {share} % of events carry every required field."
    elif share < controls.COMPLETE_PASS:
        status, reason = Status.ATTENTION, f"{share} % of events carry every required field."
    elif untagged_admin:
        status = Status.ATTENTION
        reason = (
            f"{controls.plural(untagged_admin, 'administrative action')} carry no compliance tag, "
            "so no standard's retention or review covers them explicitly."
        )
    else:
        status, reason = Status.PASS, f"{share} % of events complete, all administrative actions tagged, chain intact."
    return Section(
        control_id="A.8.15",
        title="Logging: coverage and protection",
        requirement=(
            "Logs recording activities, exceptions, faults and other relevant events are produced, "
            "stored, protected and analysed."
        ),
        status=status,
        status_reason=reason,
        metrics={
            "events": overview["total_events"],
            "complete_percent": share,
            "untagged_events": overview["untagged"],
            "untagged_admin_actions": untagged_admin,
            "chain_valid": integrity.valid,
        },
        evidence=[
            controls.table(
                "Events by type",
                ["event type", "events"],
                sorted(overview["events_by_type"].items(), key=lambda kv: -kv[1]),
            ),
            controls.admin_actions_table(facts),
        ],
    )


def _clock(facts: Facts) -> Section:
    """pass: no event's timestamp is further than the threshold from its arrival; attention: under 1 %
    are; fail: 1 % or more."""
    overview = facts.overview
    total, skewed = int(overview["total_events"]), int(overview["clock_skewed"])
    threshold = int(overview["skew_seconds"])
    share = controls.percent(skewed, total)
    if not skewed:
        status, reason = Status.PASS, f"Every event's timestamp is within {threshold} s of its arrival."
    elif share is not None and share < SKEW_FAIL_PERCENT:
        status = Status.ATTENTION
        reason = (
            f"{controls.plural(skewed, 'event')} ({share} %) carry a timestamp "
            f"more than {threshold} s from their arrival."
        )
    else:
        status = Status.FAIL
        reason = (
            f"{controls.plural(skewed, 'event')} ({share} %) carry a timestamp "
            f"more than {threshold} s from their arrival."
        )
    return Section(
        control_id="A.8.17",
        title="Clock synchronisation",
        requirement="Clocks of information processing systems are synchronised to approved time sources.",
        status=status,
        status_reason=reason,
        metrics={
            "threshold_seconds": threshold,
            "skewed_events": skewed,
            "skewed_percent": share,
            "ahead_of_arrival": overview["clock_ahead"],
            "max_skew_seconds": round(float(overview["max_clock_skew_seconds"]), 3),
        },
        notes=(
            "Skew is |received_at - timestamp|: the server's arrival time against the client's clock "
            "(or a late delivery)."
        ),
    )


def sections(facts: Facts, integrity: Integrity) -> list[Section]:
    """The ISO 27001 sections."""
    return [
        _logging(facts, integrity),
        controls.review(
            facts,
            "A.8.16",
            "Monitoring activities: anomalies and their handling",
            "Networks, systems and applications are monitored for anomalous behaviour and action is taken.",
            hours=REVIEW_HOURS,
        ),
        _clock(facts),
        controls.integrity_control(
            integrity,
            "A.5.28",
            "Collection of evidence: hashes",
            "Evidence is identified, collected and preserved so that it remains admissible.",
        ),
    ]
