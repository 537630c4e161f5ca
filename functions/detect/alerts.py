"""Reading and handling alerts (GET /alerts, PATCH /alerts/{alert_id}); no Lambda or HTTP here."""

from __future__ import annotations

from audit_common.api import AlertOut, AlertPage, AlertUpdate
from audit_common.cursor import decode_cursor, encode_cursor
from audit_common.db import Transport
from audit_common.errors import NotFound


def list_alerts(
    transport: Transport,
    *,
    status: str | None = None,
    severity: str | None = None,
    rule: str | None = None,
    key: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> AlertPage:
    """Alerts matching every filter, newest first."""
    rows = transport.call(
        "list_alerts",
        {
            "p_status": status,
            "p_severity": severity,
            "p_rule": rule,
            "p_alert_key": key,
            "p_limit": limit,
            "p_before": decode_cursor(cursor, {"before": str})["before"] if cursor else None,
        },
    )
    alerts = [AlertOut.model_validate(row) for row in rows or []]
    next_cursor = encode_cursor({"before": alerts[-1].created_at}) if len(alerts) == limit else None
    return AlertPage(alerts=alerts, next_cursor=next_cursor)


def update_alert(transport: Transport, alert_id: str, change: AlertUpdate, actor: str) -> AlertOut:
    """Acknowledge, resolve or reopen an alert, recording who did it and why."""
    row = transport.call(
        "update_alert_status",
        {"p_alert_id": alert_id, "p_status": change.status, "p_actor": actor, "p_note": change.note},
    )
    if row is None:
        raise NotFound(f"alert_id: no alert {alert_id}")
    return AlertOut.model_validate(row)
