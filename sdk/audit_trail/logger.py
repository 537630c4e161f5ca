"""`AuditLogger`: the seed's Python API over the audit trail's HTTP API or its SQL API.

Async methods keep the seed's names (`await logger.log_event(event)`); each has a synchronous twin
with a `_sync` suffix for code without an event loop (`logger.log_event_sync(event)`), and
`audit_context` works with both `async with` and `with`. Nothing is bound to the event loop that
created the logger: delivery, callbacks and alert polling run on background threads, so a logger
made with `asyncio.run(setup_production_audit_logger())` serves a Flask app or another loop.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import weakref
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from audit_common.api import StoredEvent
from audit_common.models import AuditEventIn, ComplianceStandard, EventStatus, EventType, SecurityLevel
from audit_trail.backend import Backend, backend_for
from audit_trail.buffer import BufferStats, EventBuffer, Flusher
from audit_trail.config import AuditConfig, OverflowPolicy
from audit_trail.errors import APIError, LoggerClosedError
from audit_trail.streaming import AlertPoller, CallbackDispatcher, StreamingCallback, takes_two_arguments

log = logging.getLogger("audit_trail")

AuditEvent = AuditEventIn
"""The event model is the shared layer's (`audit_common.models.AuditEventIn`), not a copy."""

SDK_NAME = "audit-trail-sdk"
MAX_ERROR_TEXT = 500

_live_loggers: weakref.WeakSet[AuditLogger] = weakref.WeakSet()
_atexit_registered = False
_atexit_lock = threading.Lock()


def _close_all_at_exit() -> None:
    for audit_logger in list(_live_loggers):
        try:
            audit_logger.close_sync()
        except Exception:
            log.exception("closing the audit logger at exit failed")


def _register_atexit(audit_logger: AuditLogger) -> None:
    global _atexit_registered  # noqa: PLW0603 - one exit hook per process, registered on first use
    with _atexit_lock:
        _live_loggers.add(audit_logger)
        if not _atexit_registered:
            atexit.register(_close_all_at_exit)
            _atexit_registered = True


