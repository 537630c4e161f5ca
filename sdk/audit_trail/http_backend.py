"""The HTTP API as a backend: `POST /events` in batches, `GET /events`, `GET /alerts`, `POST /reports`.

httpx rather than requests or urllib: one well-kept client with connection pooling, timeouts per
phase, a thread-safe `Client` (the flusher thread and application threads share one pool) and a
`MockTransport` that lets the unit tests exercise every status code without a socket. The SDK uses
the synchronous client only: async methods of the logger hand blocking calls to a worker thread, so
one client serves both styles and nothing is bound to the event loop that created the logger (the
seed creates loggers with `asyncio.run(...)` and uses them from another loop).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import httpx
import orjson

from audit_common.api import AlertPage, EventPage, IngestResponse, StoredEvent
from audit_common.models import AuditEventIn, ComplianceStandard
from audit_trail.errors import (
    READ_CREDENTIAL_SETTING,
    WRITE_CREDENTIAL_SETTING,
    APIError,
    AuthenticationError,
    DeliveryError,
    NotAvailableError,
)

if TYPE_CHECKING:
    from audit_common.api import AlertOut, EventResult
    from audit_trail.config import AuditConfig

USER_AGENT: Final = "audit-trail-sdk/0.1"
# Statuses that say "this request is wrong" (retrying the same bytes cannot help). Everything else
# (timeouts, 408, 429, 5xx, 404 during a deploy) is retried. 401/403 say "these credentials are
# wrong": an AuthenticationError, which the flusher retries slowly and reports as a configuration error.
_REFUSED: Final = frozenset({400, 413, 422})
_CREDENTIALS_REFUSED: Final = frozenset({401, 403})

RETENTION_OVER_HTTP: Final = (
    "the HTTP API has no retention route: retention runs nightly (the RetentionNightly function, 02:00 UTC). "
    'To run it now, invoke that function with {"action": "retention"} (aws lambda invoke), or '
    "`audit-trail invoke retention` against the local stack, or configure the SDK with database_url "
    "and archive_bucket to run it in-process"
)


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("dates must carry a time zone (e.g. datetime.now(timezone.utc))")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error_message(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "http_error", response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", "http_error")), str(error.get("message", ""))
    return "http_error", str(body)[:200]


def _refused_positions(response: httpx.Response) -> list[int] | None:
    """The batch positions a 422 names (`errors[].index`); None when it names none (then the batch is bisected)."""
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return None
    indexes = {error.get("index") for error in errors if isinstance(error, dict)}
    return sorted(i for i in indexes if isinstance(i, int)) or None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class HttpBackend:
    """Talks to the audit trail's HTTP API with bearer tokens.

    Writing (`POST /events`) uses `api_key`, a writer token; the API lets writers do nothing else.
    Reading (events, alerts, reports) uses `read_api_key` (an auditor's or a user's access token)
    when it is set, else `api_key`, for deployments where one token may do both.
    """

    def __init__(self, config: AuditConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        if not config.api_url:
            raise ValueError("HttpBackend needs api_url")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        self._write_auth: dict[str, str] = {}
        self._read_auth: dict[str, str] = {}
        if config.api_key is not None:
            self._write_auth = self._read_auth = {"Authorization": f"Bearer {config.api_key.get_secret_value()}"}
        if config.read_api_key is not None:
            self._read_auth = {"Authorization": f"Bearer {config.read_api_key.get_secret_value()}"}
        self._read_setting = READ_CREDENTIAL_SETTING if config.read_api_key is not None else WRITE_CREDENTIAL_SETTING
        self.description = f"HTTP API at {config.api_url}"
        self._client = httpx.Client(
            base_url=config.api_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(config.request_timeout_seconds, connect=min(5.0, config.request_timeout_seconds)),
            transport=transport,
        )

    # --- writing ---------------------------------------------------------------------------------
    def send(self, events: Sequence[AuditEventIn]) -> list[EventResult]:
        """`POST /events` with `{"events": [...]}`; map every failure to a `DeliveryError`."""
        body = orjson.dumps({"events": [event.model_dump(mode="json") for event in events]})
        try:
            response = self._client.post(
                "/events", content=body, headers={"Content-Type": "application/json", **self._write_auth}
            )
        except httpx.TransportError as exc:
            raise DeliveryError(f"cannot reach the API: {exc!r}", retryable=True) from exc
        if response.status_code in (200, 201):
            return IngestResponse.model_validate_json(response.content).results
        code, message = _error_message(response)
        if response.status_code in _CREDENTIALS_REFUSED:
            raise AuthenticationError(response.status_code, code, message, setting=WRITE_CREDENTIAL_SETTING)
        if response.status_code in _REFUSED:
            rejected: list[int] | None = None
            if response.status_code == 422:
                rejected = _refused_positions(response)
            raise DeliveryError(
                f"{response.status_code} {code}: {message}",
                retryable=False,
                rejected=rejected,
                too_large=response.status_code == 413,
            )
        raise DeliveryError(
            f"{response.status_code} {code}: {message}", retryable=True, retry_after=_retry_after(response)
        )

    def check(self) -> None:
        """Reach the API with our credentials without storing anything.

        Writers may only call `POST /events`, so the probe is an empty batch: the API refuses it with
        422 after authentication, which proves the address and the token; 401/403 mean a bad token.
        """
        response = self._request("POST", "/events", expect=(422,), content=b'{"events": []}', write=True)
        del response

    # --- reading ---------------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), write: bool = False, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"} if "content" in kwargs else {}
        headers.update(self._write_auth if write else self._read_auth)
        try:
            response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise APIError(503, "unreachable", f"cannot reach the API: {exc!r}") from exc
        if response.status_code not in expect:
            code, message = _error_message(response)
            if response.status_code in _CREDENTIALS_REFUSED:
                setting = WRITE_CREDENTIAL_SETTING if write else self._read_setting
                raise AuthenticationError(response.status_code, code, message, setting=setting)
            raise APIError(response.status_code, code, message)
        return response

    def list_events(
        self,
        *,
        limit: int,
        user_id: str | None,
        event_type: str | None,
        security_level: str | None,
        compliance_tag: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> list[StoredEvent]:
        """`GET /events` with the given filters, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        optional: Mapping[str, str | None] = {
            "user_id": user_id,
            "event_type": event_type,
            "security_level": security_level,
            "compliance_tag": compliance_tag,
            "from": _utc(start) if start else None,
            "to": _utc(end) if end else None,
        }
        params.update({name: value for name, value in optional.items() if value is not None})
        response = self._request("GET", "/events", params=params)
        return EventPage.model_validate_json(response.content).events

    def get_event(self, event_id: str) -> StoredEvent | None:
        """`GET /events/{event_id}`; None on 404."""
        response = self._request("GET", f"/events/{event_id}", expect=(200, 404))
        return None if response.status_code == 404 else StoredEvent.model_validate_json(response.content)

    def list_alerts(self, *, limit: int) -> list[AlertOut]:
        """`GET /alerts`, newest first."""
        response = self._request("GET", "/alerts", params={"limit": limit})
        return AlertPage.model_validate_json(response.content).alerts

    def compliance_report(self, standard: ComplianceStandard, start: datetime, end: datetime) -> dict[str, Any]:
        """`POST /reports` -> the report's id, metadata and a presigned `download_url`."""
        body: dict[str, Any] = {"standard": standard.value, "start": _utc(start), "end": _utc(end)}
        response = self._request("POST", "/reports", expect=(200, 201), content=orjson.dumps(body))
        answer: dict[str, Any] = response.json()
        return answer

    def download(self, url: str) -> bytes:
        """Fetch a presigned link (no bearer token: the link carries its own signature)."""
        try:
            response = httpx.get(url, timeout=self._client.timeout, follow_redirects=True)
        except httpx.TransportError as exc:
            raise APIError(503, "unreachable", f"cannot download {url}: {exc!r}") from exc
        if response.status_code != 200:
            raise APIError(response.status_code, "download_failed", response.text[:200])
        return response.content

    def run_retention(self) -> dict[str, Any]:
        """Not an HTTP route: say what to do instead."""
        raise NotAvailableError(RETENTION_OVER_HTTP)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
