"""Which principal may call which route: one table, read by the authorizer and by the handlers.

The authorizer turns it into the IAM policy API Gateway enforces (so a writer's token cannot even
reach a read route), and the handlers check it again and narrow it by data (a `user` reads only
their own events), so a gap in one layer is not a gap in access. A route missing from the table is
refused to everyone: new routes are closed until someone decides who may call them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from audit_common.auth import AuditRole, Forbidden, Principal

_READERS: Final = frozenset({AuditRole.USER, AuditRole.AUDITOR, AuditRole.ADMIN})
_STAFF: Final = frozenset({AuditRole.AUDITOR, AuditRole.ADMIN})
_ADMIN: Final = frozenset({AuditRole.ADMIN})

ROUTE_ROLES: Final[Mapping[tuple[str, str], frozenset[AuditRole]]] = {
    ("POST", "/events"): frozenset({AuditRole.WRITER}),
    # Users get their own events only: the handler filters by subject and RLS enforces it again.
    ("GET", "/events"): _READERS,
    ("GET", "/events/{event_id}"): _READERS,
    ("GET", "/events/{event_id}/proof"): _READERS,
    ("GET", "/integrity/verify"): _STAFF,
    ("GET", "/integrity/consistency"): _STAFF,
    ("GET", "/alerts"): _STAFF,
    ("PATCH", "/alerts/{alert_id}"): _STAFF,
    ("POST", "/reports"): _STAFF,
    ("GET", "/reports"): _STAFF,
    ("GET", "/reports/{report_id}"): _STAFF,
    ("GET", "/analytics"): _STAFF,
    # GDPR Art. 15: a data subject may export their own data; the admin answers requests.
    ("GET", "/subjects/{user_id}/export"): frozenset({AuditRole.USER, AuditRole.ADMIN}),
    ("POST", "/subjects/{user_id}/erasure"): _ADMIN,
}
"""Roles allowed per (method, API Gateway resource path)."""

UNAUTHENTICATED_ROUTES: Final[Mapping[tuple[str, str], str]] = {
    ("POST", "/webhooks/supabase"): "the database webhook proves itself with its shared secret",
    ("GET", "/dashboard"): "a static page; it signs in with a Supabase JWT and calls the API with it",
}
"""Routes without the authorizer, each with the reason it is safe."""


def allowed_roles(method: str, resource: str) -> frozenset[AuditRole]:
    """The roles that may call `method resource` (empty for a route nobody was given)."""
    return ROUTE_ROLES.get((method.upper(), resource), frozenset())


def authorize(principal: Principal, method: str, resource: str) -> None:
    """Refuse (403) a principal whose role may not call this route."""
    if principal.role not in allowed_roles(method, resource):
        raise Forbidden(f"role {principal.role.value!r} may not call {method.upper()} {resource}")


def routes_for(role: AuditRole) -> list[tuple[str, str]]:
    """Every route a role may call, sorted (the authorizer's policy lists exactly these)."""
    return sorted(route for route, roles in ROUTE_ROLES.items() if role in roles)


def api_stage_arn(method_arn: str) -> str:
    """`arn:aws:execute-api:<region>:<account>:<api>/<stage>` of the ARN API Gateway gives an authorizer."""
    return "/".join(method_arn.split("/", 2)[:2])


def execute_api_arn(method_arn: str, method: str, resource: str) -> str:
    """The execute-api ARN of a route in the same API and stage as `method_arn`.

    `method_arn` is what API Gateway gives the authorizer
    (`arn:aws:execute-api:<region>:<account>:<api>/<stage>/<METHOD>/<path>`); path parameters
    become `*`, which IAM matches against the called path.
    """
    path = "/".join("*" if part.startswith("{") else part for part in resource.strip("/").split("/"))
    return f"{api_stage_arn(method_arn)}/{method.upper()}/{path}"
