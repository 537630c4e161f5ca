"""moto-backed AWS for tests: the alert topic (read back through SQS) and the event bus (rule -> SQS)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

WEBHOOK_SECRET = "local-webhook-secret"
"""The detect function's webhook secret in tests (the sample events in events/detect carry it too)."""


@dataclass
class AlertSinks:
    """Where published alerts can be read back."""

    topic_arn: str
    bus_name: str
    topic_queue_url: str
    bus_queue_url: str

    def _drain(self, url: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def sns_messages(self) -> list[dict[str, Any]]:
        """SNS notifications delivered so far (Subject, Message, MessageAttributes)."""
        return self._drain(self.topic_queue_url)

    def bus_events(self) -> list[dict[str, Any]]:
        """EventBridge events delivered so far (source, detail-type, detail)."""
        return self._drain(self.bus_queue_url)


@contextmanager
def alert_sinks() -> Iterator[AlertSinks]:
    """A moto account with the alert topic and bus, each fanned out to an SQS queue."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    try:
        with mock_aws():
            sqs = boto3.client("sqs")
            sns = boto3.client("sns")
            events = boto3.client("events")
            topic_arn = sns.create_topic(Name="audit-alerts")["TopicArn"]
            topic_queue = sqs.create_queue(QueueName="alerts-topic")["QueueUrl"]
            topic_queue_arn = sqs.get_queue_attributes(QueueUrl=topic_queue, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=topic_queue_arn)
            bus_name = "audit-trail-test"
            events.create_event_bus(Name=bus_name)
            bus_queue = sqs.create_queue(QueueName="alerts-bus")["QueueUrl"]
            bus_queue_arn = sqs.get_queue_attributes(QueueUrl=bus_queue, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            events.put_rule(
                Name="all-alerts", EventBusName=bus_name, EventPattern=json.dumps({"source": ["audit-trail.detect"]})
            )
            events.put_targets(Rule="all-alerts", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": bus_queue_arn}])
            yield AlertSinks(topic_arn, bus_name, topic_queue, bus_queue)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
