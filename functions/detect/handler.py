"""Detect Lambda (API): the Supabase database webhook, and the alert routes. Parsing and mapping only."""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Annotated, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ValidationError

from audit_common.api import AlertOut, AlertPage, AlertUpdate
from audit_common.db import get_transport, read_secret
from audit_common.errors import ConfigurationError
from audit_common.guard import caller
from audit_common.http import ERROR_RESPONSES, JsonBody, api_lambda_handler, create_resolver
from audit_common.observability import logger, metrics
from audit_common.settings import get_settings
from audit_common.validation import invalid_input
from detect import alerts, engine
from detect.publish import AlertPublisher
from detect.webhook import WebhookPayload, authenticate, ignored_because

app = create_resolver()


class WebhookAnswer(BaseModel):
    """What the webhook call did."""

    status: Literal["analysed", "ignored"]
    reason: str | None = None
    seq: int | None = None
    alerts: list[AlertOut] = []


def webhook_secret() -> str:
    """The shared secret: from Secrets Manager in Lambda (cached by Powertools), or local settings."""
    settings = get_settings()
    if settings.webhook_secret_arn:
        # An empty secret falls back to the local setting below, then fails closed.
        with contextlib.suppress(ConfigurationError):
            return read_secret(settings.webhook_secret_arn, settings.secret_max_age_seconds)
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value()
    # Fail closed: without a secret nobody can be told apart from the database.
    raise ConfigurationError("no webhook secret configured (AUDIT_WEBHOOK_SECRET_ARN)")


@cache
def publisher() -> AlertPublisher:
    """The process-wide alert publisher."""
    settings = get_settings()
    return AlertPublisher(settings.event_bus_name, settings.alert_topic_arn)


@app.post(
    "/webhooks/supabase",
    summary="Supabase database webhook: analyse a new event",
    description="Authenticated by the X-Audit-Webhook-Secret header. Other tables and operations answer 200 ignored.",
    responses={401: {"description": "Missing or wrong secret"}, **ERROR_RESPONSES},
    tags=["detection"],
)
def supabase_webhook(body: Annotated[JsonBody, Body()]) -> WebhookAnswer:
    """Authenticate, then evaluate every rule for the inserted event (read back from the database)."""
    # Authenticate before looking at the body: an unsigned call learns nothing from our validation.
    authenticate(dict(app.current_event.headers or {}), webhook_secret())
    try:
        payload = WebhookPayload.model_validate(body)
    except ValidationError as exc:
        raise invalid_input([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    reason = ignored_because(payload)
    if reason is not None:
        return WebhookAnswer(status="ignored", reason=reason)
    seq = (payload.record or {}).get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise invalid_input([{"loc": ("body", "record", "seq"), "msg": "must be the event's seq (a positive integer)"}])
    result = engine.analyse(get_transport(), [seq], source="webhook", publisher=publisher())
    metrics.add_metric(name="AlertsCreated", unit=MetricUnit.Count, value=result.created)
    if result.publish_failed:
        metrics.add_metric(name="AlertPublishFailed", unit=MetricUnit.Count, value=result.publish_failed)
    return WebhookAnswer(status="analysed", seq=seq, alerts=result.alerts)


@app.get("/alerts", summary="List alerts, newest first", responses=ERROR_RESPONSES, tags=["alerts"])
def get_alerts(
    status: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
    severity: Annotated[Literal["low", "medium", "high", "critical"] | None, Query()] = None,
    rule: Annotated[str | None, Query(max_length=63)] = None,
    user_id: Annotated[str | None, Query(max_length=255, description="Alerts keyed by this user")] = None,
    ip_address: Annotated[str | None, Query(max_length=64, description="Alerts keyed by this IP")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertPage:
    """Alerts matching every filter."""
    return alerts.list_alerts(
        get_transport(),
        status=status,
        severity=severity,
        rule=rule,
        key=user_id or ip_address,
        limit=limit,
        cursor=cursor,
    )


@app.patch(
    "/alerts/<alert_id>",
    summary="Acknowledge, resolve or reopen an alert",
    responses={404: {"description": "Unknown alert"}, **ERROR_RESPONSES},
    tags=["alerts"],
)
def patch_alert(alert_id: Annotated[UUID, Path()], change: Annotated[AlertUpdate, Body()]) -> AlertOut:
    """Change an alert's status; who did it is recorded."""
    updated = alerts.update_alert(get_transport(), str(alert_id), change, actor=caller(app).label)
    logger.info("alert status changed", extra={"alert_id": updated.alert_id, "status": updated.status})
    return updated


lambda_handler = api_lambda_handler(app)
"""API Gateway proxy event in, proxy response out."""
