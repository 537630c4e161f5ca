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
