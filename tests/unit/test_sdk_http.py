"""SDK over HTTP without a network: every answer of `POST /events` mapped, retries idempotent."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from audit_common.models import ComplianceStandard
from audit_trail.config import AuditConfig
from audit_trail.errors import APIError, AuthenticationError, BufferFullError, DeliveryError, NotAvailableError
from audit_trail.http_backend import HttpBackend
from audit_trail.logger import AuditLogger

Handler = Callable[[httpx.Request], httpx.Response]


def _config(**overrides: Any) -> AuditConfig:
    values: dict[str, Any] = {
        "api_url": "http://audit.test/v1",
        "api_key": "secret-token",
        "batch_size": 50,
        "flush_interval_seconds": 0.05,
        "retry_base_seconds": 0.001,
        "retry_max_seconds": 0.01,
        **overrides,
    }
    return AuditConfig(**values)


def _backend(handler: Handler, **overrides: Any) -> HttpBackend:
    return HttpBackend(_config(**overrides), transport=httpx.MockTransport(handler))


class FakeApi:
    """`POST /events` as the API answers it: created or duplicate by event_id, optionally losing answers."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.lose_answers = 0
        self.outage = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.outage:
            self.outage -= 1
            raise httpx.ConnectError("connection refused", request=request)
        events = json.loads(request.content)["events"]
        results = []
        for index, event in enumerate(events):
            duplicate = event["event_id"] in self.stored
            self.stored.setdefault(event["event_id"], event)
            results.append(
                {
                    "index": index,
                    "event_id": event["event_id"],
                    "status": "duplicate" if duplicate else "created",
                    "seq": list(self.stored).index(event["event_id"]) + 1,
                    "checksum": "a" * 64,
                    "chain_hash": "b" * 64,
                    "content_matches": True,
                }
            )
        if self.lose_answers:
            # Stored, but the answer never reaches the client (a timeout after the commit).
            self.lose_answers -= 1
            return httpx.Response(504, json={"error": {"code": "gateway_timeout", "message": "timed out"}})
        created = sum(1 for r in results if r["status"] == "created")
        status = 201 if created == len(results) else 200
        return httpx.Response(
            status, json={"results": results, "created": created, "duplicates": len(results) - created}
        )


def test_post_events_sends_a_batch_with_the_bearer_token() -> None:
    """Given two events, when sent, then one POST /events carries both as JSON with the token."""
    api = FakeApi()
    backend = _backend(api)
    audit_logger = AuditLogger(_config(), backend=backend)
    first = audit_logger.create_audit_event(
        event_type="file_upload",
        user_id="user123",
        action="upload_report",
        resource_path="/documents/q.pdf",
        compliance_tags=[ComplianceStandard.SOX],
        details={"file_size": 2048576},
    )
    second = audit_logger.create_audit_event(event_type="user_login", user_id="user123", action="login")

    results = backend.send([first, second])

    request = api.requests[0]
    assert request.method == "POST"
    assert request.url == "http://audit.test/v1/events"
    assert request.headers["Authorization"] == "Bearer secret-token"
    body = json.loads(request.content)
    assert [e["event_id"] for e in body["events"]] == [first.event_id, second.event_id]
    assert body["events"][0]["compliance_tags"] == ["sox"]
    assert body["events"][0]["timestamp"].endswith("Z")
    assert [r.status for r in results] == ["created", "created"]


@pytest.mark.parametrize(
    ("status", "body", "retryable", "rejected", "too_large"),
    [
        (
            422,
            {
                "error": {"code": "invalid_input", "message": "x"},
                "errors": [{"index": 1, "field": "f", "message": "m"}],
            },
            False,
            [1],
            False,
        ),
        (413, {"error": {"code": "payload_too_large", "message": "split"}}, False, None, True),
        (400, {"error": {"code": "bad_request", "message": "not JSON"}}, False, None, False),
        (503, {"error": {"code": "service_unavailable", "message": "retry"}}, True, None, False),
        (429, {"message": "Too Many Requests"}, True, None, False),
    ],
)
def test_answers_map_to_retry_or_refusal(
    status: int, body: dict[str, Any], retryable: bool, rejected: list[int] | None, too_large: bool
) -> None:
    """Given each error status, then the flusher is told whether to retry, split, or set events aside."""
    backend = _backend(lambda request: httpx.Response(status, json=body, headers={"Retry-After": "2"}))
    audit_logger = AuditLogger(_config(), backend=backend)
    events = [audit_logger.create_audit_event(event_type="file_access", user_id="u", action="r") for _ in range(2)]

    with pytest.raises(DeliveryError) as caught:
        backend.send(events)

    assert caught.value.retryable is retryable
    assert caught.value.rejected == rejected
    assert caught.value.too_large is too_large
    if retryable:
        assert caught.value.retry_after == 2.0


