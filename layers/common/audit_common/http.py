"""Errors to HTTP answers, in one place for every API function.

Every error is `{"error": {"code", "message"}}` with the right status; refused input adds
`errors: [{"index", "field", "message"}]` naming each field. Never a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aws_lambda_powertools.event_handler import Response, content_types

from audit_common.errors import AuditError, BadRequest
from audit_common.validation import invalid_input


def error_body(exc: AuditError) -> dict[str, Any]:
    """The JSON body for a domain error."""
    body: dict[str, Any] = {"error": {"code": exc.code, "message": exc.message}}
    if exc.errors:
        body["errors"] = [error.as_dict() for error in exc.errors]
    return body


def error_response(exc: AuditError) -> Response[Any]:
    """A Powertools response for a domain error."""
    return Response(status_code=exc.status, content_type=content_types.APPLICATION_JSON, body=error_body(exc))


def proxy_error(exc: AuditError) -> dict[str, Any]:
    """An API Gateway proxy response for errors raised before routing (e.g. an oversized body)."""
    return {
        "statusCode": exc.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": orjson.dumps(error_body(exc)).decode(),
        "isBase64Encoded": False,
    }


def validation_error_response(errors: Sequence[Any]) -> Response[Any]:
    """422 naming each refused field, or 400 when the body is not JSON at all."""
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "malformed")
            return error_response(BadRequest(f"body: not valid JSON ({detail})"))
    return error_response(invalid_input(errors))
