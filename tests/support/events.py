"""Realistic audit events for tests and benchmarks."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from audit_common.access_log import ACCESS_ACTIONS
from audit_common.admin_changes import ADMIN_CHANGE_ACTIONS

_TYPES = [
    "file_upload",
    "file_download",
    "file_access",
    "file_modify",
    "file_delete",
    "user_login",
    "file_share",
]
_DEPARTMENTS = ["finance", "legal", "engineering", "sales", "hr"]


def make_event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """One valid event as a client sends it; `n` varies ids and values deterministically."""
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=n + 1)),
        "timestamp": (datetime(2026, 11, 27, 8, 0, tzinfo=UTC) + timedelta(milliseconds=n)).isoformat(),
        "event_type": _TYPES[n % len(_TYPES)],
        "user_id": f"user-{n % 17}",
        "user_email": f"user{n % 17}@example.com",
        "session_id": f"sess-{n % 101}",
        "ip_address": f"10.0.{n % 250}.{(n * 7) % 250 + 1}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Files/3.2",
        "resource_path": f"/documents/{_DEPARTMENTS[n % 5]}/report-{n}.pdf",
        "resource_id": f"doc-{n}",
        "action": "upload_report",
        "status": "failure" if n % 23 == 0 else "success",
        "details": {
            "file_size": 1024 * (n % 500),
            "department": _DEPARTMENTS[n % 5],
            "mime": "application/pdf",
        },
        "security_level": ["low", "medium", "high", "critical"][n % 4],
        "compliance_tags": [["sox"], ["gdpr", "hipaa"], [], ["pci_dss"]][n % 4],
        "metadata": {"app": "files", "version": "3.2.1"},
    }
    event.update(overrides)
    return event


def realistic_details(rng: random.Random, n: int) -> dict[str, Any]:
    """A `details` object the size and shape a file-management app sends (~600 bytes)."""
    return {
        "file_size": rng.randint(1_000, 50_000_000),
        "department": rng.choice(_DEPARTMENTS),
        "mime_type": rng.choice(["application/pdf", "image/png", "text/csv", "application/zip"]),
        "sha256": uuid.UUID(int=rng.getrandbits(128)).hex * 2,
        "storage": {"bucket": "tenant-files", "region": "eu-west-1", "key": f"t/{n}/{uuid.UUID(int=n)}"},
        "request": {"method": "PUT", "status": 200, "duration_ms": round(rng.random() * 300, 3)},
        "tags": rng.sample(["q3", "board", "draft", "final", "pii", "contract"], 3),
        "shared_with": [f"user-{rng.randint(0, 500)}" for _ in range(rng.randint(0, 4))],
        "client": {"app": "files-web", "version": "3.2.1", "locale": rng.choice(["en-GB", "de-DE", "fr-FR"])},
    }


def event_count(conn: Any) -> int:
    """Rows in the event table (superuser connection)."""
    row = conn.execute("select count(*) from audit.audit_events").fetchone()
    return int(row[0])


TRAIL_ACTIONS = (*ACCESS_ACTIONS, *ADMIN_CHANGE_ACTIONS)
"""Actions of the events the trail records about itself: the API's use, and administrators' changes made in SQL."""


def app_event_count(conn: Any) -> int:
    """Rows in the event table that the applications sent, leaving out the trail's records of itself."""
    row = conn.execute(
        "select count(*) from audit.audit_events where coalesce(action, '') <> all(%s)", (list(TRAIL_ACTIONS),)
    ).fetchone()
    return int(row[0])


def access_records(conn: Any) -> list[dict[str, Any]]:
    """The API's access records in chain order: action, user_id (the principal), route and reason."""
    rows = conn.execute(
        "select action, user_id, details ->> 'route', details ->> 'reason', status from audit.audit_events"
        " where action = any(%s) order by seq",
        (list(ACCESS_ACTIONS),),
    ).fetchall()
    return [
        {"action": action, "principal": user_id, "route": route, "reason": reason, "status": status}
        for action, user_id, route, reason, status in rows
    ]


def one(conn: Any, query: str, params: Any = None) -> Any:
    """The single row a query must return (fails the test when there is none)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"no row from {query!r}"
    return row