class AuditLogger:
    """Creates, buffers and delivers audit events; reads them back; streams them to callbacks."""

    def __init__(self, config: AuditConfig | None = None, *, backend: Backend | None = None) -> None:
        self.config = config if config is not None else AuditConfig()
        self._backend = backend
        self.stats = BufferStats()
        self._buffer = EventBuffer(
            self.config.buffer_limit,
            OverflowPolicy(self.config.overflow_policy),
            self.config.block_timeout_seconds,
            self.stats,
        )
        self._flusher: Flusher | None = None
        self._dispatcher = CallbackDispatcher(self.config.streaming_queue_limit)
        self._event_callbacks: list[StreamingCallback] = []
        self._alert_callbacks: list[StreamingCallback] = []
        self._poller: AlertPoller | None = None
        self._lock = threading.RLock()
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The destination (created from the configuration on first use)."""
        with self._lock:
            if self._backend is None:
                self._backend = backend_for(self.config)
            return self._backend

    def _start(self) -> Flusher:
        with self._lock:
            if self._closed:
                raise LoggerClosedError("the audit logger is closed")
            if self._flusher is None:
                self._flusher = Flusher(
                    self._buffer,
                    self.backend,
                    batch_size=self.config.batch_size,
                    flush_interval=self.config.flush_interval_seconds,
                    retry_base=self.config.retry_base_seconds,
                    retry_max=self.config.retry_max_seconds,
                )
                self._flusher.start()
                _register_atexit(self)
                self._start_alert_polling()
            return self._flusher

    def initialize_sync(self, require_reachable: bool = True) -> None:
        """Check the destination and our credentials, then start delivery.

        A refusal (wrong address, bad token, missing grant) always raises `APIError`. A destination
        that is unreachable or unavailable raises too, unless `require_reachable=False`: then it is
        logged and events buffer until it is back.
        """
        try:
            self.backend.check()
        except APIError as exc:
            if require_reachable or exc.status < 500:
                raise
            log.warning("audit destination %s unavailable at start (%s); buffering", self.backend.description, exc)
        self._start()
        log.info("audit logger sending to %s", self.backend.description)

    async def initialize(self, require_reachable: bool = True) -> None:
        """Async `initialize_sync`."""
        await asyncio.to_thread(self.initialize_sync, require_reachable)

    def flush_sync(self, timeout: float | None = None) -> bool:
        """Deliver everything buffered; True when all of it was stored within `timeout` seconds."""
        flusher = self._flusher
        return True if flusher is None else flusher.flush(timeout)

    async def flush(self, timeout: float | None = None) -> bool:
        """Async `flush_sync`."""
        return await asyncio.to_thread(self.flush_sync, timeout)

    def close_sync(self, timeout: float | None = None) -> int:
        """Stop accepting events, deliver the rest (for up to `close_timeout_seconds`), release connections.

        Returns how many events are still undelivered (0 normally; they stay in `pending_events()`).
        """
        with self._lock:
            if self._closed:
                return self.stats.undelivered
            self._closed = True
            flusher = self._flusher
        timeout = self.config.close_timeout_seconds if timeout is None else timeout
        if self._poller is not None:
            self._poller.close()
        remaining = flusher.close(timeout) if flusher is not None else len(self._buffer)
        self._buffer.closed = True
        self._dispatcher.close(timeout=max(1.0, timeout))
        if self._backend is not None:
            self._backend.close()
        _live_loggers.discard(self)
        return remaining

    async def close(self, timeout: float | None = None) -> int:
        """Async `close_sync`."""
        return await asyncio.to_thread(self.close_sync, timeout)

    def __enter__(self) -> AuditLogger:
        self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()

    async def __aenter__(self) -> AuditLogger:
        await asyncio.to_thread(self._start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pending_events(self) -> list[AuditEvent]:
        """Events accepted but not yet stored (e.g. still there after close() with the API down)."""
        return self._buffer.snapshot()

    # --- events --------------------------------------------------------------------------------
    def create_audit_event(
        self,
        event_type: EventType | str,
        user_id: str,
        action: str,
        resource_path: str | None = None,
        *,
        user_email: str | None = None,
        session_id: str | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
        resource_id: str | None = None,
        status: EventStatus | str = EventStatus.SUCCESS,
        details: dict[str, Any] | None = None,
        security_level: SecurityLevel | str = SecurityLevel.LOW,
        compliance_tags: list[ComplianceStandard] | list[str] | None = None,
        parent_event_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        event_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> AuditEvent:
        """A validated event with a fresh `event_id` (the idempotency key that makes retries safe).

        Events created without `compliance_tags` get the configuration's `compliance_standards`;
        `metadata` gets `environment` and `source` unless given.
        """
        stamped: dict[str, Any] = {"environment": self.config.environment, "sdk": SDK_NAME}
        if self.config.service_name:
            stamped["source"] = self.config.service_name
        fields: dict[str, Any] = {
            "event_type": event_type,
            "user_id": user_id,
            "action": action,
            "resource_path": resource_path,
            "user_email": user_email,
            "session_id": session_id,
            "ip_address": ip_address,
            "user_agent": user_agent,
            "resource_id": resource_id,
            "status": status,
            "details": dict(details or {}),
            "security_level": security_level,
            "compliance_tags": list(compliance_tags) if compliance_tags else self.config.default_compliance_tags,
            "parent_event_id": parent_event_id,
            "metadata": {**stamped, **(metadata or {})},
        }
        if event_id is not None:
            fields["event_id"] = event_id
        if timestamp is not None:
            fields["timestamp"] = timestamp
        return AuditEventIn.model_validate(fields)

    @staticmethod
    def _validated(event: AuditEvent | dict[str, Any]) -> AuditEvent:
        # Validated again at log time: the seed's examples change events after creating them
        # (`event.status = "success"`, `event.details[...] = ...`), and a bad value must fail here,
        # in the caller's code, not later on the flusher thread.
        if isinstance(event, AuditEventIn):
            return AuditEventIn.model_validate(event.model_dump(warnings=False))
        return AuditEventIn.model_validate(event)

    def log_event_sync(self, event: AuditEvent | dict[str, Any], trigger_streaming: bool = True) -> bool:
        """Buffer the event for delivery: True when kept, False when dropped (`overflow_policy="drop"`).

        With `overflow_policy="block"` this waits while the buffer is full and raises
        `BufferFullError` after `block_timeout_seconds`.
        """
        checked = self._validated(event)
        self._start()
        kept = self._buffer.put(checked)
        if kept:
            self._stream(checked, trigger_streaming)
        return kept

    async def log_event(self, event: AuditEvent | dict[str, Any], trigger_streaming: bool = True) -> bool:
        """Async `log_event_sync`: never blocks the event loop (a full buffer is waited for on a worker thread)."""
        checked = self._validated(event)
        if self._flusher is None:
            await asyncio.to_thread(self._start)
        if self._buffer.offer(checked):
            kept = True
        elif self._buffer.policy is OverflowPolicy.DROP:
            kept = self._buffer.put(checked)  # counts and warns
        else:
            kept = await asyncio.to_thread(self._buffer.put, checked)
        if kept:
            self._stream(checked, trigger_streaming)
        return kept

    def _stream(self, event: AuditEvent, trigger_streaming: bool) -> None:
        if trigger_streaming and self.config.enable_streaming and self._event_callbacks:
            self._dispatcher.submit(list(self._event_callbacks), event)

    def audit_context(
        self,
        user_id: str,
        action: str,
        resource_path: str | None = None,
        event_type: EventType | str = EventType.USER_ACTIVITY,
        **fields: Any,
    ) -> AuditContext:
        """`async with` / `with`: yields the event, then logs it with status success or failure and duration_ms."""
        event = self.create_audit_event(event_type, user_id, action, resource_path, **fields)
        return AuditContext(self, event)

    # --- reading and admin -----------------------------------------------------------------------
    def get_recent_events_sync(
        self,
        limit: int = 100,
        *,
        user_id: str | None = None,
        event_type: EventType | str | None = None,
        security_level: SecurityLevel | str | None = None,
        compliance_tag: ComplianceStandard | str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> list[StoredEvent]:
        """The newest stored events matching every filter (this logger's buffer is flushed first)."""
        if self._flusher is not None:
            self.flush_sync(self.config.request_timeout_seconds)
        return self.backend.list_events(
            limit=limit,
            user_id=user_id,
            event_type=EventType(_lower(event_type)).value if event_type else None,
            security_level=SecurityLevel(_lower(security_level)).value if security_level else None,
            compliance_tag=ComplianceStandard(_lower(compliance_tag)).value if compliance_tag else None,
            start=start_date,
            end=end_date,
        )

    async def get_recent_events(self, limit: int = 100, **filters: Any) -> list[StoredEvent]:
        """Async `get_recent_events_sync`."""
        return await asyncio.to_thread(lambda: self.get_recent_events_sync(limit, **filters))

    def generate_compliance_report_sync(
        self,
        standard: ComplianceStandard | str,
        start_date: datetime,
        end_date: datetime,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Generate a compliance report (`POST /reports`): its id, metadata and presigned `download_url`.

        The answer also carries the seed's `report_metadata` (with `total_events`). Reports cover every
        user: with `user_id`, the answer adds `user_scope` (that user's events in the period, counted
        up to 1000), since the report API has no per-user scope. Over the database transport there is
        no report generator: `NotAvailableError` says what to configure instead.
        """
        if self._flusher is not None:
            self.flush_sync(self.config.request_timeout_seconds)
        answer = _with_seed_metadata(
            self.backend.compliance_report(ComplianceStandard(_lower(standard)), start_date, end_date)
        )
        if user_id is not None:
            events = self.backend.list_events(
                limit=1000,
                user_id=user_id,
                event_type=None,
                security_level=None,
                compliance_tag=None,
                start=start_date,
                end=end_date,
            )
            answer["user_scope"] = {"user_id": user_id, "total_events": len(events), "truncated": len(events) == 1000}
        return answer

    async def generate_compliance_report(
        self,
        standard: ComplianceStandard | str,
        start_date: datetime,
        end_date: datetime,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Async `generate_compliance_report_sync`."""
        return await asyncio.to_thread(self.generate_compliance_report_sync, standard, start_date, end_date, user_id)

    def cleanup_old_events_sync(self) -> dict[str, Any]:
        """Run retention now (admin only): archive what is past its retention period, then redact it.

        Retention periods are the database's policies (legal floors per standard), not `retention_days`.
        Over the database transport this runs the retention runner in-process (needs `archive_bucket`);
        the HTTP API has no retention route, so there `NotAvailableError` says how to run it.
        """
        return self.backend.run_retention()

    async def cleanup_old_events(self) -> dict[str, Any]:
        """Async `cleanup_old_events_sync`."""
        return await asyncio.to_thread(self.cleanup_old_events_sync)

    # --- streaming -------------------------------------------------------------------------------
    def register_streaming_callback(self, callback: StreamingCallback, *, alerts: bool | None = None) -> None:
        """Call `callback(event)` for every event this logger accepts, or `callback(event, analysis)` per alert.

        Sync or async callables both work. `alerts=None` decides by the signature: two parameters
        (the seed's `handle_security_alert(event, analysis)`) subscribe to alerts, polled every
        `alert_poll_interval_seconds` when `enable_security_detection` is on.
        """
        wants_alerts = takes_two_arguments(callback) if alerts is None else alerts
        with self._lock:
            if wants_alerts:
                self._alert_callbacks.append(callback)
                if self._flusher is not None:
                    self._start_alert_polling()
            else:
                self._event_callbacks.append(callback)

    def unregister_streaming_callback(self, callback: StreamingCallback) -> None:
        """Stop calling `callback`."""
        with self._lock:
            for callbacks in (self._event_callbacks, self._alert_callbacks):
                while callback in callbacks:
                    callbacks.remove(callback)

    def _start_alert_polling(self) -> None:
        if self._poller is None and self._alert_callbacks and self.config.enable_security_detection:
            self._poller = AlertPoller(
                self.backend, self._dispatcher, self._alert_callbacks, self.config.alert_poll_interval_seconds
            )
            self._poller.start()

    def poll_alerts_now(self) -> int:
        """Check for new alerts immediately (instead of waiting for the next poll); returns how many."""
        return 0 if self._poller is None else self._poller.poll_once()


class AuditContext:
    """The event of one operation: logged when the block ends, with its outcome and duration."""

    def __init__(self, audit_logger: AuditLogger, event: AuditEvent) -> None:
        self._logger = audit_logger
        self.event = event
        self._started = 0.0

    def _begin(self) -> AuditEvent:
        self._started = time.perf_counter()
        self.event.timestamp = datetime.now(UTC)
        return self.event

    def _finish(self, exc: BaseException | None) -> AuditEvent:
        event = self.event
        event.details["duration_ms"] = round((time.perf_counter() - self._started) * 1000, 3)
        if exc is None:
            event.status = EventStatus.SUCCESS
        else:
            event.status = EventStatus.FAILURE
            event.details["error_type"] = type(exc).__name__
            event.details["error"] = str(exc)[:MAX_ERROR_TEXT]
        return event

    async def __aenter__(self) -> AuditEvent:
        return self._begin()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._logger.log_event(self._finish(exc))

    def __enter__(self) -> AuditEvent:
        return self._begin()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._logger.log_event_sync(self._finish(exc))


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _with_seed_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    """Add the seed's `report_metadata` view (`report['report_metadata']['total_events']`) to the API's answer.

    The view is the answer's `metadata` object if it has one, else its plain fields (ids, period,
    counts, status), which is what `POST /reports` returns.
    """
    metadata = answer.get("metadata")
    seed_view: dict[str, Any] = (
        dict(metadata)
        if isinstance(metadata, dict)
        else {key: value for key, value in answer.items() if not isinstance(value, dict | list)}
    )
    summary = answer.get("summary")
    if "total_events" not in seed_view:
        for source in (summary, metadata, answer):
            if isinstance(source, dict) and isinstance(source.get("total_events"), int):
                seed_view["total_events"] = source["total_events"]
                break
    return {**answer, "report_metadata": seed_view}
