"""Compliance reports on the real database and moto S3: a seeded scenario gives each standard the
sections and statuses it implies; files match their recorded SHA-256; bad requests write nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import psycopg
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from audit_common.settings import get_settings
from detect import engine
from reports import handler as reports_handler
from reports.model import Report
from retention import gdpr
from tests.support.apigw import FakeLambdaContext, invoke, proxy_event
from tests.support.aws import moto_account
from tests.support.events import make_event, one

BUCKET = "audit-reports-test"
ACTOR = "admin:tests"


@pytest.fixture
def reports_env(configured: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The reports function configured against the test database and a moto bucket."""
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("AUDIT_REPORTS_BUCKET", BUCKET)
        get_settings.cache_clear()
        reports_handler._store.cache_clear()
        reports_handler.publisher.cache_clear()
        yield BUCKET
        reports_handler._store.cache_clear()
        reports_handler.publisher.cache_clear()


def context() -> LambdaContext:
    """The Lambda context the scheduled path reads (request id, remaining time)."""
    return cast("LambdaContext", FakeLambdaContext(function_name="reports"))


def ev(n: int, at: datetime, **fields: Any) -> dict[str, Any]:
    """A complete event (origin, resource, session) at `at`, untagged unless said otherwise."""
    base = make_event(n, event_id=f"s-{n}", timestamp=at.isoformat(), status="success", compliance_tags=[])
    base["security_level"] = "low"
    base.update(fields)
    return base


@dataclass
class Scenario:
    """What was seeded, and the period that covers it."""

    start: datetime
    end: datetime
    total: int


BULK = 300


def seed(transport: PostgresTransport) -> Scenario:
    """A working hour: bulk activity, failed logins, a SoD conflict, PHI access, an erasure, an export,
    an untagged admin action, a credential change, card-data access and one event with a skewed clock."""
    now = datetime.now(UTC)
    t = now - timedelta(seconds=200)
    events: list[dict[str, Any]] = []
    kinds = ("file_upload", "file_access", "file_download", "user_logout")
    for n in range(BULK):
        events.append(
            ev(
                n,
                t + timedelta(milliseconds=n),
                event_type=kinds[n % 4],
                user_id=f"staff-{n % 10}",
                compliance_tags=["iso_27001"],
                action="work",
            )
        )
    n = 1000
    for i in range(6):  # failed logins: multiple_failed_logins fires at 5
        events.append(
            ev(
                n + i,
                t + timedelta(seconds=10 + i),
                event_type="user_login",
                status="failure",
                user_id="mallory",
                action="login",
                ip_address="198.51.100.7",
                resource_path="/login",
                resource_id=None,
            )
        )
    n = 1100
    events += [  # SoD: fin-alice creates and approves the same invoice; bob modifies, carol deletes (no conflict)
        ev(
            n,
            t + timedelta(seconds=20),
            event_type="file_upload",
            user_id="fin-alice",
            action="create_invoice",
            resource_id="inv-2026-11",
            resource_path="/finance/inv-2026-11.pdf",
            compliance_tags=["sox"],
        ),
        ev(
            n + 1,
            t + timedelta(seconds=21),
            event_type="user_activity",
            user_id="fin-alice",
            action="approve_invoice",
            resource_id="inv-2026-11",
            resource_path="/finance/inv-2026-11.pdf",
            compliance_tags=["sox"],
        ),
        ev(
            n + 2,
            t + timedelta(seconds=22),
            event_type="file_modify",
            user_id="fin-bob",
            action="modify",
            resource_id="ledger-b",
            resource_path="/finance/ledger-b.xlsx",
            compliance_tags=["sox"],
        ),
        ev(
            n + 3,
            t + timedelta(seconds=23),
            event_type="file_delete",
            user_id="fin-carol",
            action="delete",
            resource_id="ledger-b",
            resource_path="/finance/ledger-b.xlsx",
            compliance_tags=["sox"],
        ),
    ]
    n = 1200
    events += [  # PHI access
        *(
            ev(
                n + i,
                t + timedelta(seconds=30 + i),
                event_type="file_access",
                user_id="dr-house",
                action="view",
                resource_path="/phi/patient-42.pdf",
                resource_id="patient-42",
                compliance_tags=["hipaa", "gdpr"],
            )
            for i in range(3)
        ),
        ev(
            n + 3,
            t + timedelta(seconds=34),
            event_type="file_download",
            user_id="nurse-joy",
            action="download",
            resource_path="/phi/patient-7.pdf",
            resource_id="patient-7",
            compliance_tags=["hipaa"],
        ),
    ]
    n = 1300
    events += [  # the subject who asks for erasure: one event kept for SOX's 7 years
        ev(n, t + timedelta(seconds=40), event_type="file_upload", user_id="leaving-user", compliance_tags=["gdpr"]),
        ev(
            n + 1, t + timedelta(seconds=41), event_type="file_access", user_id="leaving-user", compliance_tags=["gdpr"]
        ),
        ev(
            n + 2,
            t + timedelta(seconds=42),
            event_type="file_upload",
            user_id="leaving-user",
            compliance_tags=["gdpr", "sox"],
        ),
    ]
    events += [
        # untagged admin action: a permission change that grants no admin role
        ev(
            1400,
            t + timedelta(seconds=50),
            event_type="permission_change",
            user_id="it-admin",
            action="grant_role",
            resource_path="/teams/finance",
            resource_id="team-finance",
            details={"role": "editor"},
        ),
        ev(
            1401,
            t + timedelta(seconds=51),
            event_type="user_activity",
            user_id="staff-1",
            action="password_change",
            compliance_tags=["iso_27001"],
        ),
        ev(
            1402,
            t + timedelta(seconds=52),
            event_type="file_access",
            user_id="cashier",
            action="view",
            resource_path="/cards/batch-7.csv",
            resource_id="batch-7",
            compliance_tags=["pci_dss"],
        ),
        # a client clock two hours behind
        ev(
            1403,
            now - timedelta(hours=2),
            event_type="file_upload",
            user_id="staff-2",
            action="work",
            compliance_tags=["iso_27001"],
        ),
    ]
    stored = event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])
    engine.analyse(transport, [r.seq for r in stored.results], source="sweep", publisher=None)
    gdpr.erase_subject(transport, "leaving-user", actor=ACTOR)
    gdpr.export_subject(transport, "dr-house", actor=ACTOR)
    # two records of the requests themselves (security_event, no origin address), and the erasure's chained
    # redaction record (system_event, no origin address either)
    return Scenario(start=now - timedelta(hours=3), end=datetime.now(UTC) + timedelta(seconds=1), total=len(events) + 3)


