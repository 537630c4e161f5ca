"""Straight to the database's SQL API through the shared transport (no HTTP API in between).

The same code path the ingest function uses (`audit_common.event_store.store_events`): events are
sealed here and stored by `audit.ingest_events`, which links the chain and answers duplicates, so the
database enforces the same invariants whichever way an event arrives. Chosen when the SDK is given a
database URL, or a Supabase URL and service role key, as the seed was configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from audit_common.api import AlertOut, EventResult, StoredEvent
from audit_common.db import PostgresTransport, PostgrestTransport, Transport
from audit_common.errors import AuditError, InvalidInput, ServiceUnavailable
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn, ComplianceStandard
from audit_trail.config import DeliveryMode
from audit_trail.errors import APIError, DeliveryError, NotAvailableError

if TYPE_CHECKING:
    from audit_trail.config import AuditConfig

REPORTS_DIRECT: Final = (
    "compliance reports are produced by the reports function (aggregation in SQL, files in S3 behind "
    "presigned links), which a logger writing straight to the database does not have: configure api_url "
    "(POST /reports) to generate one, or run `audit-trail report`"
)


def _api_error(exc: AuditError) -> APIError:
    return APIError(exc.status, exc.code, exc.message)


class DirectBackend:
    """Calls `audit.*` SQL API functions with the functions' own transport."""

    def __init__(self, config: AuditConfig, *, transport: Transport | None = None) -> None:
        self._config = config
        mode = config.delivery_mode()
        if transport is not None:
            self._transport = transport
            self.description = "database (given transport)"
        elif mode is DeliveryMode.DATABASE:
            assert config.database_url is not None  # delivery_mode() checked it
            self._transport = PostgresTransport(
                config.database_url.get_secret_value(),
                role=config.database_role,
                connect_timeout=max(1, int(config.request_timeout_seconds)),
                statement_timeout_ms=int(config.request_timeout_seconds * 1000) * 2,
                application_name="audit-trail-sdk",
            )
            self.description = "PostgreSQL (database_url)"
        else:
            assert config.supabase_url is not None
            assert config.supabase_key is not None
            self._transport = PostgrestTransport(
                config.supabase_url, config.supabase_key.get_secret_value(), timeout=config.request_timeout_seconds
            )
            self.description = f"Supabase at {config.supabase_url}"

    def _call(self, function: str, args: dict[str, Any]) -> Any:
        try:
            return self._transport.call(function, args)
        except AuditError as exc:
            raise _api_error(exc) from exc

    def check(self) -> None:
        """One cheap SQL API call: proves the address, the credentials and the migrations."""
        self._call("chain_state", {})

    def send(self, events: Sequence[AuditEventIn]) -> list[EventResult]:
        """Seal and store the batch in one `ingest_events` call (one transaction)."""
        try:
            return store_events(self._transport, events).results
        except InvalidInput as exc:
            # The database names no position: the flusher bisects the batch to find the refused event.
            raise DeliveryError(exc.message, retryable=False) from exc
        except ServiceUnavailable as exc:
            raise DeliveryError(exc.message, retryable=True) from exc
        except AuditError as exc:
            raise DeliveryError(exc.message, retryable=True) from exc

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
        """`audit.list_events`, newest first."""
        rows = self._call(
            "list_events",
            {
                "p_user_id": user_id,
                "p_event_type": event_type,
                "p_security_level": security_level,
                "p_compliance_tag": compliance_tag,
                "p_from": start,
                "p_to": end,
                "p_limit": limit,
                "p_descending": True,
            },
        )
        return [StoredEvent.model_validate(row) for row in rows or []]

    def get_event(self, event_id: str) -> StoredEvent | None:
        """`audit.get_event`."""
        row = self._call("get_event", {"p_event_id": event_id})
        return None if row is None else StoredEvent.model_validate(row)

    def list_alerts(self, *, limit: int) -> list[AlertOut]:
        """`audit.list_alerts`, newest first."""
        rows = self._call("list_alerts", {"p_limit": limit})
        return [AlertOut.model_validate(row) for row in rows or []]

    def compliance_report(self, standard: ComplianceStandard, start: datetime, end: datetime) -> dict[str, Any]:
        """Not available without the reports function: say what to do instead."""
        raise NotAvailableError(REPORTS_DIRECT)

    def run_retention(self) -> dict[str, Any]:
        """Run the retention runner in-process: archive to the Object-Locked bucket, verify, then redact.

        Needs the functions' `retention` package (a source checkout or the Lambda bundle: it is not in
        the SDK wheel) and `archive_bucket`; without either, the error says what to do instead.
        """
        bucket = self._config.archive_bucket
        if not bucket:
            raise NotAvailableError(
                "retention archives to S3 before it redacts anything: set archive_bucket (AUDIT_ARCHIVE_BUCKET) "
                "to the Object-Locked archive bucket, or let the nightly retention function do it"
            )
        try:
            from retention.archive import Archiver
            from retention.runner import RunLimits, run_retention
        except ImportError as exc:
            raise NotAvailableError(
                "the retention runner (functions/retention) is not importable here: run it from a source "
                "checkout with functions/ on sys.path, or invoke the nightly retention function"
            ) from exc
        try:
            result = run_retention(
                self._transport,
                Archiver(bucket, self._config.archive_lock_days),
                triggered_by="sdk:cleanup_old_events",
                limits=RunLimits(),
            )
        except AuditError as exc:
            raise _api_error(exc) from exc
        return {
            "run_id": result.run_id,
            "status": result.status,
            "archived": result.archived,
            "redacted": result.redacted,
            "held_back": result.held_back,
        }

    def close(self) -> None:
        """Close the database connection."""
        self._transport.close()
