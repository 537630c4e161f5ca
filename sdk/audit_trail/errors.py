"""Errors the SDK raises to the application (and the ones senders raise to the flusher)."""

from __future__ import annotations


class AuditTrailError(Exception):
    """Base of every SDK error."""


class BufferFullError(AuditTrailError):
    """`overflow_policy="block"` waited `block_timeout_seconds` for room in vain: the event was not kept."""


class LoggerClosedError(AuditTrailError):
    """The logger was closed; it accepts no more events."""


class NotAvailableError(AuditTrailError):
    """The operation does not exist for this configuration; the message says what to do instead."""


class APIError(AuditTrailError):
    """The audit trail answered with an error (`{"error": {"code", "message"}}`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class DeliveryError(AuditTrailError):
    """A batch could not be delivered. `retryable`: try again later; otherwise the request itself is refused.

    `rejected` lists the positions of the refused events when the destination named them (HTTP 422).
    `too_large`: the request was over the size limit (HTTP 413): split it.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        rejected: list[int] | None = None,
        too_large: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.rejected = rejected
        self.too_large = too_large
        self.retry_after = retry_after


WRITE_CREDENTIAL_SETTING = "api_key/AUDIT_API_KEY"
READ_CREDENTIAL_SETTING = "read_api_key/AUDIT_READ_TOKEN (else api_key/AUDIT_API_KEY)"


class AuthenticationError(APIError, DeliveryError):
    """The API refused our credentials (HTTP 401: no or bad token; 403: the token's role may not call the route).

    A configuration error, not an outage: the message names the setting to check. Raised by reads and
    by `initialize()`; on delivery the flusher keeps the events and retries them with a long capped
    backoff (a token registered or rotated server-side heals it), logging one ERROR per burst.
    """

    def __init__(self, status: int, code: str, message: str, *, setting: str = WRITE_CREDENTIAL_SETTING) -> None:
        reason = "no valid token" if status == 401 else "the token's role may not call this route"
        # Both bases' __init__ chain through super() with different signatures: set their fields here.
        AuditTrailError.__init__(self, f"{status} {code}: {message} ({reason}: check {setting})")
        self.status = status
        self.code = code
        self.message = message
        self.setting = setting
        # As a DeliveryError: retried (never set aside), with the flusher's credential backoff.
        self.retryable = True
        self.rejected = None
        self.too_large = False
        self.retry_after = None
