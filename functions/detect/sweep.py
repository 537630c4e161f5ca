"""Detect sweep (EventBridge Scheduler, every 5 minutes): analyse what no webhook analysed.

pg_net sends each database webhook once and never retries, so a dropped call would otherwise be
a missed attack. The sweep reads the events above the watermark that are not in the detection log,
analyses them exactly as the webhook would (idempotently), publishes any alert still queued, and
moves the watermark. It stops before the Lambda timeout and continues on the next run. First it
copies into the chain any retention policy change or legal hold made in SQL since the last run
(`audit_common.admin_changes`).
"""

from __future__ import annotations

import time
from typing import Any, Final

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from audit_common.admin_changes import chain_admin_changes
from audit_common.db import Transport, get_transport
from audit_common.observability import logger, metrics, tracer
from audit_common.scheduled import require_action
from audit_common.settings import get_settings
from detect import engine
from detect.handler import publisher
from detect.publish import AlertPublisher

ANALYTICS_REFRESH_EVENTS: Final = 200_000
"""Events rolled up for the analytics per sweep: about a second of work, far above 5 minutes of ingest."""


class SweepResult(BaseModel):
    """What one sweep did."""

    admin_changes_chained: int = 0
    analytics_rolled_up_seq: int | None = None
    analysed: int
    alerts_created: int
    published: int
    watermark: int
    head_seq: int
    complete: bool


def sweep(transport: Transport, publisher: AlertPublisher | None, *, batch: int, budget_seconds: float) -> SweepResult:
    """Chain the administrators' changes made in SQL, then analyse the backlog in batches until it is
    empty or the time budget is spent."""
    deadline = time.monotonic() + budget_seconds
    admin_changes = chain_admin_changes(transport)
    analysed = created = published = 0
    watermark = head = 0
    complete = False
    while time.monotonic() < deadline:
        backlog = transport.call("detection_backlog", {"p_limit": batch})
        seqs: list[int] = backlog["seqs"]
        head = backlog["head_seq"]
        if not seqs:
            watermark = transport.call("advance_detection_watermark", {"p_seq": head})
            complete = True
            break
        result = engine.analyse(transport, seqs, source="sweep", publisher=publisher)
        analysed += result.analysed
        created += result.created
        published += result.published
        watermark = transport.call("advance_detection_watermark", {"p_seq": seqs[-1]})
    if publisher is not None:
        # Alerts whose publishing failed earlier (AWS unavailable) are retried on every sweep.
        sent, _failed = engine.publish_pending(transport, publisher)
        published += sent
    # Keep the dashboard's rollups warm, so GET /analytics rarely pays for a catch-up itself (the
    # first call over 1M unrolled events takes over a second). Skipped if a dashboard call holds it.
    rollup = transport.call("analytics_refresh", {"p_max_events": ANALYTICS_REFRESH_EVENTS})
    return SweepResult(
        admin_changes_chained=admin_changes,
        analytics_rolled_up_seq=rollup.get("rolled_up_seq") if rollup.get("refreshed") else None,
        analysed=analysed,
        alerts_created=created,
        published=published,
        watermark=watermark,
        head_seq=head,
        complete=complete,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduler input `{"action": "sweep"}`; anything else is refused rather than guessed at."""
    require_action(event, "sweep")
    settings = get_settings()
    budget = min(settings.sweep_time_budget_seconds, max(1.0, context.get_remaining_time_in_millis() / 1000 - 30))
    result = sweep(get_transport(), publisher(), batch=settings.sweep_batch_events, budget_seconds=budget)
    metrics.add_metric(name="SweepAnalysed", unit=MetricUnit.Count, value=result.analysed)
    metrics.add_metric(name="SweepLag", unit=MetricUnit.Count, value=max(0, result.head_seq - result.watermark))
    logger.info("sweep finished", extra=result.model_dump())
    return result.model_dump()
