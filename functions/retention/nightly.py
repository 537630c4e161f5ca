"""Retention Lambda (schedule, 02:00 UTC): archive then redact everything past retention."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_common.db import get_transport
from audit_common.errors import ConfigurationError
from audit_common.observability import logger, metrics, tracer
from audit_common.scheduled import require_action
from audit_common.settings import get_settings
from retention.archive import Archiver
from retention.runner import RunLimits, run_retention

# Leave this much of the Lambda's time for the last batch to finish and the state to be saved.
SAFETY_SECONDS = 90


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduler input `{"action": "retention"}`; a run cut off by the timeout resumes next time."""
    require_action(event, "retention")
    settings = get_settings()
    if not settings.archive_bucket:
        raise ConfigurationError("no archive bucket configured (AUDIT_ARCHIVE_BUCKET)")
    limits = RunLimits(
        batch_events=settings.retention_batch_events,
        redact_events=settings.retention_redact_events,
        deadline=time.monotonic() + max(1.0, context.get_remaining_time_in_millis() / 1000 - SAFETY_SECONDS),
    )
    result = run_retention(
        get_transport(),
        Archiver(settings.archive_bucket, settings.archive_lock_days),
        triggered_by=f"schedule:{context.aws_request_id}",
        limits=limits,
    )
    metrics.add_metric(name="RetentionArchived", unit=MetricUnit.Count, value=result.archived)
    metrics.add_metric(name="RetentionRedacted", unit=MetricUnit.Count, value=result.redacted)
    metrics.add_metric(name="RetentionHeldBack", unit=MetricUnit.Count, value=result.held_back)
    logger.info("retention run", extra=asdict(result))
    return asdict(result)
