"""Anchor Lambda (schedule, hourly): sign a digest of the chain into Object-Locked S3. Parsing and wiring only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from anchor.digest_store import DigestStore
from anchor.service import run_anchor
from anchor.signer import KmsSigner
from audit_common.db import get_transport
from audit_common.errors import ConfigurationError
from audit_common.observability import logger, metrics, tracer
from audit_common.scheduled import require_action
from audit_common.settings import get_settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduler input `{"action": "anchor"}`; safe to retry (see anchor.service)."""
    require_action(event, "anchor")
    settings = get_settings()
    if not settings.digest_bucket:
        raise ConfigurationError("no digest bucket configured (AUDIT_DIGEST_BUCKET)")
    if not settings.signing_key_id:
        raise ConfigurationError("no signing key configured (AUDIT_SIGNING_KEY_ID)")
    result = run_anchor(
        get_transport(),
        KmsSigner(settings.signing_key_id),
        DigestStore(settings.digest_bucket, settings.digest_lock_days),
        chain_id=settings.chain_id,
        page_events=settings.anchor_page_events,
    )
    metrics.add_metric(name="DigestsWritten", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EventsAnchored", unit=MetricUnit.Count, value=result.new_events)
    logger.info("anchor run", extra=asdict(result))
    return asdict(result)
