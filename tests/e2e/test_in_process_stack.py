"""The local stack as a library (`LocalStack`), the way the SDK's tests run it: in this process, free ports."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from audit_trail.local import LocalStack
from audit_trail.local.scenario import working_day
from audit_trail.local.tokens import NoJwtSecret, bearer
from tests.e2e._stack import caller_event_count


def test_an_in_process_stack_serves_pauses_resumes_and_restores_the_environment(
    e2e_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a LocalStack on free ports, When its API is paused and resumed, Then requests fail while paused,
    succeed again after, and stopping the stack puts the process environment back as it was."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://example.invalid")
    events = working_day(day_events=5, users=3, seed=1)[0].events

    with LocalStack(database_url=e2e_database, port=0, data_dir=tmp_path, write_state=False) as stack:
        assert os.environ["AWS_ENDPOINT_URL"] == stack.moto_endpoint
        writer = bearer(stack.token("writer"))
        try:
            auditor = bearer(stack.token("auditor"))
        except NoJwtSecret:  # a template without the JWT authorizer checks no access tokens
            auditor = {}
        assert httpx.post(f"{stack.api_url}/events", json={"events": events[:3]}, headers=writer).status_code == 201

        stack.pause_api()
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{stack.api_url}/events", json={"events": events[3:]}, headers=writer)
        stack.resume_api()

        assert httpx.post(f"{stack.api_url}/events", json={"events": events[3:]}, headers=writer).status_code == 201
        assert httpx.get(f"{stack.api_url}/integrity/verify", headers=auditor).json()["valid"] is True
        assert caller_event_count(e2e_database) == len(events)

    assert os.environ["AWS_ENDPOINT_URL"] == "http://example.invalid"
    assert "AUDIT_DATABASE_URL" not in os.environ or os.environ["AUDIT_DATABASE_URL"] != e2e_database
    assert not (tmp_path / "local-stack.json").exists()
