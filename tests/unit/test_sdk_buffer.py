"""SDK buffer and flusher: batching, overflow policies, retries with backoff, refusals, close."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest

from audit_common.api import AlertOut, EventResult, StoredEvent
from audit_common.models import AuditEventIn, ComplianceStandard
from audit_trail.buffer import backoff_delay
from audit_trail.config import AuditConfig
from audit_trail.errors import BufferFullError, DeliveryError, LoggerClosedError
from audit_trail.logger import AuditLogger


class FakeBackend:
    """Stores batches in memory; can stall, fail a number of times, or refuse chosen events."""

    description = "fake"

    def __init__(self) -> None:
        self.stored: dict[str, AuditEventIn] = {}
        self.order: list[str] = []
        self.batches: list[int] = []
        self.calls = 0
        self.fail_next = 0
        self.refuse_user: str | None = None
        self.name_refused = True
        self.open = threading.Event()
        self.open.set()

    def check(self) -> None:
        return None

    def send(self, events: Sequence[AuditEventIn]) -> list[EventResult]:
        self.calls += 1
        self.open.wait(10)
        if self.fail_next:
            self.fail_next -= 1
            raise DeliveryError("503 service_unavailable: down", retryable=True)
        refused = [i for i, e in enumerate(events) if e.user_id == self.refuse_user]
        if refused:
            raise DeliveryError("422 invalid_input", retryable=False, rejected=refused if self.name_refused else None)
        self.batches.append(len(events))
        results = []
        for index, event in enumerate(events):
            duplicate = event.event_id in self.stored
            if not duplicate:
                self.stored[event.event_id] = event
                self.order.append(event.event_id)
            results.append(
                EventResult(
                    index=index,
                    event_id=event.event_id,
                    status="duplicate" if duplicate else "created",
                    seq=self.order.index(event.event_id) + 1,
                    checksum="0" * 64,
                    chain_hash="0" * 64,
                    content_matches=True,
                )
            )
        return results

    def list_events(self, **_: Any) -> list[StoredEvent]:
        return []

    def get_event(self, event_id: str) -> StoredEvent | None:
        return None

    def list_alerts(self, *, limit: int) -> list[AlertOut]:
        return []

    def compliance_report(self, *args: Any) -> dict[str, Any]:
        return {}

    def run_retention(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


def _config(**overrides: Any) -> AuditConfig:
    values: dict[str, Any] = {
        "api_url": "http://fake",
        "batch_size": 10,
        "flush_interval_seconds": 0.05,
        "retry_base_seconds": 0.001,
        "retry_max_seconds": 0.01,
        "close_timeout_seconds": 5,
        **overrides,
    }
    return AuditConfig(**values)


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    yield fake
    fake.open.set()


def _log(audit_logger: AuditLogger, user_id: str = "u1") -> AuditEventIn:
    event = audit_logger.create_audit_event(event_type="file_upload", user_id=user_id, action="upload")
    audit_logger.log_event_sync(event)
    return event


def test_batches_never_exceed_batch_size(backend: FakeBackend) -> None:
    """Given 35 events and batch_size 10, when flushed, then all arrive in order in batches of at most 10."""
    audit_logger = AuditLogger(_config(), backend=backend)
    sent = [_log(audit_logger) for _ in range(35)]

    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()

    assert backend.order == [event.event_id for event in sent]
    assert max(backend.batches) <= 10
    assert sum(backend.batches) == 35
    assert audit_logger.stats.delivered == 35


def test_an_idle_flusher_keeps_running(backend: FakeBackend) -> None:
    """Given a logger idle for many flush intervals, when events come again, then they are still delivered."""
    import time

    audit_logger = AuditLogger(_config(flush_interval_seconds=0.01), backend=backend)
    _log(audit_logger)
    assert audit_logger.flush_sync(timeout=10)
    time.sleep(0.2)  # idle: the flusher wakes on its interval with nothing to send

    late = _log(audit_logger)

    assert audit_logger.flush_sync(timeout=10)
    assert late.event_id in backend.stored
    audit_logger.close_sync()


def test_retries_after_failures_with_the_same_event_ids(backend: FakeBackend) -> None:
    """Given a destination failing 3 times, then the batch is retried until stored, once per event."""
    backend.fail_next = 3
    audit_logger = AuditLogger(_config(), backend=backend)
    sent = [_log(audit_logger) for _ in range(5)]

    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()

    assert backend.order == [event.event_id for event in sent]
    assert audit_logger.stats.retries == 3
    assert audit_logger.stats.delivered == 5
    assert audit_logger.stats.last_error is not None
    assert "503" in audit_logger.stats.last_error


def test_block_policy_raises_after_its_timeout_and_keeps_what_it_accepted(backend: FakeBackend) -> None:
    """Given a stalled destination and a buffer of 3, when a 4th event is logged, then BufferFullError;
    once the destination answers, the 3 accepted events are stored."""
    backend.open.clear()
    audit_logger = AuditLogger(_config(buffer_limit=3, block_timeout_seconds=0.05), backend=backend)
    kept = [_log(audit_logger) for _ in range(3)]

    with pytest.raises(BufferFullError, match="was not kept"):
        _log(audit_logger)

    backend.open.set()
    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()
    assert backend.order == [event.event_id for event in kept]
    assert audit_logger.stats.dropped == 0


def test_block_policy_waits_for_room(backend: FakeBackend) -> None:
    """Given a full buffer, when the destination recovers while log_event waits, then the event is kept."""
    backend.open.clear()
    audit_logger = AuditLogger(_config(buffer_limit=2, batch_size=2, block_timeout_seconds=30), backend=backend)
    _log(audit_logger)
    _log(audit_logger)
    released = threading.Timer(0.2, backend.open.set)
    released.start()

    late = _log(audit_logger)  # blocks until the first batch is delivered

    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()
    assert late.event_id in backend.stored
    assert len(backend.stored) == 3


def test_drop_policy_counts_and_warns_once_per_burst(backend: FakeBackend, caplog: pytest.LogCaptureFixture) -> None:
    """Given a stalled destination and drop policy, then overflow is refused at once, counted, warned once."""
    backend.open.clear()
    audit_logger = AuditLogger(_config(buffer_limit=4, overflow_policy="drop"), backend=backend)
    caplog.set_level(logging.WARNING, logger="audit_trail")

    outcomes = []
    for _ in range(10):
        event = audit_logger.create_audit_event(event_type="file_access", user_id="u", action="read")
        outcomes.append(audit_logger.log_event_sync(event))

    assert outcomes == [True] * 4 + [False] * 6
    assert audit_logger.stats.dropped == 6
    warnings = [r for r in caplog.records if "dropping new events" in r.getMessage()]
    assert len(warnings) == 1

    backend.open.set()
    assert audit_logger.flush_sync(timeout=10)
    _log(audit_logger)  # room again: the burst is over and says how many were lost
    assert any("6 event(s) were dropped" in r.getMessage() for r in caplog.records)
    audit_logger.close_sync()
    assert len(backend.stored) == 5


def test_refused_event_is_set_aside_and_the_rest_delivered(backend: FakeBackend) -> None:
    """Given a batch where the destination refuses one event by index, then the others are stored."""
    backend.refuse_user = "bad"
    audit_logger = AuditLogger(_config(), backend=backend)
    good = [_log(audit_logger, "a"), _log(audit_logger, "b")]
    bad = _log(audit_logger, "bad")
    good.append(_log(audit_logger, "c"))

    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()

    assert set(backend.stored) == {event.event_id for event in good}
    assert audit_logger.stats.rejected == 1
    assert audit_logger.stats.rejected_events[0][0].event_id == bad.event_id


def test_refusal_without_positions_is_bisected(backend: FakeBackend) -> None:
    """Given a destination that refuses a batch without naming the event (SQL API), then bisection finds it."""
    backend.refuse_user = "bad"
    backend.name_refused = False
    audit_logger = AuditLogger(_config(batch_size=8), backend=backend)
    for index in range(8):
        _log(audit_logger, "bad" if index == 5 else f"user{index}")

    assert audit_logger.flush_sync(timeout=10)
    audit_logger.close_sync()

    assert len(backend.stored) == 7
    assert audit_logger.stats.rejected == 1
    assert audit_logger.stats.rejected_events[0][0].user_id == "bad"


def test_close_flushes_and_then_refuses(backend: FakeBackend) -> None:
    """Given buffered events, when the logger closes, then they are delivered and new ones refused."""
    audit_logger = AuditLogger(_config(flush_interval_seconds=60, batch_size=100), backend=backend)
    sent = [_log(audit_logger) for _ in range(7)]

    assert audit_logger.close_sync() == 0

    assert backend.order == [event.event_id for event in sent]
    with pytest.raises(LoggerClosedError):
        _log(audit_logger)


def test_close_with_destination_down_reports_undelivered(backend: FakeBackend) -> None:
    """Given a destination that keeps failing, when close times out, then the events are still available."""
    backend.fail_next = 10**9
    audit_logger = AuditLogger(_config(), backend=backend)
    sent = [_log(audit_logger) for _ in range(3)]

    remaining = audit_logger.close_sync(timeout=0.2)

    assert remaining == 3
    assert audit_logger.stats.undelivered == 3
    assert [event.event_id for event in audit_logger.pending_events()] == [event.event_id for event in sent]


def test_bad_event_fails_in_the_callers_code(backend: FakeBackend) -> None:
    """Given an event changed after creation to an invalid value, then log_event raises at once."""
    audit_logger = AuditLogger(_config(), backend=backend)
    event = audit_logger.create_audit_event(event_type="file_upload", user_id="u", action="upload")
    event.ip_address = "not-an-ip"

    with pytest.raises(ValueError, match="ip_address"):
        audit_logger.log_event_sync(event)
    audit_logger.close_sync()
    assert backend.stored == {}


def test_seed_style_mutation_is_normalised(backend: FakeBackend) -> None:
    """Given the seed's `event.status = "success"` and tags by NAME, then the stored event has enum values."""
    audit_logger = AuditLogger(_config(compliance_standards=["gdpr"]), backend=backend)
    event = audit_logger.create_audit_event(event_type="FILE_UPLOAD", user_id="u", action="upload")
    event.status = "FAILURE"  # type: ignore[assignment]

    audit_logger.log_event_sync(event)
    audit_logger.close_sync()

    stored = backend.stored[event.event_id]
    assert stored.status.value == "failure"
    assert stored.compliance_tags == [ComplianceStandard.GDPR]
    assert stored.metadata["environment"] == "production"


