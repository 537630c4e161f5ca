"""The route table: every API route has an owner, writers only write, and the ARNs match API Gateway's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]

from audit_common.access import (
    ROUTE_ROLES,
    UNAUTHENTICATED_ROUTES,
    allowed_roles,
    authorize,
    execute_api_arn,
    routes_for,
)
from audit_common.auth import AuditRole, Forbidden, Principal
from authorizer.policy import allow, deny

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/GET/events/evt-1"


def _template_routes() -> set[tuple[str, str]]:
    template, matches = decode(str(TEMPLATE))
    assert not matches
    routes: set[tuple[str, str]] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        events: dict[str, Any] = resource["Properties"].get("Events") or {}
        for event in events.values():
            if event["Type"] == "Api":
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def test_every_api_route_in_the_template_has_a_rule() -> None:
    """Given the template's routes, then each is either in the role table or documented as unauthenticated."""
    unruled = _template_routes() - set(ROUTE_ROLES) - set(UNAUTHENTICATED_ROUTES)
    assert not unruled, f"routes nobody decided access for: {sorted(unruled)}"


def test_writers_may_only_post_events() -> None:
    assert routes_for(AuditRole.WRITER) == [("POST", "/events")]


def test_only_admins_erase() -> None:
    assert allowed_roles("POST", "/subjects/{user_id}/erasure") == {AuditRole.ADMIN}


def test_users_never_reach_staff_routes() -> None:
    user_routes = set(routes_for(AuditRole.USER))
    assert ("GET", "/alerts") not in user_routes
    assert ("POST", "/reports") not in user_routes
    assert ("GET", "/integrity/verify") not in user_routes
    assert ("POST", "/events") not in user_routes


def test_unknown_routes_are_closed_to_everyone() -> None:
    for role in AuditRole:
        with pytest.raises(Forbidden):
            authorize(Principal(subject="x", role=role), "DELETE", "/events/{event_id}")


def test_authorize_names_the_role_and_route() -> None:
    with pytest.raises(Forbidden, match=r"'writer' may not call GET /alerts"):
        authorize(Principal(subject="app", role=AuditRole.WRITER), "get", "/alerts")
    authorize(Principal(subject="a", role=AuditRole.AUDITOR), "get", "/alerts")


@pytest.mark.parametrize(
    ("method", "resource", "arn"),
    [
        ("POST", "/events", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/POST/events"),
        (
            "GET",
            "/events/{event_id}/proof",
            "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/GET/events/*/proof",
        ),
        ("PATCH", "/alerts/{alert_id}", "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/PATCH/alerts/*"),
    ],
)
def test_execute_api_arn_keeps_api_and_stage(method: str, resource: str, arn: str) -> None:
    assert execute_api_arn(METHOD_ARN, method, resource) == arn


def test_allow_policy_lists_exactly_the_roles_routes_and_the_principal() -> None:
    principal = Principal(subject="checkout-service", role=AuditRole.WRITER, token_id="abcdefghijkl")
    answer = allow(principal, METHOD_ARN)
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/POST/events"]
    assert answer["principalId"] == "writer:checkout-service"
    assert answer["context"] == {"subject": "checkout-service", "role": "writer", "token_id": "abcdefghijkl"}


def test_deny_policy_covers_the_whole_api() -> None:
    (statement,) = deny("anonymous", METHOD_ARN)["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Deny",
        "Resource": "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/*",
    }
