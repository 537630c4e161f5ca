"""HTTP plumbing shared by every API function: the resolver, errors to answers, body limits.

Every error is `{"error": {"code", "message"}}` with the right status; refused input adds
`errors: [{"index", "field", "message"}]` naming each field. Never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_common.api import ErrorResponse, inexact_number_errors
from audit_common.errors import AuditError, BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from audit_common.guard import admit, record_answer
from audit_common.headers import header
from audit_common.observability import logger, metrics, tracer
from audit_common.validation import invalid_input

MAX_BODY_BYTES: Final = 5 * 1024 * 1024
JsonBody = dict[str, Any] | list[Any] | str | int | float | bool
"""Any JSON value, for routes that validate their body themselves."""

ERROR_RESPONSES: Final[dict[int, OpenAPIResponse]] = {
    status: {
        "description": description,
        "content": {"application/json": {"schema": ErrorResponse.model_json_schema()}},
    }
    for status, description in (
        (400, "Unreadable request (bad JSON, bad cursor)"),
        (413, "Body larger than 5 MiB"),
        (415, "Body sent with a Content-Type other than application/json"),
        (422, "Refused input; `errors` names each field"),
        (503, "Event store unavailable; retry"),
    )
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


def validation_error_response(errors: Sequence[Any]) -> Response[Any]:
    """422 naming each refused field, or 400 when the body is not JSON at all."""
    for error in errors:
        if error.get("type") == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "malformed")
            return error_response(BadRequest(f"body: not valid JSON ({detail})"))
    return error_response(invalid_input(errors))


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_resolver() -> APIGatewayRestResolver:
    """A REST resolver with request validation, orjson both ways and the error envelope for everything."""
    app = APIGatewayRestResolver(enable_validation=True, serializer=_dumps, json_body_deserializer=orjson.loads)

    def invalid_request(exc: RequestValidationError) -> Response[Any]:
        errors = exc.errors()
        if any(error.get("type") == "json_invalid" for error in errors):
            # orjson refuses a number beyond the double range (1e400) as not JSON; name it like any
            # other number that cannot be stored exactly (docs/integrity.md, section 1).
            numbers = inexact_number_errors(app.current_event.decoded_body)
            if numbers:
                return error_response(invalid_input(numbers))
        return validation_error_response(errors)

    def domain_error(exc: AuditError) -> Response[Any]:
        return error_response(exc)

    def no_route(_exc: Exception) -> Response[Any]:
        return error_response(NotFound(f"no route {app.current_event.http_method} {app.current_event.path}"))

    def unexpected(_exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(AuditError("internal error; it has been logged"))

    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(AuditError)(domain_error)
    app.not_found(no_route)
    app.exception_handler(Exception)(unexpected)
    return app


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Admit the caller (before anything of the request is parsed), refuse an oversized body (that
    cost is what a flood wants us to pay) and a body that is not JSON (Powertools would try to parse
    forms itself, and fail with a 500), route, and record the access before answering."""
    try:
        principal = admit(event)
    except AuditError as refused:
        return proxy_error(refused)
    response = _checked_resolve(app, event, context)
    if principal is not None:
        try:
            record_answer(event, principal, int(response["statusCode"]), response.get("body"))
        except AuditError as unrecorded:
            # Fail closed: audit data is not served unless its access is on record.
            logger.error("access not recorded; answer withheld", extra={"error": unrecorded.message})
            return proxy_error(unrecorded)
    return response


def _checked_resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body") or ""
    if len(body) > MAX_BODY_BYTES:
        return proxy_error(PayloadTooLarge(f"body: {len(body)} bytes; the limit is {MAX_BODY_BYTES}; split the batch"))
    content_type = header(event.get("headers"), "content-type") or ""
    if body and content_type and not _is_json(content_type):
        return proxy_error(
            UnsupportedMediaType(f"Content-Type: {content_type!r} is not read here; send application/json")
        )
    if body and event.get("isBase64Encoded") and not _is_utf8_base64(body):
        return proxy_error(BadRequest("body: not UTF-8 text (JSON must be UTF-8, RFC 8259)"))
    return app.resolve(event, context)


def _is_utf8_base64(body: str) -> bool:
    # API Gateway base64-encodes bodies it cannot pass as text; JSON is UTF-8 or nothing.
    try:
        base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True


def api_lambda_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point of an API function: structured logs with the request's correlation id,
    X-Ray tracing, EMF metrics flushed per invocation, then `resolve`."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return resolve(app, event, context)

    return lambda_handler
