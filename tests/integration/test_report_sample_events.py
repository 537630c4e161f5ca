"""events/reports/*.json replayed through the reports handler: the API calls, then every schedule payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import psycopg
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_common.settings import get_settings
from reports import handler as reports_handler
from tests.support.apigw import FakeLambdaContext, invoke
from tests.support.aws import moto_account
from tests.support.events import one

EVENTS = Path(__file__).resolve().parents[2] / "events" / "reports"


def sample(name: str) -> dict[str, Any]:
    loaded = json.loads((EVENTS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture
def aws(configured: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto with the reports bucket and the bus, as template.yaml defines them."""
    with moto_account():
        boto3.client("s3").create_bucket(Bucket="audit-reports-samples")
        boto3.client("events").create_event_bus(Name="audit-samples")
        monkeypatch.setenv("AUDIT_REPORTS_BUCKET", "audit-reports-samples")
        monkeypatch.setenv("AUDIT_EVENT_BUS_NAME", "audit-samples")
        get_settings.cache_clear()
        reports_handler._store.cache_clear()
        reports_handler.publisher.cache_clear()
        yield "audit-reports-samples"
        reports_handler._store.cache_clear()
        reports_handler.publisher.cache_clear()


def test_api_samples_in_order(aws: str, db: psycopg.Connection[Any]) -> None:
    """post_report -> 201 and stored; post_report_invalid -> 422 naming standard and end, nothing stored;
    get_reports lists the one report; get_report names an id that was never made -> 404."""
    created = invoke(reports_handler.lambda_handler, sample("post_report.json"))
    assert created.status == 201, created.body
    assert created.body["standard"] == "pci_dss" and set(created.body["formats"]) == {"json", "csv", "html"}
    assert created.body["period_start"] == "2026-11-26T00:00:00.000000Z"

    refused = invoke(reports_handler.lambda_handler, sample("post_report_invalid.json"))
    assert refused.status == 422
    assert {e["field"] for e in refused.body["errors"]} == {"standard", "end"}
    assert one(db, "select count(*) from audit.reports")[0] == 1

    listed = invoke(reports_handler.lambda_handler, sample("get_reports.json"))
    assert listed.status == 200
    assert [r["report_id"] for r in listed.body["reports"]] == [created.body["report_id"]]

    unknown = invoke(reports_handler.lambda_handler, sample("get_report.json"))
    assert unknown.status == 404 and unknown.body["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS.glob("schedule_*.json")))
def test_schedule_samples_make_a_report(name: str, aws: str, db: psycopg.Connection[Any]) -> None:
    """Each schedule payload makes its standard's report over its relative period, recorded as scheduled."""
    payload = sample(name)
    context = cast("LambdaContext", FakeLambdaContext(function_name="reports"))
    answer = reports_handler.lambda_handler(payload, context)
    assert answer["status"] == "ready" and answer["standard"] == payload["standard"]
    assert answer["generated_by"] == f"schedule:{payload['schedule']}"
    assert one(db, "select standard, trigger from audit.reports") == (payload["standard"], "schedule")
