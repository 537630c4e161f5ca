"""Changes administrators make in SQL (retention policies, legal holds) reach the chain through the sweep.

Given / When / Then against the real database: the changes are made as an administrator would (the SQL
API function for policies, plain SQL for holds), then the real sweep runs.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from audit_common.db import PostgresTransport
from detect.sweep import sweep


def chained(db: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    rows = db.execute(
        "select action, user_id, event_id from audit.audit_events where event_type = 'system_event' order by seq"
    ).fetchall()
    return [(str(a), str(u), str(e)) for a, u, e in rows]


def test_policy_changes_and_holds_are_chained_once_with_who_made_them(
    transport: PostgresTransport, db: psycopg.Connection[Any]
) -> None:
    transport.call(
        "set_retention_policy",
        {"p_scope": "compliance_tag", "p_scope_value": "pci_dss", "p_days": 400, "p_actor": "admin:dana"},
    )
    (hold_id,) = db.execute(
        "insert into audit.legal_holds (user_id, reason, created_by)"
        " values ('user-7', 'litigation 2026-114', 'admin:dana') returning hold_id"
    ).fetchone()  # type: ignore[misc]

    first = sweep(transport, None, batch=100, budget_seconds=30)

    assert first.admin_changes_chained == 2
    assert chained(db) == [
        ("retention_policy_change", "admin:dana", "retention-policy-change-1"),
        ("legal_hold_placed", "admin:dana", f"legal-hold-{hold_id}-placed"),
    ]
    details = db.execute("select details from audit.audit_events where action = 'retention_policy_change'").fetchone()[
        0
    ]  # type: ignore[index]
    assert (details["scope_value"], details["old_days"], details["new_days"]) == ("pci_dss", 365, 400)

    db.execute(
        "update audit.legal_holds set released_at = now(), released_by = 'admin:erin' where hold_id = %s", (hold_id,)
    )
    second = sweep(transport, None, batch=100, budget_seconds=30)
    assert second.admin_changes_chained == 1
    assert chained(db)[-1] == ("legal_hold_released", "admin:erin", f"legal-hold-{hold_id}-released")
    # the chained changes are analysed like any event: the watermark reaches them, and the
    # dashboard's rollups are kept warm up to the head
    assert second.watermark == second.head_seq == 3
    assert second.analytics_rolled_up_seq == 3
    assert db.execute("select rolled_up_seq from audit.analytics_state").fetchone() == (3,)

    assert sweep(transport, None, batch=100, budget_seconds=30).admin_changes_chained == 0
    assert len(chained(db)) == 3


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("delete from audit.legal_holds", "released, never deleted"),
        ("update audit.legal_holds set reason = 'something milder'", "only be released"),
        ("update audit.legal_holds set user_id = 'user-8', released_at = now(), released_by = 'x'", "only be released"),
        ("update audit.legal_holds set released_at = now()", "only be released"),
    ],
    ids=["delete", "edit", "edit-while-releasing", "release-without-who"],
)
def test_a_hold_can_only_be_released(db: psycopg.Connection[Any], statement: str, message: str) -> None:
    db.execute(
        "insert into audit.legal_holds (user_id, reason, created_by) values ('user-7', 'litigation', 'admin:dana')"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=message):
        db.execute(statement)


def test_a_released_hold_stays_released(db: psycopg.Connection[Any]) -> None:
    db.execute(
        "insert into audit.legal_holds (user_id, reason, created_by, released_at, released_by)"
        " values ('user-7', 'litigation', 'admin:dana', now(), 'admin:erin')"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="already released"):
        db.execute("update audit.legal_holds set released_at = now(), released_by = 'admin:frank'")
