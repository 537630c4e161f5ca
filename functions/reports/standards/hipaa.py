"""HIPAA Security Rule: audit controls, log-in monitoring, activity review, integrity, 6-year retention."""

from __future__ import annotations

from reports import controls
from reports.facts import Facts
from reports.model import Integrity, Section, Status

REVIEW_HOURS = 7 * 24


def sections(facts: Facts, integrity: Integrity) -> list[Section]:
    """The HIPAA sections."""
    failed = facts.failed_access
    total, on_phi, logins = int(failed["total"]), int(failed["on_tagged"]["hipaa"]), int(failed["failed_logins"])
    if total:
        status = Status.ATTENTION
        reason = (
            f"{controls.plural(total, 'failed or refused access attempt')} ({on_phi} on PHI, "
            f"{logins} failed logins) need review."
        )
    else:
        status, reason = Status.PASS, "No failed or refused access attempts were recorded in the period."
    login_monitoring = Section(
        control_id="164.308(a)(5)(ii)(C)",
        title="Log-in monitoring: failed and unauthorised access",
        requirement="Log-in attempts are monitored and discrepancies reported.",
        status=status,
        status_reason=reason,
        metrics={"failed_attempts": total, "on_phi": on_phi, "failed_logins": logins, "users": failed["users"]},
        evidence=[controls.failed_access_table(facts)],
    )
    return [
        controls.tag_access(
            facts,
            "hipaa",
            "164.312(b)",
            "Audit controls: access to PHI per user",
            "Mechanisms record and examine activity in systems that contain or use ePHI.",
            "PHI (events tagged hipaa)",
        ),
        login_monitoring,
        controls.review(
            facts,
            "164.308(a)(1)(ii)(D)",
            "Information system activity review",
            "Records of information system activity (audit logs, access and security incident reports) are "
            "regularly reviewed.",
            hours=REVIEW_HOURS,
        ),
        controls.integrity_control(
            integrity,
            "164.312(c)(1)",
            "Integrity of the audit records",
            "ePHI (and the record of access to it) is protected from improper alteration or destruction.",
        ),
        controls.retention(
            facts,
            "164.316(b)(2)(i)",
            "Documentation retained 6 years",
            "Required documentation is retained for 6 years from its creation or last effective date.",
            tag="hipaa",
            required_days=2190,
        ),
    ]