def post_report(standard: str, start: datetime, end: datetime, **extra: Any) -> Any:
    body = {"standard": standard, "start": start.isoformat(), "end": end.isoformat(), **extra}
    return invoke(reports_handler.lambda_handler, proxy_event("POST", "/reports", body=body))


def stored_report(answer: dict[str, Any]) -> Report:
    key = answer["formats"]["json"]["key"]
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return Report.model_validate_json(body)


def statuses(report: Report) -> dict[str, str]:
    return {s.control_id: s.status.value for s in report.sections}


def section(report: Report, control_id: str) -> Any:
    return next(s for s in report.sections if s.control_id == control_id)


@pytest.fixture
def scenario(reports_env: str, transport: PostgresTransport) -> Scenario:
    return seed(transport)


EXPECTED = {
    "pci_dss": {
        "10.2.1.1": "pass",
        "10.2.1.2": "pass",
        "10.2.1.3": "pass",
        "10.2.1.4": "pass",
        "10.2.1.5": "pass",
        "10.2.1.6": "attention",
        "10.2.1.7": "attention",
        "10.2.2": "pass",
        "10.4.1": "attention",
        "10.5.1": "attention",
    },
    "hipaa": {
        "164.312(b)": "pass",
        "164.308(a)(5)(ii)(C)": "attention",
        "164.308(a)(1)(ii)(D)": "attention",
        "164.312(c)(1)": "attention",
        "164.316(b)(2)(i)": "pass",
    },
    "sox": {
        "ITGC-ACC": "pass",
        "ITGC-CHG": "attention",
        "ITGC-SOD": "fail",
        "ITGC-INT": "attention",
        "ITGC-RET": "pass",
    },
    "gdpr": {
        "Art. 30": "pass",
        "Art. 15": "pass",
        "Art. 17": "pass",
        "Art. 5(1)(e)": "pass",
        "Art. 32": "attention",
        "Art. 33": "pass",
    },
    "iso_27001": {"A.8.15": "attention", "A.8.16": "attention", "A.8.17": "attention", "A.5.28": "attention"},
    "cis": {"8.2": "pass", "8.5": "pass", "8.10": "pass", "8.11": "attention"},
}
OVERALL = {
    "pci_dss": "attention",
    "hipaa": "attention",
    "sox": "fail",
    "gdpr": "attention",
    "iso_27001": "attention",
    "cis": "attention",
}