def test_audit_context_records_failure_and_duration(backend: FakeBackend) -> None:
    """Given a block that raises inside audit_context, then the event says failure, why, and how long."""
    audit_logger = AuditLogger(_config(), backend=backend)

    with pytest.raises(RuntimeError), audit_logger.audit_context(user_id="u", action="process") as event:
        raise RuntimeError("disk full")
    with audit_logger.audit_context(user_id="u", action="process", event_type="file_modify") as ok:
        ok.details["records"] = 3
    audit_logger.close_sync()

    failed = backend.stored[event.event_id]
    assert failed.status.value == "failure"
    assert failed.details["error_type"] == "RuntimeError"
    assert failed.details["error"] == "disk full"
    assert failed.details["duration_ms"] >= 0
    succeeded = backend.stored[ok.event_id]
    assert succeeded.status.value == "success"
    assert succeeded.details["records"] == 3
    assert succeeded.event_type.value == "file_modify"


def test_streaming_callbacks_sync_async_and_failing(backend: FakeBackend) -> None:
    """Given a sync, an async and a failing callback, then the first two see every event, in order."""
    from pytest_socket import enable_socket

    # The callback thread's event loop wakes itself through a local socketpair (its self-pipe), which
    # pytest-socket cannot tell from a network socket; nothing here connects anywhere.
    enable_socket()
    audit_logger = AuditLogger(_config(), backend=backend)
    seen_sync: list[str] = []
    seen_async: list[str] = []

    async def async_callback(event: AuditEventIn) -> None:
        seen_async.append(event.event_id)

    def failing(event: AuditEventIn) -> None:
        raise ValueError("callback bug")

    audit_logger.register_streaming_callback(lambda event: seen_sync.append(event.event_id))
    audit_logger.register_streaming_callback(async_callback)
    audit_logger.register_streaming_callback(failing)
    sent = [_log(audit_logger).event_id for _ in range(5)]
    quiet = audit_logger.create_audit_event(event_type="file_access", user_id="u", action="read")
    audit_logger.log_event_sync(quiet, trigger_streaming=False)
    audit_logger.close_sync()

    assert seen_sync == sent
    assert seen_async == sent
    assert len(backend.stored) == 6


@pytest.mark.parametrize("attempt", [1, 2, 5, 30])
def test_backoff_is_full_jitter_under_a_cap(attempt: int) -> None:
    """Given attempt n, then the delay is drawn from [0, min(cap, base * 2^(n-1))]."""
    bounds: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    delay = backoff_delay(attempt, base=0.5, cap=10.0, rng=record)

    assert bounds == [(0.0, min(10.0, 0.5 * 2 ** (attempt - 1)))]
    assert delay == bounds[0][1]


def test_dates_without_zone_are_refused() -> None:
    """Given a naive datetime, then the HTTP backend refuses to guess its zone."""
    from audit_trail.http_backend import _utc

    with pytest.raises(ValueError, match="time zone"):
        _utc(datetime(2026, 11, 27))  # naive on purpose
