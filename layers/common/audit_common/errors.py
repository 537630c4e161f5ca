"""Domain errors. Handlers map them to the API's error envelope in one place; logic raises them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One refused field: `index` is the event's position in a batch (None outside a batch)."""

    field: str
    message: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of the API's `errors` list."""
        return {"index": self.index, "field": self.field, "message": self.message}


class AuditError(Exception):
    """Base of every error the API answers with `{"error": {"code", "message"}}`."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(AuditError):
    """The request cannot be read at all (bad JSON, bad cursor)."""

    status = 400
    code = "bad_request"


class Unauthorized(AuditError):
    """No credentials, or credentials that do not verify (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(AuditError):
    """Verified credentials that do not allow this request (403)."""

    status = 403
    code = "forbidden"


class NotFound(AuditError):
    """The addressed resource does not exist (or the caller may not know it exists)."""

    status = 404
    code = "not_found"


class Conflict(AuditError):
    """The request contradicts stored state."""

    status = 409
    code = "conflict"


class PayloadTooLarge(AuditError):
    """The body exceeds what one request may carry."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AuditError):
    """A body sent with a Content-Type the route does not read (JSON only)."""

    status = 415
    code = "unsupported_media_type"


class InvalidInput(AuditError):
    """Well-formed JSON that breaks the event schema; `errors` names every refused field."""

    status = 422
    code = "invalid_input"


class ServiceUnavailable(AuditError):
    """The database (or another dependency) cannot be reached; the client should retry."""

    status = 503
    code = "service_unavailable"


class ConfigurationError(ServiceUnavailable):
    """The function is deployed without the settings it needs."""

    code = "not_configured"