@pytest.mark.parametrize("standard", list(EXPECTED))
def test_scenario_gives_each_standard_its_statuses(
    standard: str, scenario: Scenario, db: psycopg.Connection[Any]
) -> None:
    """Given the seeded hour, When a report is made for a standard, Then its controls have the statuses
    and numbers the scenario implies, and every file in S3 matches its recorded SHA-256."""
    answer = post_report(standard, scenario.start, scenario.end)
    assert answer.status == 201, answer.body
    body = answer.body
    assert body["status"] == "ready" and body["overall_status"] == OVERALL[standard]
    report = stored_report(body)
    assert statuses(report) == EXPECTED[standard]
    assert report.summary.overall_status.value == OVERALL[standard]
    assert report.summary.total_events == scenario.total
    assert report.summary.failures.count == 6
    assert report.summary.alerts_by_severity == {"low": 0, "medium": 1, "high": 0, "critical": 0}
    assert report.empty is False
    assert report.integrity.valid and report.integrity.first_invalid_seq is None
    assert report.integrity.checked == scenario.total
    assert report.integrity.digest is None and "No signed digest" in report.integrity.method
    assert report.metadata.trigger == "api" and report.metadata.generated_by == ACTOR
    assert sum(p.events for p in report.summary.risk_trend) == scenario.total

    for fmt, meta in body["formats"].items():
        data = boto3.client("s3").get_object(Bucket=BUCKET, Key=meta["key"])
        raw = data["Body"].read()
        assert hashlib.sha256(raw).hexdigest() == meta["sha256"], fmt
        assert len(raw) == meta["size_bytes"]
        assert data["ServerSideEncryption"] == "AES256"
        assert meta["key"] == (f"reports/{standard}/{scenario.start:%Y}/{scenario.start:%m}/{body['report_id']}.{fmt}")
    recorded = one(
        db,
        "select formats, generated_by, trigger, status from audit.reports where report_id = %s",
        (body["report_id"],),
    )
    assert {f: v["sha256"] for f, v in recorded[0].items()} == {f: v["sha256"] for f, v in body["formats"].items()}
    assert recorded[1:] == (ACTOR, "api", "ready")


def test_scenario_numbers(scenario: Scenario) -> None:
    """The evidence behind the statuses: counts, the conflict, the erasure, the clock, the completeness."""
    pci = stored_report(post_report("pci_dss", scenario.start, scenario.end).body)
    assert section(pci, "10.2.1.4").metrics == {"events": 6, "failed_logins": 6}
    assert section(pci, "10.2.1.2").metrics == {"events": 1, "untagged": 1}
    unredacted = scenario.total - 2  # the erased subject's two redacted events
    complete = section(pci, "10.2.2").metrics
    assert complete["events_checked"] == unredacted
    assert complete["missing_origin"] == 3  # the two GDPR request records and the redaction record carry none
    assert complete["complete_percent"] == round(100 * (unredacted - 3) / unredacted, 2)
    assert section(pci, "10.4.1").status_reason == "1 alert of 1 still await review (within the 24 h window)."
    notable = {e.event_id: e.why for e in pci.notable_events}
    assert notable["s-1400"] == "administrative action without compliance tags"
    assert notable["s-1005"] == "evidence of alert multiple_failed_logins"
    assert notable["s-1403"].startswith("timestamp 7")  # about 7200 s from its arrival

    sox = stored_report(post_report("sox", scenario.start, scenario.end).body)
    sod = section(sox, "ITGC-SOD")
    assert sod.metrics["conflicts"] == 1 and sod.metrics["create_and_approve"] == 1
    assert sod.evidence[0].rows[0][:4] == ["fin-alice", "inv-2026-11", "create_and_approve", "s-1100, s-1101"]
    assert section(sox, "ITGC-CHG").metrics["untagged"] == 1
    assert section(sox, "ITGC-ACC").metrics["events"] == 5

    gdpr_report = stored_report(post_report("gdpr", scenario.start, scenario.end).body)
    erasure = section(gdpr_report, "Art. 17")
    assert erasure.metrics == {"requests": 1, "incomplete": 0, "events_kept": 1}
    row = dict(zip(erasure.evidence[0].columns, erasure.evidence[0].rows[0], strict=True))
    assert row["subject"] == "leaving-user" and row["redacted"] == 2 and row["kept"] == 1
    assert row["left unredacted"] == 1 and row["complete"] is True and row["grounds"] == "retention_obligation"
    assert section(gdpr_report, "Art. 15").metrics == {"requests": 1}
    assert section(gdpr_report, "Art. 30").metrics["users"] == 3

    hipaa = stored_report(post_report("hipaa", scenario.start, scenario.end).body)
    phi = section(hipaa, "164.312(b)")
    assert phi.metrics["events"] == 4 and phi.metrics["users"] == 2
    assert [r[0] for r in phi.evidence[0].rows] == ["dr-house", "nurse-joy"]

    iso = stored_report(post_report("iso_27001", scenario.start, scenario.end).body)
    clock = section(iso, "A.8.17")
    assert clock.metrics["skewed_events"] == 1 and 7100 < clock.metrics["max_skew_seconds"] < 7300


