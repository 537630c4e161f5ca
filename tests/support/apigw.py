"""Build API Gateway REST (v1) proxy events and call a handler with them, as Lambda would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import orjson

from audit_common.access import ROUTE_ROLES, UNAUTHENTICATED_ROUTES, allowed_roles
from audit_common.auth import AuditRole, Principal

AUTO: Literal["auto"] = "auto"


def route_template(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The API Gateway resource a concrete path matches (`/events/e-1` -> `/events/{event_id}`), with
    its path parameters, as API Gateway routes it; None for a path no route has."""
    segments = path.strip("/").split("/")
    for route_method, resource in [*ROUTE_ROLES, *UNAUTHENTICATED_ROUTES]:
        parts = resource.strip("/").split("/")
        if route_method != method.upper() or len(parts) != len(segments):
            continue
        parameters: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                parameters[part[1:-1]] = segment
            elif part != segment:
                break
        else:
            return resource, parameters
    return None


def default_principal(method: str, resource: str) -> Principal | None:
    """Who a test calls a route as unless it says otherwise: the writer for POST /events, else an
    admin (who may call every other route), nobody on the routes that authenticate themselves."""
    if (method.upper(), resource) in UNAUTHENTICATED_ROUTES:
        return None
    roles = allowed_roles(method, resource)
    role = AuditRole.WRITER if AuditRole.WRITER in roles else AuditRole.ADMIN
    return Principal(subject="tests", role=role)


def authorizer_context(principal: Principal) -> dict[str, Any]:
    """`requestContext.authorizer` as API Gateway passes the Lambda authorizer's answer on."""
    context: dict[str, Any] = {
        "principalId": principal.label,
        "subject": principal.subject,
        "role": principal.role.value,
    }
    if principal.email:
        context["email"] = principal.email
    if principal.token_id:
        context["token_id"] = principal.token_id
    return context


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from the Lambda context."""

    function_name: str = "ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ingest"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class ApiResponse:
    """A proxy response with its body decoded."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: str


def proxy_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    principal: Principal | Literal["auto"] | None = AUTO,
) -> dict[str, Any]:
    """A v1 proxy event; `path` may carry a query string. `principal` is the caller the authorizer
    admitted (`auto`: see `default_principal`; None: no authorizer context at all)."""
    parts = urlsplit(path)
    if resource is None and (matched := route_template(method, parts.path)) is not None:
        resource, found_parameters = matched
        path_parameters = path_parameters or found_parameters or None
    if principal == AUTO:
        principal = default_principal(method, resource or parts.path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if raw_body is None and body is not None:
        raw_body = orjson.dumps(body).decode()
    all_headers = {"Content-Type": "application/json", "User-Agent": "tests", **(headers or {})}
    return {
        "resource": resource or parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": dict(query) or None,
        "multiValueQueryStringParameters": ({k: [v for kk, v in query if kk == k] for k, _ in query} or None),
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "resourcePath": resource or parts.path,
            "httpMethod": method,
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "tests"},
            "requestTimeEpoch": 1_795_766_400_000,
            **({"authorizer": authorizer_context(principal)} if isinstance(principal, Principal) else {}),
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


def invoke(handler: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any]) -> ApiResponse:
    """Call the handler and decode its JSON body."""
    response = handler(event, FakeLambdaContext())
    raw = response.get("body") or ""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return ApiResponse(status=response["statusCode"], headers=headers, body=json.loads(raw) if raw else None, raw=raw)