def test_connection_refused_is_retryable() -> None:
    """Given the API refusing connections, then the failure is retryable."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    backend = _backend(refuse)
    event = AuditLogger(_config(), backend=backend).create_audit_event(
        event_type="file_access", user_id="u", action="r"
    )

    with pytest.raises(DeliveryError) as caught:
        backend.send([event])
    assert caught.value.retryable is True


def test_lost_answers_and_outages_store_every_event_exactly_once() -> None:
    """Given an outage and an answer lost after the commit, then retries replay the same event_ids:
    every event is stored once and the replays are answered duplicate."""
    api = FakeApi()
    api.outage = 2
    api.lose_answers = 1
    audit_logger = AuditLogger(_config(batch_size=10), backend=_backend(api))
    sent = []
    for index in range(25):
        event = audit_logger.create_audit_event(event_type="file_download", user_id=f"u{index % 3}", action="get")
        audit_logger.log_event_sync(event)
        sent.append(event.event_id)

    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()

    assert list(api.stored) == sent
    # The batch whose answer was lost was stored by its first attempt; its replay is answered duplicate.
    assert audit_logger.stats.delivered == 15
    assert audit_logger.stats.duplicates == 10
    assert audit_logger.stats.retries == 3


def test_413_splits_the_batch() -> None:
    """Given an API that refuses batches over 4 events as too large, then the flusher halves until they fit."""
    api = FakeApi()

    def limited(request: httpx.Request) -> httpx.Response:
        if len(json.loads(request.content)["events"]) > 4:
            return httpx.Response(413, json={"error": {"code": "payload_too_large", "message": "split"}})
        return api(request)

    audit_logger = AuditLogger(_config(batch_size=16), backend=_backend(limited))
    sent = []
    for _ in range(16):
        event = audit_logger.create_audit_event(event_type="file_access", user_id="u", action="r")
        audit_logger.log_event_sync(event)
        sent.append(event.event_id)
    audit_logger.close_sync()

    assert list(api.stored) == sent
    assert audit_logger.stats.rejected == 0


def test_check_accepts_the_empty_batch_refusal_and_reports_bad_tokens() -> None:
    """Given the probe (an empty batch), then 422 means reachable; 401 raises with the API's message."""
    _backend(lambda r: httpx.Response(422, json={"error": {"code": "invalid_input", "message": "x"}})).check()

    backend = _backend(lambda r: httpx.Response(401, json={"error": {"code": "unauthorized", "message": "no"}}))
    with pytest.raises(APIError) as caught:
        backend.check()
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"


