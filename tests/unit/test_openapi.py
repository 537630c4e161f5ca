"""The committed OpenAPI document is what the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_document import render

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_openapi_is_current() -> None:
    """Given the resolver's routes and models, When the document is generated, Then it equals docs/openapi.json."""
    assert json.loads(render()) == json.loads(COMMITTED.read_text()), "docs/openapi.json is stale: run `make openapi`"


def test_openapi_documents_every_route_and_the_error_envelope() -> None:
    """Given the document, When read, Then every route is there and errors use the envelope schema."""
    document = json.loads(render())
    assert set(document["paths"]) == {
        "/events",
        "/events/{event_id}",
        "/integrity/verify",
        "/events/{event_id}/proof",
        "/integrity/consistency",
        "/webhooks/supabase",
        "/alerts",
        "/alerts/{alert_id}",
        "/subjects/{user_id}/export",
        "/subjects/{user_id}/erasure",
        "/reports",
        "/reports/{report_id}",
        "/analytics",
        "/dashboard",
    }
    assert set(document["paths"]["/events"]) == {"get", "post"}
    post = document["paths"]["/events"]["post"]
    assert {"201", "200", "422", "400", "413", "503"} <= set(post["responses"])
    assert "ErrorResponse" in json.dumps(post["responses"]["422"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]


def test_openapi_says_who_may_call_each_operation() -> None:
    """Given the route table the authorizer enforces, then every operation names its roles and its refusals,
    and only the self-authenticating routes are published without the bearer scheme."""
    from audit_common.access import ROUTE_ROLES, UNAUTHENTICATED_ROUTES

    document = json.loads(render())
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == set(ROUTE_ROLES) | set(UNAUTHENTICATED_ROUTES)
    for route, operation in operations.items():
        if route in UNAUTHENTICATED_ROUTES:
            assert operation["security"] == [], route
            continue
        assert operation["security"] == [{"bearer": []}], route
        assert operation["x-audit-roles"] == sorted(role.value for role in ROUTE_ROLES[route]), route
        assert {"401", "403"} <= set(operation["responses"]), route
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
