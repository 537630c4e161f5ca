"""`make demo` plays its scenario end to end and ends with verification passing, then catching the tamper."""

from __future__ import annotations

import os

import pytest

from audit_common.db import reset_transport
from audit_common.settings import get_settings


def test_demo_scenario_raises_the_attacks_and_catches_the_tamper(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a fresh database, When the demo runs a short day, Then the three attacks alert and the tamper is named."""
    for name in ("DATABASE_URL", "AUDIT_WEBHOOK_SECRET", "AUDIT_EVENT_BUS_NAME", "AUDIT_ALERT_TOPIC_ARN"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # the demo sets these; restore them afterwards
    if not os.environ["DATABASE_URL"]:
        monkeypatch.delenv("DATABASE_URL")
    from demo.demo import run

    try:
        assert run(day_events=300, keep=False) is True
    finally:
        get_settings.cache_clear()
        reset_transport()
    out = capsys.readouterr().out
    for rule in ("brute_force", "privilege_escalation", "data_exfiltration"):
        assert rule in out
    assert "VALID" in out and "INVALID at seq" in out