def test_initialize_tolerates_an_unreachable_api_only_when_asked() -> None:
    """Given an unreachable API, then initialize() raises, initialize(require_reachable=False) buffers."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    strict = AuditLogger(_config(), backend=_backend(refuse))
    with pytest.raises(APIError, match="cannot reach"):
        strict.initialize_sync()

    lenient = AuditLogger(_config(), backend=_backend(refuse))
    lenient.initialize_sync(require_reachable=False)
    assert lenient.close_sync(timeout=0.05) == 0


def test_compliance_report_posts_the_period_and_adds_the_seed_view() -> None:
    """Given POST /reports answering the report's record, then the answer has the seed's report_metadata."""
    seen: list[dict[str, Any]] = []

    def reports(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            201,
            json={
                "report_id": "r1",
                "standard": "gdpr",
                "status": "ready",
                "total_events": 42,
                "formats": {"json": {"key": "reports/gdpr/r1.json"}},
                "download_url": "http://s3/r1.json",
            },
        )

    audit_logger = AuditLogger(_config(), backend=_backend(reports))
    end = datetime(2026, 11, 27, 12, tzinfo=UTC)

    report = audit_logger.generate_compliance_report_sync(ComplianceStandard.GDPR, end - timedelta(days=30), end)

    assert seen == [{"standard": "gdpr", "start": "2026-10-28T12:00:00Z", "end": "2026-11-27T12:00:00Z"}]
    assert report["report_metadata"] == {
        "report_id": "r1",
        "standard": "gdpr",
        "status": "ready",
        "total_events": 42,
        "download_url": "http://s3/r1.json",
    }
    assert report["download_url"] == "http://s3/r1.json"


def test_cleanup_over_http_says_what_to_do() -> None:
    """Given the HTTP API (no retention route), then cleanup_old_events names the ways to run retention."""
    audit_logger = AuditLogger(_config(), backend=_backend(lambda r: httpx.Response(404)))

    with pytest.raises(NotAvailableError) as caught:
        audit_logger.cleanup_old_events_sync()
    assert "audit-trail invoke retention" in str(caught.value)
    assert "archive_bucket" in str(caught.value)


def test_422_without_positions_leaves_the_search_to_bisection() -> None:
    """Given a 422 whose body names no event (or is not JSON), then no position is claimed."""
    for body in ({"text": "refused"}, {"json": {"errors": [{"field": "x"}]}}):

        def answer(request: httpx.Request, body: dict[str, Any] = body) -> httpx.Response:
            return httpx.Response(422, **body)

        backend = _backend(answer)
        event = AuditLogger(_config(), backend=backend).create_audit_event(
            event_type="file_access", user_id="u", action="r"
        )

        with pytest.raises(DeliveryError) as caught:
            backend.send([event])

        assert caught.value.retryable is False
        assert caught.value.rejected is None


# --- credentials refused (401/403) -----------------------------------------------------------------


def _refuse_credentials(status: int = 401) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "Unauthorized" if status == 401 else "Forbidden"})

    return handler


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_authentication_error_naming_the_setting(status: int) -> None:
    """Given 401 or 403 on POST /events, then the error is an AuthenticationError naming api_key/AUDIT_API_KEY,
    retried (never set aside as a refused event)."""
    backend = _backend(_refuse_credentials(status))
    audit_logger = AuditLogger(_config(), backend=backend)
    event = audit_logger.create_audit_event(event_type="file_access", user_id="u", action="r")

    with pytest.raises(AuthenticationError) as caught:
        backend.send([event])

    assert caught.value.status == status
    assert caught.value.retryable is True
    assert "check api_key/AUDIT_API_KEY" in str(caught.value)


def test_refused_reads_name_the_read_token_setting() -> None:
    """Given a read token that the API refuses, then the error names read_api_key/AUDIT_READ_TOKEN."""
    backend = _backend(_refuse_credentials(403), read_api_key="auditor-token")

    with pytest.raises(AuthenticationError) as caught:
        backend.list_alerts(limit=10)

    assert caught.value.status == 403
    assert "AUDIT_READ_TOKEN" in str(caught.value)


def test_writes_use_api_key_and_reads_use_read_api_key() -> None:
    """Given a writer token and a reader token, then POST /events carries the writer's, GET the reader's."""
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[f"{request.method} {request.url.path}"] = request.headers.get("Authorization", "")
        if request.method == "POST":
            return httpx.Response(201, json={"created": 0, "duplicates": 0, "results": []})
        return httpx.Response(200, json={"alerts": [], "next_cursor": None})

    backend = _backend(handler, api_key="atw_writer", read_api_key="eyJ.auditor")
    backend.send([])
    backend.list_alerts(limit=1)

    assert seen == {"POST /v1/events": "Bearer atw_writer", "GET /v1/alerts": "Bearer eyJ.auditor"}


def test_reads_fall_back_to_api_key() -> None:
    """Given only api_key (one token for everything), then reads carry it."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200, json={"alerts": [], "next_cursor": None})

    _backend(handler).list_alerts(limit=1)

    assert seen == ["Bearer secret-token"]


