"""A working day of a file-management app, and three attacks on it: the events the demo sends.

Reproducible from a seed. The day spreads thousands of ordinary events over dozens of people in six
departments; then one address sprays passwords across 25 accounts, an insider downloads 60 finance
files in 20 minutes, and a contractor grants themselves the admin role. Each attack is shaped to trip
one detection rule (brute_force and multiple_failed_logins, data_exfiltration, privilege_escalation)
and the day is not.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

DEPARTMENTS: Final = ["finance", "legal", "engineering", "sales", "hr", "marketing"]
# An ordinary day is mostly reading: opening and downloading files, some edits and shares, logins.
DAY_TYPES: Final = (
    ["file_access"] * 10
    + ["file_download"] * 4
    + ["file_upload"] * 2
    + ["file_modify"] * 2
    + ["file_share", "folder_create", "file_delete", "user_login", "user_logout"]
)
ACTIONS: Final = {
    "file_access": "open",
    "file_download": "download",
    "file_upload": "upload",
    "file_modify": "save",
    "file_share": "share_link",
    "folder_create": "create_folder",
    "file_delete": "move_to_trash",
    "user_login": "login",
    "user_logout": "logout",
}
EXTENSIONS: Final = {"finance": "xlsx", "legal": "docx", "engineering": "md", "sales": "pptx", "hr": "pdf"}
COMPLIANCE: Final = {"finance": ["sox"], "hr": ["gdpr"], "legal": ["gdpr"]}
SPRAY_IP: Final = "203.0.113.66"


@dataclass(frozen=True)
class Chapter:
    """One part of the story and the events that tell it."""

    title: str
    events: list[dict[str, Any]]
    expect: tuple[str, ...] = ()
    """Detection rules this chapter should trip."""


class People:
    """The staff: a stable id, email, department, workstation address and browser per person."""

    def __init__(self, count: int) -> None:
        self.count = count

    def department(self, person: int) -> str:
        """Where the person works."""
        return DEPARTMENTS[person % len(DEPARTMENTS)]

    def identity(self, person: int) -> dict[str, Any]:
        """The fields every event of this person carries."""
        return {
            "user_id": f"user-{person:03d}",
            "user_email": f"user{person:03d}@files.example",
            "ip_address": f"10.20.{person % 50}.{person % 200 + 10}",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) FilesWeb/4.2"
            if person % 3
            else "Mozilla/5.0 (Windows NT 10.0; Win64; x64) FilesWeb/4.2",
        }


def _event(people: People, person: int, at: datetime, rng: random.Random, **fields: Any) -> dict[str, Any]:
    dept = people.department(person)
    kind = fields.pop("event_type", None) or rng.choice(DAY_TYPES)
    number = rng.randint(1, 400)
    path = f"/{dept}/{rng.choice(['reports', 'shared', 'archive', 'projects'])}/{number}.{EXTENSIONS.get(dept, 'pdf')}"
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": at.isoformat(),
        "event_type": kind,
        **people.identity(person),
        "session_id": f"sess-{person:03d}-{at:%Y%m%d}-{at.hour // 4}",
        "resource_path": None if kind in ("user_login", "user_logout") else path,
        "resource_id": None if kind in ("user_login", "user_logout") else f"doc-{dept}-{number}",
        "action": ACTIONS.get(kind, kind),
        "status": "success",
        "details": {
            "department": dept,
            "file_size": rng.randint(2_000, 40_000_000),
            "client": {"app": "files-web", "version": "4.2.1"},
        },
        "security_level": "medium" if dept in ("finance", "legal", "hr") else "low",
        "compliance_tags": COMPLIANCE.get(dept, []),
        "metadata": {"tenant": "acme", "region": "eu-west-1"},
    }
    if kind == "file_share":
        event["details"]["shared_with"] = [f"user-{rng.randrange(people.count):03d}"]
    event.update(fields)
    return event


def working_day(
    day_events: int = 3000, users: int = 40, seed: int = 20261127, now: datetime | None = None
) -> list[Chapter]:
    """The story in chapters; every timestamp lies in the last nine hours before `now`."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible story, not a secret
    people = People(users)
    start = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(hours=9)

    day = [
        _event(people, rng.randrange(users), start + timedelta(seconds=rng.randint(0, 8 * 3600)), rng)
        for _ in range(day_events)
    ]
    # Two people mistype their password once each: failures that must not raise an alert.
    for person in (3, 11):
        at = start + timedelta(hours=1, minutes=person)
        day.append(
            _event(
                people, person, at, rng, event_type="user_login", status="failure", details={"reason": "bad_password"}
            )
        )
    day.sort(key=lambda e: e["timestamp"])

    spray_at = start + timedelta(hours=8, minutes=10)
    spray = [
        _event(
            people,
            person,
            spray_at + timedelta(seconds=7 * person),
            rng,
            event_type="user_login",
            status="failure",
            ip_address=SPRAY_IP,
            user_agent="python-requests/2.31",
            security_level="high",
            details={"reason": "bad_password", "mfa": False},
        )
        for person in range(25)
    ]
    # The same address then tries one account over and over.
    spray += [
        _event(
            people,
            5,
            spray_at + timedelta(minutes=4, seconds=5 * attempt),
            rng,
            event_type="user_login",
            status="failure",
            ip_address=SPRAY_IP,
            user_agent="python-requests/2.31",
            security_level="high",
            details={"reason": "bad_password", "mfa": False},
        )
        for attempt in range(6)
    ]

    insider = 7
    bulk_at = start + timedelta(hours=8, minutes=20)
    bulk = [
        _event(
            people,
            insider,
            bulk_at + timedelta(seconds=20 * i),
            rng,
            event_type="file_download",
            resource_path=f"/finance/ledger/{2020 + i % 6}/q{i % 4 + 1}-{i}.xlsx",
            resource_id=f"ledger-{i}",
            security_level="high",
            compliance_tags=["sox"],
        )
        for i in range(60)
    ]

    contractor = 33
    escalation = [
        _event(
            people,
            contractor,
            start + timedelta(hours=8, minutes=45),
            rng,
            event_type="permission_change",
            action="grant_role",
            resource_path="/admin/roles",
            resource_id="role-admin",
            security_level="high",
            compliance_tags=["sox", "iso_27001"],
            details={"target_user": f"user-{contractor:03d}", "role": "admin", "previous_role": "viewer"},
        )
    ]
    return [
        Chapter(f"A working day: {len(day):,} events from {users} people", day),
        Chapter(
            f"Password spraying: {SPRAY_IP} tries 25 accounts, then one account 6 times",
            spray,
            ("brute_force", "multiple_failed_logins"),
        ),
        Chapter("An insider downloads 60 finance files in 20 minutes", bulk, ("data_exfiltration",)),
        Chapter("A contractor grants themselves the admin role", escalation, ("privilege_escalation",)),
    ]


def batches(events: list[dict[str, Any]], size: int = 500) -> Iterator[list[dict[str, Any]]]:
    """The events in request-sized slices."""
    for offset in range(0, len(events), size):
        yield events[offset : offset + size]