def test_csv_streams_every_event_in_scope(scenario: Scenario) -> None:
    """The CSV holds a header and one row per event of the period, in seq order."""
    body = post_report("cis", scenario.start, scenario.end, formats=["csv"]).body
    assert set(body["formats"]) == {"csv"} and body["download_url"] == body["formats"]["csv"]["download_url"]
    raw = boto3.client("s3").get_object(Bucket=BUCKET, Key=body["formats"]["csv"]["key"])["Body"].read().decode()
    lines = raw.split("\r\n")[:-1]
    assert lines[0].startswith("seq,event_id,timestamp,event_type,user_id")
    assert len(lines) == 1 + scenario.total
    seqs = [int(line.split(",")[0]) for line in lines[1:]]
    assert seqs == sorted(seqs)
    assert any('"mallory"' in line and ",failure," in line for line in lines)


def test_csv_pages_and_formula_cells(
    reports_env: str, transport: PostgresTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages smaller than the period still give every row once; a formula-like cell is defused."""
    now = datetime.now(UTC)
    events = [
        ev(n, now - timedelta(seconds=250 - n // 2), action='=HYPERLINK("x")' if n == 3 else "work") for n in range(250)
    ]
    event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])
    monkeypatch.setenv("AUDIT_REPORT_CSV_PAGE_ROWS", "100")
    get_settings.cache_clear()
    body = post_report("cis", now - timedelta(hours=1), now + timedelta(seconds=1), formats=["csv"]).body
    raw = boto3.client("s3").get_object(Bucket=BUCKET, Key=body["formats"]["csv"]["key"])["Body"].read().decode()
    lines = raw.split("\r\n")[1:-1]
    assert len(lines) == 250 and len({line.split(",")[0] for line in lines}) == 250
    assert '"\'=HYPERLINK(""x"")"' in raw


def test_empty_period_is_a_valid_report_that_says_so(reports_env: str) -> None:
    """Given a period without events, Then the report is stored, marked empty, and its sections say why."""
    start = (datetime.now(UTC) - timedelta(days=300)).replace(minute=0, second=0, microsecond=0)
    answer = post_report("pci_dss", start, start + timedelta(days=1))
    assert answer.status == 201
    report = stored_report(answer.body)
    assert report.empty is True and report.summary.total_events == 0 and report.notable_events == []
    assert report.integrity.valid and report.integrity.checked == 0
    assert len(report.summary.risk_trend) == 24 and all(p.events == 0 for p in report.summary.risk_trend)
    assert section(report, "10.2.2").status.value == "attention"
    assert "No events of this class" in section(report, "10.2.1.1").status_reason
    csv = boto3.client("s3").get_object(Bucket=BUCKET, Key=answer.body["formats"]["csv"]["key"])["Body"].read()
    assert csv.count(b"\r\n") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"standard": "nist", "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}, "standard"),
        ({"standard": "sox", "start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
        ({"standard": "sox", "start": "2025-01-01T00:00:00Z", "end": "2026-01-03T00:00:00Z"}, "end"),
        (
            {"standard": "sox", "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z", "formats": ["pdf"]},
            "formats[0]",
        ),
        ({"standard": "sox", "start": "2026-11-01T00:00:00", "end": "2026-11-02T00:00:00Z"}, "start"),
        ({"standard": "sox", "start": "2026-11-01T00:00:00Z"}, "end"),
        # the calendar's edges with an offset have no UTC equivalent (found by the API fuzz: they were 500s)
        ({"standard": "sox", "start": "0001-01-01T00:00:00+05:00", "end": "2026-11-02T00:00:00Z"}, "start"),
        ({"standard": "sox", "start": "2026-11-01T00:00:00Z", "end": "9999-12-31T23:59:59-05:00"}, "end"),
    ],
)
def test_bad_requests_get_422_and_write_nothing(
    body: dict[str, Any], field: str, reports_env: str, db: psycopg.Connection[Any]
) -> None:
    """Unknown standard, end before start, a period over the maximum, a bad format, a zoneless or missing
    time: 422 naming the field, and neither S3 nor the reports table holds anything."""
    answer = invoke(reports_handler.lambda_handler, proxy_event("POST", "/reports", body=body))
    assert answer.status == 422, answer.body
    assert field in [e["field"] for e in answer.body["errors"]]
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert one(db, "select count(*) from audit.reports")[0] == 0


def test_get_and_list_give_fresh_links(scenario: Scenario) -> None:
    """GET /reports/{id} signs a new URL for the chosen format and lifetime; GET /reports pages newest first."""
    first = post_report("cis", scenario.start, scenario.end).body
    second = post_report("sox", scenario.start, scenario.end).body
    got = invoke(
        reports_handler.lambda_handler,
        proxy_event(
            "GET",
            f"/reports/{first['report_id']}?format=json&expires_in=120",
            resource="/reports/{report_id}",
            path_parameters={"report_id": first["report_id"]},
        ),
    )
    assert got.status == 200 and got.body["download_format"] == "json" and got.body["expires_in"] == 120
    assert (
        "X-Amz-Expires=120" in got.body["download_url"] and first["formats"]["json"]["key"] in got.body["download_url"]
    )
    for query, status in (("expires_in=30", 422), ("expires_in=999999", 422), ("format=pdf", 422)):
        bad = invoke(
            reports_handler.lambda_handler,
            proxy_event(
                "GET",
                f"/reports/{first['report_id']}?{query}",
                resource="/reports/{report_id}",
                path_parameters={"report_id": first["report_id"]},
            ),
        )
        assert bad.status == status, query
        assert bad.body["errors"][0]["field"] in ("expires_in", "format")
    missing = invoke(
        reports_handler.lambda_handler,
        proxy_event(
            "GET",
            "/reports/0b7c6c1e-1111-4111-8111-111111111111",
            resource="/reports/{report_id}",
            path_parameters={"report_id": "0b7c6c1e-1111-4111-8111-111111111111"},
        ),
    )
    assert missing.status == 404

    page = invoke(reports_handler.lambda_handler, proxy_event("GET", "/reports?limit=1"))
    assert [r["report_id"] for r in page.body["reports"]] == [second["report_id"]]
    rest = invoke(
        reports_handler.lambda_handler, proxy_event("GET", f"/reports?limit=1&cursor={page.body['next_cursor']}")
    )
    assert [r["report_id"] for r in rest.body["reports"]] == [first["report_id"]]
    only_cis = invoke(reports_handler.lambda_handler, proxy_event("GET", "/reports?standard=cis"))
    assert [r["report_id"] for r in only_cis.body["reports"]] == [first["report_id"]]
    assert only_cis.body["reports"][0]["download_url"].startswith("https://")
    old = invoke(reports_handler.lambda_handler, proxy_event("GET", "/reports?to=2020-01-01T00:00:00Z"))
    assert old.body["reports"] == [] and old.body["next_cursor"] is None


def test_tampered_chain_fails_the_report(scenario: Scenario, db: psycopg.Connection[Any]) -> None:
    """Given an event of the period altered by a superuser, Then the integrity section and the report fail."""
    seq = one(db, "select seq from audit.audit_events where event_id = 's-1100'")[0]
    db.execute("set session_replication_role = replica")
    db.execute("update audit.audit_events set checksum = sha256('forged') where seq = %s", (seq,))
    db.execute("set session_replication_role = origin")
    report = stored_report(post_report("hipaa", scenario.start, scenario.end).body)
    assert report.integrity.valid is False
    assert report.integrity.first_invalid_seq == seq and report.integrity.reason == "chain_hash_mismatch"
    assert section(report, "164.312(c)(1)").status.value == "fail"
    assert report.summary.overall_status.value == "fail"


def test_scheduled_report_publishes_report_ready(
    reports_env: str, monkeypatch: pytest.MonkeyPatch, db: psycopg.Connection[Any]
) -> None:
    """Given the daily PCI schedule's Input, When it runs, Then yesterday's report is stored and a
    "report ready" event with its links reaches the bus."""
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    events.create_event_bus(Name="audit-test")
    queue = sqs.create_queue(QueueName="reports-ready")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="reports", EventBusName="audit-test", EventPattern=json.dumps({"source": ["audit-trail.reports"]})
    )
    events.put_targets(Rule="reports", EventBusName="audit-test", Targets=[{"Id": "q", "Arn": arn}])
    monkeypatch.setenv("AUDIT_EVENT_BUS_NAME", "audit-test")
    get_settings.cache_clear()

    with open("events/reports/schedule_daily_pci_dss.json") as file:
        payload = json.load(file)
    answer = reports_handler.lambda_handler(payload, context())
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert answer["period_start"] == (today - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert answer["trigger"] == "schedule" and answer["generated_by"] == "schedule:daily-pci-dss-review"

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1
    published = json.loads(messages[0]["Body"])
    assert published["source"] == "audit-trail.reports" and published["detail-type"] == "Compliance Report Ready"
    assert published["detail"]["report_id"] == answer["report_id"]
    assert published["detail"]["download_url"] and published["detail"]["expires_in"] == 43_200
    assert one(db, "select trigger, status from audit.reports")[:2] == ("schedule", "ready")


def test_scheduled_input_is_checked(reports_env: str) -> None:
    """A misrouted or malformed schedule fails loudly instead of guessing."""
    from audit_common.errors import BadRequest, InvalidInput

    with pytest.raises(BadRequest):
        reports_handler.lambda_handler({"action": "retention"}, context())
    with pytest.raises(InvalidInput):
        reports_handler.lambda_handler(
            {"action": "scheduled_report", "standard": "sox", "period": "yesterday"}, context()
        )


def test_storage_outage_marks_the_report_failed(
    reports_env: str, monkeypatch: pytest.MonkeyPatch, db: psycopg.Connection[Any]
) -> None:
    """Given a bucket that does not exist, When a report is asked for, Then the answer is an error without a
    stack trace, the report is recorded as failed with the reason, and no event claims it was generated."""
    monkeypatch.setenv("AUDIT_REPORTS_BUCKET", "no-such-bucket")
    get_settings.cache_clear()
    now = datetime.now(UTC)
    answer = post_report("cis", now - timedelta(hours=1), now)
    assert answer.status == 500 and set(answer.body) == {"error"}
    status, error = one(db, "select status, error from audit.reports")
    assert status == "failed" and "NoSuchBucket" in error
    assert one(db, "select count(*) from audit.audit_events where action = 'report_generated'")[0] == 0


def test_kms_key_encrypts_every_file(reports_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a KMS key configured, Then every file of the report (the streamed CSV too) is stored SSE-KMS with it."""
    key_id = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("AUDIT_REPORTS_KMS_KEY_ID", key_id)
    get_settings.cache_clear()
    reports_handler._store.cache_clear()
    now = datetime.now(UTC)
    body = post_report("gdpr", now - timedelta(hours=1), now).body
    for meta in body["formats"].values():
        head = boto3.client("s3").head_object(Bucket=BUCKET, Key=meta["key"])
        assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]


def test_large_csv_goes_up_in_parts_and_matches_its_hash(reports_env: str) -> None:
    """Given more bytes than one part, When streamed, Then S3 holds them in order and the recorded SHA-256 and
    size are the object's; an error mid-way aborts the upload and leaves no object."""
    from reports.storage import PART_BYTES, ReportStore

    store = ReportStore(BUCKET)
    chunks = [bytes([n % 251]) * 1_000_003 for n in range(int(2.5 * PART_BYTES / 1_000_003))]
    with store.stream("reports/cis/2026/11/large.csv", "text/csv") as upload:
        for chunk in chunks:
            upload.write(chunk)
        stored = upload.close()
    body = store.read("reports/cis/2026/11/large.csv")
    assert body == b"".join(chunks)
    assert stored.sha256 == hashlib.sha256(body).hexdigest() and stored.size_bytes == len(body)

    with pytest.raises(RuntimeError), store.stream("reports/cis/2026/11/broken.csv", "text/csv") as upload:
        for chunk in chunks:
            upload.write(chunk)
        raise RuntimeError("the database went away")
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="reports/cis/2026/11/broken")
    assert listed["KeyCount"] == 0
    assert boto3.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
