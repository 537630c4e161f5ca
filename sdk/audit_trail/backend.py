"""What the logger needs from a destination: deliver a batch, read events and alerts, run admin jobs.

Two implementations: `http_backend.HttpBackend` (the HTTP API) and `direct_backend.DirectBackend`
(the database's SQL API through the shared transport). Each is imported only when chosen, so an
application that talks HTTP never imports psycopg, and one that writes directly never imports httpx.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from audit_common.api import AlertOut, EventResult, StoredEvent
from audit_common.models import AuditEventIn, ComplianceStandard

if TYPE_CHECKING:
    from audit_trail.config import AuditConfig


class Backend(Protocol):
    """A destination for events. Every method may be called from any thread."""

    description: str

    def check(self) -> None:
        """Prove the destination is reachable and accepts our credentials; raise if not."""
        ...

    def send(self, events: Sequence[AuditEventIn]) -> list[EventResult]:
        """Store the events in order; raise `DeliveryError` (retryable or not) when nothing was stored."""
        ...

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
        """The newest events matching every filter."""
        ...

    def get_event(self, event_id: str) -> StoredEvent | None:
        """One stored event, or None."""
        ...

    def list_alerts(self, *, limit: int) -> list[AlertOut]:
        """The newest alerts."""
        ...

    def compliance_report(self, standard: ComplianceStandard, start: datetime, end: datetime) -> dict[str, Any]:
        """Generate a report; the answer of `POST /reports`."""
        ...

    def run_retention(self) -> dict[str, Any]:
        """Run retention now (archive then redact what is past its retention period)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def backend_for(config: AuditConfig) -> Backend:
    """The backend the configuration asks for (imports only that one's dependencies)."""
    from audit_trail.config import DeliveryMode

    mode = config.delivery_mode()
    if mode is DeliveryMode.HTTP:
        from audit_trail.http_backend import HttpBackend

        return HttpBackend(config)
    from audit_trail.direct_backend import DirectBackend

    return DirectBackend(config)
