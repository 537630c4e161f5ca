"""Errors to HTTP answers, in one place for every API function.

Every error is `{"error": {"code", "message"}}` with the right status; refused input adds
`errors: [{"index", "field", "message"}]` naming each field. Never a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson
from aws_lambda_powertools.event_handler import Response, content_types

from audit_common.errors import AuditError, BadRequest, FieldError, InvalidInput
from audit_common.models import EVENT_ID_PATTERN, MAX_BATCH_EVENTS, NO_NUL_PATTERN

_UNION_TAGS: Final = frozenset({"batch", "event", "list"})
_MESSAGES: Final[dict[str, str]] = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this object",
    "too_long": f"has too many items (at most {MAX_BATCH_EVENTS} events per request)",
}
_PATTERN_MESSAGES: Final[dict[str, str]] = {
    NO_NUL_PATTERN: "must not contain NUL characters",
    EVENT_ID_PATTERN: "must be 1-255 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit",
}


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


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Translate pydantic/Powertools validation errors into `(index, field, message)` triples."""
    return [_field_error(error) for error in errors]


def validation_error_response(errors: Sequence[Any]) -> Response[Any]:
    """422 naming each refused field, or 400 when the body is not JSON at all."""
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "malformed")
            return error_response(BadRequest(f"body: not valid JSON ({detail})"))
    found = field_errors(errors)
    summary = "; ".join(f"{_label(e)}: {e.message}" for e in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    stored = "; nothing was stored" if any((e.get("loc") or ("body",))[0] == "body" for e in errors) else ""
    return error_response(InvalidInput(f"invalid request: {summary}{more}{stored}", errors=found))


def _label(error: FieldError) -> str:
    return error.field if error.index is None else f"events[{error.index}].{error.field}"


def _field_error(error: Any) -> FieldError:
    loc = list(error.get("loc") or ())
    source = loc.pop(0) if loc and loc[0] in ("body", "query", "path", "header") else "body"
    index: int | None = None
    if source == "body":
        tag = loc.pop(0) if loc and loc[0] in _UNION_TAGS else None
        if tag == "event":
            index = 0
        elif tag == "list" and loc and isinstance(loc[0], int):
            index = loc.pop(0)
        elif tag == "list":
            loc = ["events"]
        elif len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            index = loc[1]
            loc = loc[2:]
    field = _path(loc) or "body"
    return FieldError(field=field, message=_message(error), index=index)


def _path(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _message(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        return _PATTERN_MESSAGES.get(pattern, f"must match {pattern}")
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")
