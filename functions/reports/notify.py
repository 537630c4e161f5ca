"""Tell the bus a scheduled report is ready, with its links (subscribe a rule to mail or file it)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Final

from audit_common.aws_config import aws_config
from audit_common.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

    from reports.service import ReportOut

EVENT_SOURCE: Final = "audit-trail.reports"
EVENT_DETAIL_TYPE: Final = "Compliance Report Ready"


class ReportPublisher:
    """Publishes "report ready" events with boto3 (client created on first use)."""

    def __init__(self, event_bus_name: str) -> None:
        self.event_bus_name = event_bus_name

    @cached_property
    def _events(self) -> EventBridgeClient:
        import boto3

        return boto3.client("events", config=aws_config())

    def report_ready(self, report: ReportOut) -> None:
        """One event: the report's record and its presigned links; raises when EventBridge refuses it."""
        answer = self._events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Detail": report.model_dump_json(),
                    "EventBusName": self.event_bus_name,
                    "Resources": [],
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            entry = answer["Entries"][0]
            raise ServiceUnavailable(f"the bus refused the report-ready event: {entry.get('ErrorMessage')}")
