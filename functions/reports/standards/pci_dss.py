"""PCI DSS v4.0 Requirement 10: event classes 10.2.1.1-7, fields 10.2.2, daily review 10.4.1, retention 10.5.1."""

from __future__ import annotations

from typing import Final

from reports import controls
from reports.facts import Facts
from reports.model import Integrity, Section, Status

# (control id, title, requirement, what counts as the class: the SQL predicate in words)
EVENT_CLASSES: Final = (
    (
        "10.2.1.1",
        "User access to cardholder data",
        "Audit logs capture all individual user access to cardholder data.",
        "file_access and file_download events tagged pci_dss",
    ),
    (
        "10.2.1.2",
        "Administrative actions",
        "Audit logs capture all actions taken by any individual with administrative access.",
        "permission_change events and actions named admin*",
    ),
    (
        "10.2.1.3",
        "Access to audit logs",
        "Audit logs capture all access to audit logs.",
        "reads, exports and reports of the audit trail (its routes and gdpr_export/report_generated actions)",
    ),
    (
        "10.2.1.4",
        "Invalid logical access attempts",
        "Audit logs capture all invalid logical access attempts.",
        "failed logins and refused access to objects",
    ),
    (
        "10.2.1.5",
        "Changes to identification and authentication credentials",
        "Audit logs capture all changes to identification and authentication credentials.",
        "actions naming a password, credential, MFA, API key or passkey",
    ),
    (
        "10.2.1.6",
        "Audit log start, stop and pause",
        "Audit logs capture initialization, stopping and pausing of the audit logs.",
        "system_event actions audit_start/stop/pause/resume/init (and logging_*)",
    ),
    (
        "10.2.1.7",
        "Creation and deletion of system-level objects",
        "Audit logs capture all creation and deletion of system-level objects.",
        "folder_create, folder_delete, and system_event actions that create, delete or drop",
    ),
)


def sections(facts: Facts, integrity: Integrity) -> list[Section]:
    """The PCI DSS sections, in control order."""
    overview = facts.overview
    result: list[Section] = []
    for control_id, title, requirement, definition in EVENT_CLASSES:
        count = int(overview["pci_classes"][control_id])
        # A class with no event cannot show that it is captured: someone confirms none occurred.
        if count:
            status, reason = Status.PASS, f"{controls.plural(count, 'event')} of this class were logged ({definition})."
        else:
            status = Status.ATTENTION
            reason = f"No events of this class ({definition}) were logged in the period; confirm none occurred."
        section = Section(
            control_id=control_id,
            title=title,
            requirement=requirement,
            status=status,
            status_reason=reason,
            metrics={"events": count},
            notes=f"Counted: {definition}.",
        )
        if control_id == "10.2.1.2":
            section.metrics["untagged"] = facts.admin_actions["untagged"]
            section.evidence.append(controls.admin_actions_table(facts))
        if control_id == "10.2.1.4":
            section.metrics["failed_logins"] = facts.failed_access["failed_logins"]
            section.evidence.append(controls.failed_access_table(facts))
        result.append(section)
    result.append(
        controls.completeness(
            facts,
            "10.2.2",
            "Audit log record details",
            "Each audit log record holds user identification, event type, date and time, success or failure, "
            "origination and the affected data, component or resource.",
            complete_key="fields_complete",
            fields="user, type, time, outcome, origin (IP address), affected resource",
        )
    )
    result.append(
        controls.review(
            facts,
            "10.4.1",
            "Daily review of audit logs",
            "Security events and the logs of critical components are reviewed at least once daily.",
            hours=24,
        )
    )
    result.append(
        controls.retention(
            facts,
            "10.5.1",
            "Audit log history retained 12 months",
            "Audit log history is retained for at least 12 months, with the most recent three months "
            "immediately available for analysis.",
            tag="pci_dss",
            required_days=365,
            require_history=True,
        )
    )
    return result
