"""Build API Gateway REST (v1) proxy events and call a handler with them, as Lambda would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson


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
) -> dict[str, Any]:
    """A v1 proxy event; `path` may carry a query string."""
    parts = urlsplit(path)
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
