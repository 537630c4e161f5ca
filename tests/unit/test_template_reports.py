"""template.yaml's reports function, bucket and schedules agree with the code and the sample events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audit_common.settings import Settings
from reports.request import ScheduledReport
from tests.unit.test_template import _as_list, _functions, _template, _translated, _translated_statements

ROOT = Path(__file__).resolve().parents[2]
REPORT_EVENTS = ROOT / "events" / "reports"
# (standard, period) of every schedule: the daily PCI review, the weekly CIS review, a monthly report per standard.
EXPECTED_SCHEDULES = {
    ("pci_dss", "previous_day"),
    ("cis", "previous_week"),
    *((standard, "previous_month") for standard in ("gdpr", "hipaa", "sox", "pci_dss", "iso_27001", "cis")),
}


def _reports_function() -> dict[str, Any]:
    return _functions()["ReportsFunction"]


def _reports_schedules() -> dict[str, dict[str, Any]]:
    events = _reports_function()["Properties"]["Events"]
    return {name: e["Properties"] for name, e in events.items() if e["Type"] == "ScheduleV2"}


def test_function_runs_the_reports_handler_with_its_bucket_and_bus() -> None:
    """Given the function, Then its handler is reports.handler and it is told the bucket and bus it uses."""
    properties = _reports_function()["Properties"]
    assert properties["Handler"] == "reports.handler.lambda_handler"
    variables = properties["Environment"]["Variables"]
    assert variables["AUDIT_REPORTS_BUCKET"] == {"Ref": "ReportsBucket"}
    assert variables["AUDIT_EVENT_BUS_NAME"] == {"Ref": "AuditEventBus"}
    assert variables["AUDIT_REPORTS_KMS_KEY_ID"] == {
        "Fn::If": ["HasReportsKmsKey", {"Ref": "ReportsSseKmsArn"}, {"Ref": "AWS::NoValue"}]
    }
    for name in variables:
        if name.startswith("AUDIT_"):
            assert name.removeprefix("AUDIT_").lower() in Settings.model_fields, name


def test_schedules_are_the_documented_cadences_with_sample_inputs() -> None:
    """Given the schedules, Then each sends one of events/reports/schedule_*.json, retries, and parks failures."""
    samples = {path.name: json.loads(path.read_text()) for path in REPORT_EVENTS.glob("schedule_*.json")}
    found = set()
    for name, schedule in _reports_schedules().items():
        payload = json.loads(schedule["Input"])
        job = ScheduledReport.model_validate(payload)
        assert payload in samples.values(), name
        assert schedule["ScheduleExpressionTimezone"] == "UTC"
        assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ReportsDeadLetterQueue", "Arn"]}}
        assert schedule["OmitName"] is True
        found.add((job.standard.value, job.period.value))
    assert found == EXPECTED_SCHEDULES
    assert len(samples) == len(EXPECTED_SCHEDULES)


def test_daily_schedule_reports_on_the_whole_previous_day() -> None:
    """Given the daily schedule's Input at 00:15 UTC, Then the period is the previous calendar day."""
    daily = next(s for s in _reports_schedules().values() if json.loads(s["Input"])["period"] == "previous_day")
    assert daily["ScheduleExpression"] == "cron(15 0 * * ? *)"
    request = ScheduledReport.model_validate_json(daily["Input"]).to_request(datetime(2026, 12, 1, 0, 15, tzinfo=UTC))
    assert (request.start, request.end) == (datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_bucket_is_private_versioned_encrypted_and_tls_only() -> None:
    """Given the reports bucket, Then public access is blocked, it is versioned and encrypted, plain HTTP is
    refused, and half-finished multipart uploads are cleaned up."""
    resources = _template()["Resources"]
    bucket = resources["ReportsBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["Fn::If"][0] == "HasReportsKmsKey"
    assert sse["Fn::If"][1]["SSEAlgorithm"] == "aws:kms" and sse["Fn::If"][2] == {"SSEAlgorithm": "AES256"}
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["AbortIncompleteReportUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    policy = resources["ReportsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert policy[0]["Effect"] == "Deny" and policy[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_function_may_only_write_and_read_reports() -> None:
    """Given every generated IAM statement, Then the reports role touches S3 only to put, get and abort uploads
    under reports/ of its own bucket, and KMS only through the conditional policy naming the configured key."""
    s3 = [
        (owner, statement)
        for owner, statement in _translated_statements()
        if "ReportsBucket" in json.dumps(statement.get("Resource"))
    ]
    assert len(s3) == 1
    owner, statement = s3[0]
    assert owner == "ReportsFunctionRole"
    assert set(_as_list(statement["Action"])) == {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}
    assert statement["Resource"] == {"Fn::Sub": "${ReportsBucket.Arn}/reports/*"}

    kms = _template()["Resources"]["ReportsKmsPolicy"]
    assert kms["Condition"] == "HasReportsKmsKey"
    kms_statement = kms["Properties"]["PolicyDocument"]["Statement"][0]
    assert kms_statement["Resource"] == {"Ref": "ReportsSseKmsArn"}
    role = _translated()["Resources"]["ReportsFunctionRole"]["Properties"]
    assert {"Fn::If": ["HasReportsKmsKey", {"Ref": "ReportsKmsPolicy"}, {"Ref": "AWS::NoValue"}]} in role[
        "ManagedPolicyArns"
    ]
