"""The API functions' own lock: who is calling, may they call this route, and the record of it.

API Gateway runs the Lambda authorizer first (functions/authorizer), whose policy already names
only the routes of the caller's role. Every API function checks again, from the same table
(`audit_common.access`), before it parses anything: a route accidentally left without the
authorizer in the template, or a policy API Gateway cached from before a change, does not open it.
Handlers then narrow by data (a `user` sees only their own events, through row level security),
and every access to audit data, and every refusal, is recorded in the chain
(`audit_common.access_log`, PCI DSS 10.2.1.3 and 10.2.1.4) before the answer leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from audit_common.access import UNAUTHENTICATED_ROUTES, authorize
from audit_common.access_log import AUDIT_CHANGE, AUDIT_READ, AccessRequest, record_access
from audit_common.auth import AuditRole, Principal, bearer_token, is_writer_token
from audit_common.db import DatabaseUser, Transport, as_user, get_transport
from audit_common.errors import Forbidden, Unauthorized
from audit_common.headers import header

SELF_RECORDED: Final[Mapping[tuple[str, str], str]] = {
    ("POST", "/events"): "the writer's events are themselves the record",
    ("POST", "/reports"): "the report service records `report_generated` with the requester",
    ("GET", "/subjects/{user_id}/export"): "the GDPR service records `gdpr_export` with the requester",
    ("POST", "/subjects/{user_id}/erasure"): "the GDPR service records `gdpr_erasure` with the requester",
}
"""Authenticated routes whose service writes its own, richer chain event; recording again would double it."""


def request_route(event: Mapping[str, Any]) -> tuple[str, str]:
    """(METHOD, API Gateway resource path) of a proxy or REQUEST-authorizer event."""
    context = event.get("requestContext") or {}
    method = str(event.get("httpMethod") or context.get("httpMethod") or "").upper()
    return method, str(event.get("resource") or context.get("resourcePath") or "")


def request_principal(event: Mapping[str, Any]) -> Principal | None:
    """The principal the authorizer put in `requestContext.authorizer`, or None when there is none."""
    context = (event.get("requestContext") or {}).get("authorizer") or {}
    subject, role = context.get("subject"), str(context.get("role"))
    if not subject or role not in {member.value for member in AuditRole}:
        return None
    return Principal(
        subject=str(subject),
        role=AuditRole(role),
        email=str(context["email"]) if context.get("email") else None,
        token_id=str(context["token_id"]) if context.get("token_id") else None,
    )


def access_request(event: Mapping[str, Any]) -> AccessRequest:
    """What the access record says about the request."""
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    method, resource = request_route(event)
    return AccessRequest(
        request_id=str(context.get("requestId") or "unknown"),
        method=method,
        path=str(event.get("path") or resource),
        resource=resource,
        query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
        source_ip=identity.get("sourceIp"),
        user_agent=identity.get("userAgent") or header(event.get("headers"), "user-agent"),
    )


def admit(event: Mapping[str, Any], transport: Transport | None = None) -> Principal | None:
    """The caller of an authenticated route, checked against the route table; None for the routes
    that authenticate themselves (the webhook's secret, the dashboard page).

    A refusal is recorded in the chain, then raised (401 without a principal, 403 for a role the
    route does not admit).
    """
    method, resource = request_route(event)
    if (method, resource) in UNAUTHENTICATED_ROUTES:
        return None
    principal = request_principal(event)
    try:
        if principal is None:
            raise Unauthorized("no authenticated caller: this route is reached only through the API's authorizer")
        authorize(principal, method, resource)
    except (Unauthorized, Forbidden) as refused:
        record_access(transport or get_transport(), access_request(event), principal, refused_because=refused.message)
        raise
    return principal


def record_answer(
    event: Mapping[str, Any], principal: Principal, status: int, body: str | None, transport: Transport | None = None
) -> None:
    """Record what an admitted call got: a read or a change of audit data, or a refusal the handler made (403).

    Other errors (404, 422, 5xx) served no audit data and are in the access log, not the chain.
    """
    method, resource = request_route(event)
    request = access_request(event)
    if status == 403:
        record_access(transport or get_transport(), request, principal, refused_because=_message(body))
    elif status < 400 and (method, resource) not in SELF_RECORDED:
        action = AUDIT_READ if method == "GET" else AUDIT_CHANGE
        record_access(transport or get_transport(), request, principal, action=action, facts={"status": status})


def _message(body: str | None) -> str:
    try:
        return str(orjson.loads(body or "null")["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "refused"


def caller(app: APIGatewayRestResolver) -> Principal:
    """The admitted principal of the request being handled (handlers of authenticated routes only)."""
    principal = request_principal(app.current_event.raw_event)
    if principal is None:  # admit() let the request through, so this is a programming error
        raise Unauthorized("no authenticated caller")
    return principal


def database_claims(principal: Principal) -> dict[str, Any]:
    """The JWT claims RLS sees for a principal, shaped as Supabase Auth issues them."""
    claims: dict[str, Any] = {"sub": principal.subject, "role": "authenticated", "aud": "authenticated"}
    if principal.is_staff:
        claims["app_metadata"] = {"audit_role": principal.role.value}
    return claims


def reader_transport(app: APIGatewayRestResolver) -> Transport:
    """The transport for reading events on behalf of the caller: as the signed-in user, so the
    database's row level security bounds what a bug in this code could return."""
    principal = caller(app)
    if principal.role is AuditRole.WRITER:
        raise Forbidden("writers may not read audit data")
    token = None
    authorization = header(app.current_event.headers, "authorization")
    if authorization:
        candidate = bearer_token(authorization)
        token = None if is_writer_token(candidate) else candidate
    return as_user(get_transport(), DatabaseUser(claims=database_claims(principal), token=token))


def own_subject(principal: Principal, user_id: str | None, field: str = "user_id") -> str | None:
    """The user filter a principal may use: staff any (or none); a user only their own id."""
    if principal.is_staff:
        return user_id
    if user_id is not None and user_id != principal.subject:
        raise Forbidden(f"{field}: a user may read only their own events")
    return principal.subject