def test_refused_credentials_keep_the_events_log_once_and_fail_fast_when_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Given a token the API refuses and overflow_policy=block, when more events arrive than the buffer holds,
    then every accepted event is kept, one ERROR names the status and the setting, and log_event raises
    BufferFullError about the credentials instead of blocking for block_timeout_seconds."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"message": "Unauthorized"})

    config = _config(buffer_limit=5, batch_size=5, block_timeout_seconds=120, overflow_policy="block")
    audit_logger = AuditLogger(config, backend=HttpBackend(config, transport=httpx.MockTransport(handler)))
    caplog.set_level("DEBUG", logger="audit_trail")
    events = [audit_logger.create_audit_event(event_type="file_access", user_id="u", action="r") for _ in range(5)]
    for event in events:
        assert audit_logger.log_event_sync(event)
    audit_logger.flush_sync(timeout=0.5)
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while len(calls) < 3 and datetime.now(UTC) < deadline:
        audit_logger.flush_sync(timeout=0.1)

    with pytest.raises(BufferFullError, match="refuses our credentials") as caught:
        audit_logger.log_event_sync(audit_logger.create_audit_event(event_type="file_access", user_id="u", action="r"))

    assert isinstance(caught.value.__cause__, AuthenticationError)
    assert [e.event_id for e in audit_logger.pending_events()] == [e.event_id for e in events]
    assert audit_logger.stats.credentials_refused is not None
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "refused our credentials" in r.getMessage()]
    assert len(calls) >= 3
    assert len(errors) == 1
    assert "401" in errors[0].getMessage()
    assert "check api_key/AUDIT_API_KEY" in errors[0].getMessage()
    assert audit_logger.close_sync(timeout=0) == 5


def test_delivery_resumes_when_the_credentials_are_accepted_again(caplog: pytest.LogCaptureFixture) -> None:
    """Given a token refused twice and then accepted (registered server-side), then the kept events are delivered
    and the refusal state is cleared."""
    api = FakeApi()
    refusals = [2]

    def handler(request: httpx.Request) -> httpx.Response:
        if refusals[0]:
            refusals[0] -= 1
            return httpx.Response(401, json={"message": "Unauthorized"})
        return api(request)

    config = _config()
    audit_logger = AuditLogger(config, backend=HttpBackend(config, transport=httpx.MockTransport(handler)))
    caplog.set_level("INFO", logger="audit_trail")
    event = audit_logger.create_audit_event(event_type="file_access", user_id="u", action="r")
    audit_logger.log_event_sync(event)

    assert audit_logger.flush_sync(timeout=60)
    assert list(api.stored) == [event.event_id]
    assert audit_logger.stats.credentials_refused is None
    assert any("accepts our credentials again" in r.getMessage() for r in caplog.records)
    audit_logger.close_sync()


def test_alert_polling_with_a_refused_read_token_logs_one_error(caplog: pytest.LogCaptureFixture) -> None:
    """Given a read token the API refuses, when alerts are polled many times, then one ERROR names the setting
    (not one warning per poll), and one WARNING says so when the token is accepted again."""
    import threading

    from audit_trail.streaming import AlertPoller, CallbackDispatcher

    polls: list[int] = []
    accepted = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        polls.append(1)
        if len(polls) <= 6:
            return httpx.Response(401, json={"message": "Unauthorized"})
        accepted.set()
        return httpx.Response(200, json={"alerts": [], "next_cursor": None})

    caplog.set_level("DEBUG", logger="audit_trail")
    dispatcher = CallbackDispatcher(10)
    poller = AlertPoller(_backend(handler, read_api_key="eyJ.expired"), dispatcher, [], interval=0.01)
    poller.start()
    try:
        assert accepted.wait(30)
    finally:
        poller.close()
        dispatcher.close(timeout=1)

    refusals = [r for r in caplog.records if "polling alerts refused" in r.getMessage()]
    assert [r.levelname for r in refusals][:1] == ["ERROR"]
    assert sum(r.levelname == "ERROR" for r in refusals) == 1
    assert len(refusals) >= 4
    assert "AUDIT_READ_TOKEN" in refusals[0].getMessage()
    assert any("accepts our read token again" in r.getMessage() for r in caplog.records)
