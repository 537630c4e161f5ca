"""Property-based fuzz of the whole HTTP API against the committed OpenAPI document.

Schemathesis generates requests for every operation in docs/openapi.json (valid ones and, through
its negative mode, ones that break the schema) and sends them to `audit-trail local`, which runs the
real handlers on a real database. Each operation is called with the token of a role allowed on it
(audit_common.access.ROUTE_ROLES: the writer for POST /events, an auditor for reads, the admin for
erasure; none for the webhook, which carries its shared secret), so the fuzz reaches the handlers
rather than stopping at the authorizer. For every answer: no 5xx, no stack trace, JSON where JSON is
promised, the error envelope on every refusal, and a refused POST /events stores nothing (the
audit-of-the-audit records of reads and refusals are not counted: they are the API's own).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.e2e._stack import RunningStack, caller_event_count, start_stack

ROOT = Path(__file__).resolve().parents[2]
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")

WEBHOOK_SECRET_HEADER = "X-Audit-Webhook-Secret"
# Strings that betray an unhandled exception or an internal detail in an answer.
LEAKS = ("Traceback (most recent call last)", 'File "/', "psycopg.", "botocore.", "pydantic_core")


@pytest.fixture(scope="module")
def fuzz_stack(pg_admin_url: str) -> Iterator[RunningStack]:
    """One stack for the whole module (starting one per operation would dominate the run)."""
    from audit_trail.postgres import create_database, drop_database

    name = f"audit_fuzz_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name)
    data_dir = Path(tempfile.mkdtemp(prefix="audit-fuzz-"))
    running = start_stack(url, data_dir / "stack")
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        drop_database(pg_admin_url, name)


def _event_count(database_url: str) -> int:
    """Events stored by callers (the API's own records of reads and refusals left out)."""
    return caller_event_count(database_url)


# Explicit pytest parameters (one per operation) rather than `@schema.parametrize()`: under
# pytest-xdist, which `make test` uses, schemathesis' own collection ran one operation and reported
# the function as passed.
OPENAPI: dict[str, Any] = json.loads((ROOT / "docs" / "openapi.json").read_text())
OPERATIONS = sorted((method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item)


def _cases(method: str, path: str) -> st.SearchStrategy[Any]:
    operation = schema[path][method]
    # Requests the schema allows, and (negative mode) requests that break it.
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_never_fails_open(method: str, path: str, fuzz_stack: RunningStack) -> None:
    """Given any request the schema allows or breaks, then the API answers it cleanly."""

    @given(case=_cases(method, path))
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def answers_cleanly(case: Any) -> None:
        _check(case, fuzz_stack)

    answers_cleanly()


def _check(case: Any, fuzz_stack: RunningStack) -> None:
    """Call the operation twice: with the token of an allowed role (the answer must come from the
    handler), and, when schemathesis generated an Authorization header from the bearer scheme, with that
    header (a made-up token must be refused, 401 or 403, and store nothing)."""
    generated = dict(case.headers or {})
    token = fuzz_stack.tokens.for_route(case.method, case.operation.path)
    trusted = {**generated}
    if token is not None:
        trusted["Authorization"] = f"Bearer {token}"
    webhook_secret = (fuzz_stack.state.get("secrets") or {}).get("WebhookSecretArn")
    if case.operation.path == "/webhooks/supabase" and webhook_secret:
        trusted[WEBHOOK_SECRET_HEADER] = webhook_secret  # the webhook proves itself with it, not with a token

    response = _call(case, fuzz_stack, trusted)
    if token is not None:
        # The caller holds a role the route allows: a refusal would mean the fuzz stops at the authorizer.
        assert response.status_code not in (401, 403), f"{case.method} {case.formatted_path} refused: {response.text}"
    if token is not None and generated.get("Authorization", trusted["Authorization"]) != trusted["Authorization"]:
        forged = _call(case, fuzz_stack, generated)
        assert forged.status_code in (401, 403), (
            f"{case.method} {case.formatted_path} with a made-up token {generated['Authorization'][:60]!r}: "
            f"{forged.status_code} {forged.text[:300]}"
        )


def _call(case: Any, fuzz_stack: RunningStack, headers: dict[str, str]) -> Any:
    """Send the case with exactly these headers; check the answer is clean; return it."""
    writes_events = case.method.upper() == "POST" and case.path == "/events"
    before = _event_count(fuzz_stack.database_url) if writes_events else 0
    # Headers set on the case: schemathesis would otherwise keep the Authorization it generated.
    case.headers = headers
    response = case.call(base_url=fuzz_stack.api_url, timeout=60)
    text = response.text
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} (Authorization {headers.get('Authorization', '')[:80]!r}): "
        f"{response.status_code} {text[:500]}\n--- end of the stack's log ---\n{fuzz_stack.log()[-3000:]}"
    )
    for leak in LEAKS:
        assert leak not in text, f"{case.method} {case.formatted_path} leaks {leak!r}: {text[:500]}"
    content_type = response.headers.get("content-type") or [""]  # schemathesis: header -> list of values
    if content_type[0].startswith("application/json"):
        body = response.json()
        if response.status_code >= 400:
            assert isinstance(body, dict)
            assert {"code", "message"} <= set(body.get("error", {})), body
    if writes_events:
        after = _event_count(fuzz_stack.database_url)
        if response.status_code >= 400:
            assert after == before, f"a refused POST /events stored {after - before} event(s)"
        else:
            assert after - before == response.json()["created"]
    return response


def test_every_operation_is_fuzzed() -> None:
    """Guard: the parameter list really holds the API (a collection change must not empty it)."""
    assert ("POST", "/events") in OPERATIONS
    assert len(OPERATIONS) >= 16
