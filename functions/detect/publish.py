"""Alerts out to people and systems: every alert to the EventBridge bus, high and critical to SNS.

This is the serverless form of the seed's streaming callbacks: subscribe a rule on the bus (or an
email, chat or pager endpoint on the topic) instead of registering a Python callback.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

import orjson

from audit_common.api import AlertOut
from audit_common.aws_config import aws_config

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

EVENT_SOURCE: Final = "audit-trail.detect"
EVENT_DETAIL_TYPE: Final = "Security Alert"
PAGED_SEVERITIES: Final = frozenset({"high", "critical"})


def attack_url(attack_id: str) -> str:
    """The MITRE ATT&CK page of a technique id (T1110.001 -> .../techniques/T1110/001/)."""
    return "https://attack.mitre.org/techniques/" + attack_id.replace(".", "/") + "/"


def subject(alert: AlertOut) -> str:
    """An SNS subject (at most 100 characters): severity, score, rule, key."""
    text = f"[{alert.severity.upper()} {alert.risk_score:.1f}] {alert.rule}: {alert.alert_key}"
    return text[:100]


def message(alert: AlertOut) -> str:
    """The notification body: what happened, how bad, the evidence, and what to do next."""
    evidence = ", ".join(alert.event_ids[:10]) + (
        f" (+{len(alert.event_ids) - 10} more)" if len(alert.event_ids) > 10 else ""
    )
    lines = [
        alert.summary,
        "",
        f"Risk score {alert.risk_score:.1f}/10 ({alert.severity}); rule {alert.rule}; "
        f"MITRE ATT&CK {alert.attack_id} {attack_url(alert.attack_id)}",
        f"Window: {alert.window_start} (+{alert.window_seconds} s); "
        f"events {alert.first_event_at} .. {alert.last_event_at}",
        f"Triggering events ({alert.event_count}): {evidence}",
        "",
        "What to do: review the events (GET /events?user_id=... or by event id), confirm with the account owner,",
        f'then acknowledge or resolve: PATCH /alerts/{alert.alert_id} {{"status": "acknowledged"}}.',
        f"Alert id: {alert.alert_id}",
    ]
    return "\n".join(lines)


class AlertPublisher:
    """Publishes alerts with boto3 (clients created on first use; endpoint from the environment)."""

    def __init__(self, event_bus_name: str | None, topic_arn: str | None) -> None:
        self.event_bus_name = event_bus_name
        self.topic_arn = topic_arn

    @cached_property
    def _events(self) -> EventBridgeClient:
        import boto3

        return boto3.client("events", config=aws_config())

    @cached_property
    def _sns(self) -> SNSClient:
        import boto3

        return boto3.client("sns", config=aws_config())

    def publish(self, alert: AlertOut) -> None:
        """Send one alert; raises when AWS refuses it (the caller keeps it queued)."""
        detail: dict[str, Any] = alert.model_dump()
        if self.event_bus_name:
            response = self._events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": EVENT_DETAIL_TYPE,
                        "Detail": orjson.dumps(detail).decode(),
                        "EventBusName": self.event_bus_name,
                        "Resources": [],
                    }
                ]
            )
            if response.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge refused alert {alert.alert_id}: {response['Entries']}")
        if self.topic_arn and alert.severity in PAGED_SEVERITIES:
            self._sns.publish(
                TopicArn=self.topic_arn,
                Subject=subject(alert),
                Message=message(alert),
                MessageAttributes={
                    "severity": {"DataType": "String", "StringValue": alert.severity},
                    "rule": {"DataType": "String", "StringValue": alert.rule},
                },
            )
