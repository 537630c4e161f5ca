"""SOX Section 404 IT general controls: access to financial data, permission changes, segregation of
duties, integrity and 7-year retention. SOX names no control ids, so these are this report's own."""

from __future__ import annotations

from reports import controls
from reports.facts import Facts
from reports.model import Integrity, Section, Status


def _permission_changes(facts: Facts) -> Section:
    """attention: an administrative action carries no compliance tag, or grants an admin-like role;
    pass: otherwise (including none at all)."""
    actions = facts.admin_actions
    total, untagged, admin = int(actions["total"]), int(actions["untagged"]), int(actions["grants_admin"])
    problems = []
    if untagged:
        problems.append(
            f"{controls.plural(untagged, 'administrative action')} of {total} carry no compliance tag "
            "(kept only by the default policy and invisible to tag-scoped review)"
        )
    if admin:
        problems.append(f"{controls.plural(admin, 'change')} granted an admin-like role")
    if problems:
        status, reason = Status.ATTENTION, "; ".join(problems).capitalize() + "."
    elif total:
        status, reason = (
            Status.PASS,
            f"{controls.plural(total, 'administrative action')}, all tagged, none granting admin.",
        )
    else:
        status, reason = Status.PASS, "No permission changes or administrative actions in the period."
    return Section(
        control_id="ITGC-CHG",
        title="Permission changes and administrative actions",
        requirement="Changes to access rights are authorised, recorded and reviewable.",
        status=status,
        status_reason=reason,
        metrics={
            "administrative_actions": total,
            "permission_changes": actions["permission_changes"],
            "untagged": untagged,
            "sox_tagged": actions["sox_tagged"],
            "grants_admin": admin,
            "failed": actions["failed"],
        },
        evidence=[controls.admin_actions_table(facts)],
    )


def _segregation(facts: Facts) -> Section:
    """fail: a conflict exists; attention: no sox-tagged events to assess; pass: none found."""
    sod = facts.sod_conflicts("sox")
    conflicts = int(sod["conflicts"])
    if conflicts:
        status = Status.FAIL
        reason = (
            f"{controls.plural(conflicts, 'segregation-of-duties conflict')} on financial data "
            f"({sod['create_and_approve']} create-and-approve, {sod['modify_and_delete']} modify-and-delete)."
        )
    elif int(facts.overview["tagged"]["sox"]) == 0:
        status, reason = Status.ATTENTION, "No events tagged sox, so segregation of duties could not be assessed."
    else:
        status = Status.PASS
        reason = (
            f"No user both created and approved, or modified and deleted, any of {sod['resources_checked']} resources."
        )
    return Section(
        control_id="ITGC-SOD",
        title="Segregation of duties",
        requirement=(
            "No one person both initiates and approves, or both changes and removes, the same financial record."
        ),
        status=status,
        status_reason=reason,
        metrics={
            "conflicts": conflicts,
            "create_and_approve": sod["create_and_approve"],
            "modify_and_delete": sod["modify_and_delete"],
            "resources_checked": sod["resources_checked"],
        },
        evidence=[
            controls.table(
                "Conflicts",
                ["user", "resource", "conflict", "events", "first", "last"],
                [
                    [c["user_id"], c["resource"], c["kind"], ", ".join(c["event_ids"]), c["first_at"], c["last_at"]]
                    for c in sod["rows"]
                ],
                conflicts,
            )
        ],
        notes=(
            "A conflict: on one resource (resource_id, else resource_path) of events tagged sox, one user succeeded "
            "at both creating (file_upload, folder_create, or an action create*/submit*/request*/prepare*/draft*) "
            "and approving (approve*/authorise*/authorize*/sign_off*/release*) it, or at both modifying "
            "(file_modify, or modify*/update*/edit*/change*) and deleting (file_delete, folder_delete, or "
            "delete*/remove*/void*) it."
        ),
    )


def sections(facts: Facts, integrity: Integrity) -> list[Section]:
    """The SOX sections."""
    return [
        controls.tag_access(
            facts,
            "sox",
            "ITGC-ACC",
            "Access to financial data",
            "Access to financial programs and data is restricted and recorded per user.",
            "financial data (events tagged sox)",
        ),
        _permission_changes(facts),
        _segregation(facts),
        controls.integrity_control(
            integrity,
            "ITGC-INT",
            "Integrity of the audit trail",
            "The records supporting financial reporting cannot be altered or removed unnoticed.",
        ),
        controls.retention(
            facts,
            "ITGC-RET",
            "Records retained 7 years",
            "Audit records supporting financial statements are kept for 7 years.",
            tag="sox",
            required_days=2555,
        ),
    ]
