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
def moto_account() -> Iterator[None]:
    """moto in-process, with throwaway credentials set (and the caller's restored afterwards)."""
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {key: os.environ.get(key) for key in fake}
    os.environ.update(fake)
    try:
        with mock_aws():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


@contextmanager
def alert_sinks() -> Iterator[AlertSinks]:
    """A moto account with the alert topic and bus, each fanned out to an SQS queue."""
    with moto_account():
        sns = boto3.client("sns")
        events = boto3.client("events")
        topic_arn = sns.create_topic(Name="audit-alerts")["TopicArn"]
        topic_queue, topic_queue_arn = _queue("alerts-topic")
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=topic_queue_arn)
        bus_name = "audit-trail-test"
        events.create_event_bus(Name=bus_name)
        bus_queue, bus_queue_arn = _queue("alerts-bus")
        pattern = json.dumps({"source": ["audit-trail.detect"]})
        events.put_rule(Name="all-alerts", EventBusName=bus_name, EventPattern=pattern)
        events.put_targets(Rule="all-alerts", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": bus_queue_arn}])
        yield AlertSinks(topic_arn, bus_name, topic_queue, bus_queue)


@contextmanager
def archive_bucket(name: str = "audit-archive-test") -> Iterator[str]:
    """A moto account with a versioned, Object-Locked bucket (as template.yaml's archive bucket)."""
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        yield name
