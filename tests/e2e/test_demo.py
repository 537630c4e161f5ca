"""`audit-trail demo` (and `make demo`) plays its story through a local stack and catches the tamper."""

from __future__ import annotations

import io
from pathlib import Path

from audit_trail.local.demo import DemoOptions, run_demo


def test_the_demo_raises_the_attacks_and_catches_the_tamper(pg_admin_url: str, tmp_path: Path) -> None:
    """Given a fresh database, When the demo plays a short day, Then the attacks alert and the tamper is named."""
    out = io.StringIO()

    ok = run_demo(DemoOptions(day_events=300, users=20, database_url=pg_admin_url, data_dir=tmp_path, out=out))

    text = out.getvalue()
    assert ok is True, text
    # The story is told with the credentials real callers hold: a writer token in, an auditor's token out.
    assert "tokens    a writer token for the app (files-web), an auditor's access token for reading" in text
    for rule in ("brute_force", "multiple_failed_logins", "data_exfiltration", "privilege_escalation"):
        assert rule in text
    assert "events valid" in text
    assert "was caught" in text
    assert "local stack stopped (exit status 0)" in text
    # access control, shown with the same tokens: refusals, a user scoped to themselves, the records
    assert "the app's writer token reads GET /events: 403" in text
    assert "a forged token (alg: none): 401" in text
    assert "user-007 signed in reads GET /events:" in text and "all their own" in text
    assert "asks for user-005's events: 403 (user_id: a user may read only their own events)" in text
    assert "3 refusals recorded" in text
    if "Anchoring the chain" in text:
        assert "1/1 digests valid" in text
        assert "the database alone cannot tell a consistent rewrite from the truth; the signed digest can" in text
    if "Compliance report (POST /reports)" in text:
        assert "matches the SHA-256 recorded with the report" in text
