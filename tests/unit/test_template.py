"""template.yaml and the sample events agree with the code and with the architecture.

The template is parsed with cfn-lint's own decoder, which understands the short CloudFormation tags
(``!Ref``, ``!If``, ...) that ``yaml.safe_load`` refuses. Where what matters is what SAM generates (the
roles and their statements), the template is also run through the SAM translator, offline.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import decode  # type: ignore[import-untyped]
from samtranslator.translator.transform import transform  # type: ignore[import-untyped]

from audit_common.integrity.seal import event_checksum
from audit_common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events" / "ingest"
DETECT_EVENTS = ROOT / "events" / "detect"
RETENTION_EVENTS = ROOT / "events" / "retention"
SCHEMA_MIGRATION = ROOT / "supabase" / "migrations" / "20261127080000_audit_schema.sql"

INGEST_ROUTES = {
    ("POST", "/events"),
    ("GET", "/events"),
    ("GET", "/events/{event_id}"),
    ("GET", "/integrity/verify"),
    ("GET", "/events/{event_id}/proof"),
    ("GET", "/integrity/consistency"),
}
DETECT_ROUTES = {
    ("POST", "/webhooks/supabase"),
    ("GET", "/alerts"),
    ("PATCH", "/alerts/{alert_id}"),
}
# GDPR Art. 15 and 17; admin-only once the authorizer exists.
RETENTION_ROUTES = {
    ("GET", "/subjects/{user_id}/export"),
    ("POST", "/subjects/{user_id}/erasure"),
}
REPORTS_ROUTES = {("POST", "/reports"), ("GET", "/reports"), ("GET", "/reports/{report_id}")}
ANALYTICS_ROUTES = {("GET", "/analytics"), ("GET", "/dashboard")}
ROUTES_BY_FUNCTION = {
    "IngestFunction": INGEST_ROUTES,
    "DetectFunction": DETECT_ROUTES,
    "RetentionFunction": RETENTION_ROUTES,
    "ReportsFunction": REPORTS_ROUTES,
    "AnalyticsFunction": ANALYTICS_ROUTES,
}
# The file under CodeUri each Handler must name (whether it exists yet is another test's business).
HANDLER_FILES = {
    "IngestFunction": "functions/ingest/handler.py",
    "DetectFunction": "functions/detect/handler.py",
    "DetectSweepFunction": "functions/detect/sweep.py",
    "RetentionFunction": "functions/retention/handler.py",
    "RetentionNightlyFunction": "functions/retention/nightly.py",
    "AnchorFunction": "functions/anchor/handler.py",
    "ReportsFunction": "functions/reports/handler.py",
    "AnalyticsFunction": "functions/analytics/handler.py",
    "AuthorizerFunction": "functions/authorizer/handler.py",
}
SERVICE_NAMES = {
    "IngestFunction": "ingest",
    "DetectFunction": "detect",
    "DetectSweepFunction": "detect-sweep",
    "RetentionFunction": "retention",
    "RetentionNightlyFunction": "retention-nightly",
    "AnchorFunction": "anchor",
    "ReportsFunction": "reports",
    "AnalyticsFunction": "analytics",
    "AuthorizerFunction": "authorizer",
}
DETECT_FUNCTIONS = {"DetectFunction", "DetectSweepFunction"}
RETENTION_FUNCTIONS = {"RetentionFunction", "RetentionNightlyFunction"}
EXPECTED_EVENT_FILES = {
    "post_event.json",
    "post_batch.json",
    "post_duplicate.json",
    "post_invalid.json",
    "get_events.json",
    "get_event.json",
    "get_event_unknown.json",
    "verify.json",
    "get_proof.json",
}
DETECT_API_EVENT_FILES = {
    "webhook_insert.json",
    "webhook_update.json",
    "webhook_bad_secret.json",
    "webhook_other_table.json",
    "get_alerts.json",
    "patch_alert.json",
}
WEBHOOK_EVENT_FILES = sorted(name for name in DETECT_API_EVENT_FILES if name.startswith("webhook_"))
SWEEP_EVENT_FILE = "sweep_schedule.json"
RETENTION_API_EVENT_FILES = {"export_subject.json", "erase_subject.json"}
NIGHTLY_EVENT_FILE = "nightly_schedule.json"
GDPR_SUBJECT_ID = "11111111-1111-4111-8111-111111111111"
# Every v1 proxy sample, as "<function directory>/<file>", and the function whose routes it must hit.
API_SAMPLE_EVENTS = {
    **{f"ingest/{name}": "IngestFunction" for name in EXPECTED_EVENT_FILES},
    **{f"detect/{name}": "DetectFunction" for name in DETECT_API_EVENT_FILES},
    **{f"retention/{name}": "RetentionFunction" for name in RETENTION_API_EVENT_FILES},
    "analytics/get_analytics.json": "AnalyticsFunction",
}
# What supabase_functions.http_request posts: {"type": TG_OP, "table", "schema", "record": NEW, "old_record": OLD}.
SUPABASE_WEBHOOK_KEYS = {"type", "table", "schema", "record", "old_record"}
WEBHOOK_SECRET_HEADER = "X-Audit-Webhook-Secret"
PROXY_KEYS = {
    "resource",
    "path",
    "httpMethod",
    "headers",
    "multiValueHeaders",
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "pathParameters",
    "stageVariables",
    "requestContext",
    "body",
    "isBase64Encoded",
}
REQUEST_CONTEXT_KEYS = {
    "accountId",
    "resourcePath",
    "httpMethod",
    "stage",
    "requestId",
    "identity",
    "requestTimeEpoch",
}
SECRET_PARAMETERS = {"DatabaseSecretArn", "SupabaseKeySecretArn", "WebhookSecretArn", "JwtSecretArn"}
# Parameters whose names sound secret but whose values are not, with the reason.
NOT_SECRET_PARAMETERS = {"DatabaseRole": "a PostgreSQL role name the transport switches to, not a credential"}
SECRET_MARKERS = ("postgres://", "postgresql://", "key")
# Offline tools must not wait on the network: no region lookup, no instance metadata, no telemetry.
TOOL_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0", "AWS_EC2_METADATA_DISABLED": "true"}
# The publishers and the one thing each may publish to.
PUBLISH_ACTIONS = {"events:PutEvents": "AuditEventBus", "sns:Publish": "AlertsTopic"}
# Every schedule: the function it invokes, its payload, its retry policy and its dead-letter queue.
SCHEDULES = {
    "DetectSweepFunction": (
        {"action": "sweep"},
        {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300},
        "DetectSweepDeadLetterQueue",
    ),
    "RetentionNightlyFunction": (
        {"action": "retention"},
        {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
        "RetentionDeadLetterQueue",
    ),
    "AnchorFunction": (
        {"action": "anchor"},
        {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
        "AnchorDeadLetterQueue",
    ),
}
# All the nightly function may do in S3: write once, read back, list (so a missing key is 404, not 403).
ARCHIVE_ACTIONS = {"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}
ARCHIVE_RESOURCES = [{"Fn::GetAtt": ["ArchiveBucket", "Arn"]}, {"Fn::Sub": "${ArchiveBucket.Arn}/*"}]
# S3 actions that remove data; a wildcard in an Allow (s3:*, s3:Delete*, *) matches them too.
S3_DELETE_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
)
# The AWS managed policies SAM and this template attach; none of them grants anything in S3.
AWS_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
}


@functools.cache
def _template() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(match) for match in matches]
    assert isinstance(template, dict)
    return template


def _resources_of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in _template()["Resources"].items() if resource["Type"] == resource_type}


def _functions() -> dict[str, dict[str, Any]]:
    return _resources_of_type("AWS::Serverless::Function")


class _NoManagedPolicies:
    """The translator looks up AWS managed policies by name only when a template uses one; this one does not."""

    def load(self) -> dict[str, str]:
        return {}


@functools.cache
def _translated() -> dict[str, Any]:
    """The template after the SAM transform: generated roles, permissions and schedules, as CloudFormation gets them.

    Local CodeUri paths stand in as S3 URIs (what `sam package` would upload); the region only names partitions.
    """
    template = json.loads(json.dumps(_template()))
    for resource in template["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://audit-trail-artifacts/code.zip"
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1"}):
        translated = transform(template, {}, _NoManagedPolicies())
    assert isinstance(translated, dict)
    return translated


def _api_routes(function: dict[str, Any]) -> set[tuple[str, str]]:
    routes = set()
    for event in function["Properties"].get("Events", {}).values():
        if event["Type"] == "Api":
            assert event["Properties"]["RestApiId"] == {"Ref": "AuditApi"}
            routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
    return routes


def _schedules() -> Iterator[tuple[str, dict[str, Any]]]:
    """(function, event properties) for every EventBridge Scheduler event in the template."""
    for name, function in _functions().items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "ScheduleV2":
                yield name, event["Properties"]


def _sample(relative: str) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / relative).read_text())
    assert isinstance(event, dict)
    return event


def _webhook_body(name: str) -> dict[str, Any]:
    body = json.loads(_sample(f"detect/{name}")["body"])
    assert isinstance(body, dict)
    return body


def _audit_event_columns() -> list[str]:
    """The columns of audit.audit_events, in order, from the migration that creates the table."""
    sql = SCHEMA_MIGRATION.read_text()
    start = sql.index("create table audit.audit_events (")
    block = sql[start : sql.index("\n);", start)]
    return re.findall(r'^  "?([a-z_]+)"?\s+(?:bigint|text|timestamptz|inet|jsonb|bytea)\b', block, flags=re.MULTILINE)


def _tool(name: str) -> str | None:
    """The console script installed beside the running interpreter (the venv), else one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **TOOL_ENV},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _literal_strings(value: Any) -> Iterator[str]:
    """Every literal string in a property value, skipping names (Ref targets, condition names)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _literal_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                continue
            if key == "Fn::If":
                yield from _literal_strings(item[1:])
            else:
                yield from _literal_strings(item)


def _targets(value: Any) -> Iterator[str]:
    """The logical ids a value points at through Ref or Fn::GetAtt (pseudo parameters included)."""
    if isinstance(value, list):
        for item in value:
            yield from _targets(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield item
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else item.split(".")[0]
            else:
                yield from _targets(item)


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _refs(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref":
                yield item
            else:
                yield from _refs(item)


def _environment_variables() -> Iterator[tuple[str, str, Any]]:
    """(owner, variable, value) for the Globals and every function."""
    globals_env = _template().get("Globals", {}).get("Function", {}).get("Environment", {})
    for variable, value in globals_env.get("Variables", {}).items():
        yield "Globals", variable, value
    for name, function in _functions().items():
        env = function["Properties"].get("Environment", {})
        for variable, value in env.get("Variables", {}).items():
            yield name, variable, value


def _secretsmanager_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement in the template that mentions Secrets Manager, with where it sits."""
    documents: list[tuple[str, Any]] = []
    for name, policy in _resources_of_type("AWS::IAM::ManagedPolicy").items():
        documents.append((name, policy["Properties"]["PolicyDocument"]))
    for name, role in _resources_of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            documents.append((name, policy["PolicyDocument"]))
    for name, function in _functions().items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                documents.append((name, policy))
    for owner, document in documents:
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            if "secretsmanager" in json.dumps(statement).lower():
                yield owner, statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _translated_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every IAM statement after the SAM transform: role inline policies and managed ones."""
    for name, resource in _translated()["Resources"].items():
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in resource["Properties"].get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents = [resource["Properties"]["PolicyDocument"]]
        for document in documents:
            for statement in _as_list(document["Statement"]):
                yield name, statement


def test_cfn_lint_passes() -> None:
    """Given template.yaml, when cfn-lint checks it, then it reports nothing and exits 0."""
    cfn_lint = _tool("cfn-lint")
    command = [cfn_lint] if cfn_lint else [sys.executable, "-m", "cfnlint"]

    result = _run([*command, str(TEMPLATE)])

    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    """Given template.yaml, when `sam validate --lint` checks it offline, then it exits 0."""
    sam = _tool("sam")
    if sam is None:
        pytest.skip("the sam binary (aws-sam-cli, a dev dependency) is not installed")

    result = _run([sam, "validate", "--lint", "--template", str(TEMPLATE)])

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_sample_event_is_there() -> None:
    """Given the events directories, when listed, then they hold exactly the documented sample events."""
    names = {path.name for path in EVENTS.glob("*.json")}
    detect_names = {path.name for path in DETECT_EVENTS.glob("*.json")}
    retention_names = {path.name for path in RETENTION_EVENTS.glob("*.json")}

    assert names == EXPECTED_EVENT_FILES
    assert detect_names == DETECT_API_EVENT_FILES | {SWEEP_EVENT_FILE}
    assert retention_names == RETENTION_API_EVENT_FILES | {NIGHTLY_EVENT_FILE}


@pytest.mark.parametrize("relative", sorted(API_SAMPLE_EVENTS))
def test_sample_event_is_a_rest_v1_proxy_event(relative: str) -> None:
    """Given a sample API event, when it is parsed, then it has the REST proxy shape and hits its function's route."""
    event = _sample(relative)

    assert event.keys() >= PROXY_KEYS
    assert event["requestContext"].keys() >= REQUEST_CONTEXT_KEYS
    assert event["requestContext"]["stage"] == "v1"
    assert event["requestContext"]["httpMethod"] == event["httpMethod"]
    assert event["requestContext"]["resourcePath"] == event["resource"]
    assert event["requestContext"]["path"] == f"/v1{event['path']}"
    assert "sourceIp" in event["requestContext"]["identity"]
    assert (event["httpMethod"], event["resource"]) in ROUTES_BY_FUNCTION[API_SAMPLE_EVENTS[relative]]
    assert event["isBase64Encoded"] is False
    assert event["multiValueHeaders"] == {name: [value] for name, value in event["headers"].items()}
    if event["queryStringParameters"] is not None:
        assert event["multiValueQueryStringParameters"] == {
            name: [value] for name, value in event["queryStringParameters"].items()
        }
    if event["body"] is not None:
        assert isinstance(json.loads(event["body"]), dict)


def test_sample_events_refer_to_each_other() -> None:
    """Given the sample events, when their ids are compared, then the replay and the lookup hit the event."""
    posted = json.loads((EVENTS / "post_event.json").read_text())
    replayed = json.loads((EVENTS / "post_duplicate.json").read_text())
    looked_up = json.loads((EVENTS / "get_event.json").read_text())
    unknown = json.loads((EVENTS / "get_event_unknown.json").read_text())
    batch = json.loads(json.loads((EVENTS / "post_batch.json").read_text())["body"])["events"]

    event_id = json.loads(posted["body"])["event_id"]

    assert json.loads(replayed["body"]) == json.loads(posted["body"])
    assert looked_up["pathParameters"] == {"event_id": event_id}
    assert looked_up["path"] == f"/events/{event_id}"
    assert unknown["pathParameters"]["event_id"] not in {event_id, *(event["event_id"] for event in batch)}
    assert len(batch) == 3
    assert len({event["event_id"] for event in batch} | {event_id}) == 4


@pytest.mark.parametrize("name", sorted(WEBHOOK_EVENT_FILES))
def test_webhook_sample_is_what_the_supabase_database_webhook_sends(name: str) -> None:
    """Given a webhook sample, when parsed, then it is a pg_net POST with the shared-secret header and the payload
    of supabase_functions.http_request: exactly type, table, schema, record and old_record."""
    event = _sample(f"detect/{name}")
    body = _webhook_body(name)

    assert (event["httpMethod"], event["resource"]) == ("POST", "/webhooks/supabase")
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["headers"]["User-Agent"].startswith("pg_net/")
    assert event["headers"][WEBHOOK_SECRET_HEADER]
    assert body.keys() == SUPABASE_WEBHOOK_KEYS
    assert body["type"] in {"INSERT", "UPDATE", "DELETE"}
    assert isinstance(body["record"], dict)
    assert (body["old_record"] is None) == (body["type"] == "INSERT")


def test_webhook_samples_cover_the_cases_the_function_must_tell_apart() -> None:
    """Given the webhook samples, when compared, then they differ from the insert only in what each case is about."""
    insert = _sample("detect/webhook_insert.json")
    bad_secret = _sample("detect/webhook_bad_secret.json")
    update = _webhook_body("webhook_update.json")
    other_table = _webhook_body("webhook_other_table.json")
    inserted = _webhook_body("webhook_insert.json")

    assert (inserted["type"], inserted["schema"], inserted["table"]) == ("INSERT", "audit", "audit_events")
    assert bad_secret["body"] == insert["body"]
    assert bad_secret["headers"][WEBHOOK_SECRET_HEADER] != insert["headers"][WEBHOOK_SECRET_HEADER]
    assert (update["type"], update["schema"], update["table"]) == ("UPDATE", "audit", "audit_events")
    assert update["old_record"] == inserted["record"]
    assert (other_table["type"], other_table["schema"], other_table["table"]) == ("INSERT", "public", "profiles")


def test_webhook_record_is_a_stored_audit_event() -> None:
    """Given the inserted record, when checked against the schema and the integrity spec, then it is a whole
    audit_events row as to_jsonb(NEW) gives it, and the first link of a valid chain."""
    record = _webhook_body("webhook_insert.json")["record"]
    checksum, prev_hash, chain_hash = (record[field] for field in ("checksum", "prev_hash", "chain_hash"))

    assert sorted(record) == sorted(_audit_event_columns())
    assert record["seq"] == 1
    for value in (checksum, prev_hash, chain_hash):
        assert re.fullmatch(r"\\x[0-9a-f]{64}", value), value
    assert prev_hash == "\\x" + "00" * 32
    assert checksum == "\\x" + event_checksum(record).hex()
    assert chain_hash == "\\x" + hashlib.sha256(bytes(32) + bytes.fromhex(checksum[2:])).hexdigest()


def test_alert_samples_name_their_alert_and_filters() -> None:
    """Given the alert samples, when parsed, then the PATCH names its alert in the path and the GET filters."""
    patch = _sample("detect/patch_alert.json")
    listing = _sample("detect/get_alerts.json")
    alert_id = patch["pathParameters"]["alert_id"]

    assert patch["path"] == f"/alerts/{alert_id}"
    assert json.loads(patch["body"]) == {"status": "acknowledged", "note": "investigating"}
    assert listing["queryStringParameters"] == {"status": "open", "severity": "high"}
    assert listing["body"] is None


def test_ingest_handler_resolves_to_a_file() -> None:
    """Given the ingest function, when its Handler is resolved against its CodeUri, then the module exists."""
    properties = _functions()["IngestFunction"]["Properties"]
    module, _, function_name = properties["Handler"].rpartition(".")

    module_file = ROOT / properties["CodeUri"] / Path(*module.split(".")).with_suffix(".py")

    assert function_name == "lambda_handler"
    assert module_file == ROOT / "functions" / "ingest" / "handler.py"
    assert module_file.is_file(), f"{module_file.relative_to(ROOT)} does not exist"


@pytest.mark.parametrize("name", sorted(HANDLER_FILES))
def test_handler_names_its_module_under_code_uri(name: str) -> None:
    """Given a function, when its Handler is resolved against its CodeUri, then it names the expected module."""
    properties = _functions()[name]["Properties"]
    module, _, function_name = properties["Handler"].rpartition(".")

    module_file = Path(properties["CodeUri"], *module.split(".")).with_suffix(".py")

    assert function_name == "lambda_handler"
    assert module_file == Path(HANDLER_FILES[name])
    assert properties["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAMES[name]


def test_routes_are_exactly_the_api_of_each_function() -> None:
    """Given every Api event in the template, when collected per function, then ingest, detect and retention
    each serve exactly their routes and no route is served twice."""
    routes = {name: _api_routes(function) for name, function in _functions().items()}
    served = [route for function_routes in routes.values() for route in function_routes]

    assert {name: found for name, found in routes.items() if found} == ROUTES_BY_FUNCTION
    assert len(served) == len(set(served)) == len(set().union(*ROUTES_BY_FUNCTION.values()))


def test_every_schedule_has_explicit_input_retries_and_a_dead_letter_queue() -> None:
    """Given every EventBridge Scheduler event, when inspected, then it sends an explicit JSON object, retries
    within its own period, and parks what still fails in an encrypted SQS queue of this stack."""
    schedules = list(_schedules())
    queues = _resources_of_type("AWS::SQS::Queue")

    for name, schedule in schedules:
        assert "Input" in schedule, f"{name}: without Input, Scheduler sends its own default payload"
        assert isinstance(json.loads(schedule["Input"]), dict), name
        assert schedule["RetryPolicy"].keys() == {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"}, name
        queue_id, attribute = schedule["DeadLetterConfig"]["Arn"]["Fn::GetAtt"]
        assert attribute == "Arn", name
        assert queues[queue_id]["Properties"]["SqsManagedSseEnabled"] is True, name
        assert queues[queue_id]["Properties"]["MessageRetentionPeriod"] == 1209600, name
        assert schedule.get("OmitName") is True, name

    assert schedules


def test_detect_sweep_runs_every_five_minutes_with_the_sample_input() -> None:
    """Given the sweep's schedule, when inspected, then it runs every five minutes, sends what the sample event
    holds, gives up before the next run is due, and the function may run that long."""
    schedules = dict(_schedules())
    sweep = schedules["DetectSweepFunction"]
    sample = json.loads((DETECT_EVENTS / SWEEP_EVENT_FILE).read_text())

    assert sweep["ScheduleExpression"] == "rate(5 minutes)"
    assert json.loads(sweep["Input"]) == sample == {"action": "sweep"}
    assert sweep["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300}
    assert sweep["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DetectSweepDeadLetterQueue", "Arn"]}}
    assert _functions()["DetectSweepFunction"]["Properties"]["Timeout"] == 300


def test_every_schedule_is_expected() -> None:
    """Given the template after the SAM transform, when its Scheduler schedules are listed, then there is exactly one
    per scheduled function (the sweep and the nightly retention run)."""
    resources = _translated()["Resources"]
    targets = [
        resource["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
    ]

    # The reports function has one schedule per report cadence: tests/unit/test_template_reports.py checks them.
    assert sorted(target for target in targets if target != "ReportsFunction") == sorted(SCHEDULES)


@pytest.mark.parametrize("function_name", sorted(SCHEDULES))
def test_translated_schedule_keeps_input_retries_and_dead_letter_queue(function_name: str) -> None:
    """Given the template after the SAM transform, when a function's schedule is inspected, then the Scheduler
    target carries the Input, the retry policy and the queue, and its role may write only to that queue."""
    expected_input, expected_retry, queue = SCHEDULES[function_name]
    resources = _translated()["Resources"]
    (schedule,) = (
        resource
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
        and resource["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function_name, "Arn"]}
    )
    target = schedule["Properties"]["Target"]
    role = resources[target["RoleArn"]["Fn::GetAtt"][0]]
    queue_statements = [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in _as_list(policy["PolicyDocument"]["Statement"])
        if "sqs:SendMessage" in _as_list(statement["Action"])
    ]

    assert json.loads(target["Input"]) == expected_input
    assert target["RetryPolicy"] == expected_retry
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    assert [statement["Resource"] for statement in queue_statements] == [{"Fn::GetAtt": [queue, "Arn"]}]


def test_publish_permissions_name_only_the_bus_and_the_topic() -> None:
    """Given every IAM statement SAM generates, when those about EventBridge or SNS are inspected, then only the
    detect functions publish, each action names exactly its bus or topic, and nothing is granted on `*`."""
    publishers: dict[str, set[str]] = {action: set() for action in PUBLISH_ACTIONS}

    for owner, statement in _translated_statements():
        actions = _as_list(statement["Action"])
        if not any(action.startswith(("events:", "sns:")) for action in actions):
            continue
        assert statement["Effect"] == "Allow", owner
        assert len(actions) == 1, (owner, actions)
        assert actions[0] in PUBLISH_ACTIONS, (owner, actions)
        resource = statement["Resource"]
        assert not any("*" in literal for literal in _literal_strings(resource)), (owner, resource)
        named = {target for target in _targets(resource) if not target.startswith("AWS::")}
        assert named == {PUBLISH_ACTIONS[actions[0]]}, (owner, resource)
        publishers[actions[0]].add(owner)

    expected_roles = {f"{name}Role" for name in DETECT_FUNCTIONS}
    # The reports function announces finished reports on the bus (never on the alert topic).
    assert publishers == {"events:PutEvents": expected_roles | {"ReportsFunctionRole"}, "sns:Publish": expected_roles}


def test_detect_functions_are_told_where_to_publish() -> None:
    """Given both detect functions, when their environment is inspected, then it names the bus and the topic
    that their policies allow, and the bus and topic are the ones the architecture describes."""
    bus = _template()["Resources"]["AuditEventBus"]
    topic = _template()["Resources"]["AlertsTopic"]

    for name in DETECT_FUNCTIONS:
        variables = _functions()[name]["Properties"]["Environment"]["Variables"]
        assert variables["AUDIT_EVENT_BUS_NAME"] == {"Ref": "AuditEventBus"}, name
        assert variables["AUDIT_ALERT_TOPIC_ARN"] == {"Ref": "AlertsTopic"}, name
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == {"Fn::Sub": "audit-trail-${EnvironmentName}"}
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"


def test_alert_email_subscription_exists_only_when_an_address_is_given() -> None:
    """Given the AlertEmail and OpsAlarmEmail parameters, when unset (the default), then no subscription is created."""
    subscriptions = _resources_of_type("AWS::SNS::Subscription")
    conditions = _template()["Conditions"]

    assert _template()["Parameters"]["AlertEmail"]["Default"] == ""
    assert _template()["Parameters"]["OpsAlarmEmail"]["Default"] == ""
    assert {name: s["Condition"] for name, s in subscriptions.items()} == {
        "AlertsEmailSubscription": "HasAlertEmail",
        "OpsEmailSubscription": "HasOpsAlarmEmail",
    }
    assert conditions["HasAlertEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]}
    assert conditions["HasOpsAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OpsAlarmEmail"}, ""]}]}
    assert subscriptions["AlertsEmailSubscription"]["Properties"]["TopicArn"] == {"Ref": "AlertsTopic"}
    assert subscriptions["OpsEmailSubscription"]["Properties"]["TopicArn"] == {"Ref": "OpsTopic"}


def test_webhook_secret_is_never_plain_text() -> None:
    """Given the webhook secret, when the template is searched for it, then it exists only as a Secrets Manager
    ARN: required by a Rule, passed as an ARN to the detect function alone, and readable by it alone."""
    template = _template()
    webhook_variables = [
        (owner, variable, value) for owner, variable, value in _environment_variables() if "WEBHOOK" in variable
    ]
    attached = {
        name
        for name, function in _functions().items()
        if {"Ref": "WebhookSecretReadPolicy"} in function["Properties"].get("Policies", [])
    }
    rule = template["Rules"]["WebhookSecretConfigured"]["Assertions"]

    assert webhook_variables == [
        (
            "DetectFunction",
            "AUDIT_WEBHOOK_SECRET_ARN",
            {"Fn::If": ["HasWebhookSecret", {"Ref": "WebhookSecretArn"}, {"Ref": "AWS::NoValue"}]},
        )
    ]
    assert [name for name in template["Parameters"] if "webhook" in name.lower()] == ["WebhookSecretArn"]
    assert "secretsmanager" in template["Parameters"]["WebhookSecretArn"]["AllowedPattern"]
    assert attached == {"DetectFunction"}
    assert rule == [
        {
            "Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookSecretArn"}, ""]}]},
            "AssertDescription": rule[0]["AssertDescription"],
        }
    ]


def test_outputs_give_the_webhook_url_and_the_alert_destinations() -> None:
    """Given the stack outputs, when inspected, then they hold what the Supabase webhook and alert consumers need."""
    outputs = _template()["Outputs"]

    assert outputs["WebhookUrl"]["Value"] == {
        "Fn::Sub": "https://${AuditApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1/webhooks/supabase"
    }
    assert outputs["AuditEventBusName"]["Value"] == {"Ref": "AuditEventBus"}
    assert outputs["AlertsTopicArn"]["Value"] == {"Ref": "AlertsTopic"}
    assert outputs["DetectSweepDeadLetterQueueUrl"]["Value"] == {"Ref": "DetectSweepDeadLetterQueue"}


def test_environment_holds_no_secrets() -> None:
    """Given every function environment variable, when inspected, then none carries a secret value.

    Secrets reach the functions only as Secrets Manager ARNs, read at run time.
    """
    parameters = _template()["Parameters"]

    for owner, variable, value in _environment_variables():
        for literal in _literal_strings(value):
            assert not any(marker in literal.lower() for marker in SECRET_MARKERS), (owner, variable)
        for target in _refs(value):
            if target in NOT_SECRET_PARAMETERS:
                continue
            if any(word in target.lower() for word in ("key", "password", "token", "database", "secret")):
                assert target in SECRET_PARAMETERS, (owner, variable, target)
                assert parameters[target].get("Default", "") == "", target


def test_secret_read_policy_names_only_the_secret_parameters() -> None:
    """Given the IAM statements about Secrets Manager, when inspected, then they read only the secret ARNs."""
    named: set[str] = set()
    statements = list(_secretsmanager_statements())

    for owner, statement in statements:
        assert statement["Effect"] == "Allow", owner
        assert _as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"], owner
        for entry in _as_list(statement["Resource"]):
            resource = entry
            if "Fn::If" in entry:
                _condition, resource, otherwise = entry["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}, owner
            assert set(resource) == {"Ref"}, (owner, resource)
            named.add(resource["Ref"])

    assert statements
    assert named == SECRET_PARAMETERS
    for name in ("IngestFunction", *sorted(DETECT_FUNCTIONS | RETENTION_FUNCTIONS)):
        policy_refs = {json.dumps(policy) for policy in _functions()[name]["Properties"]["Policies"]}
        assert json.dumps({"Ref": "DatabaseSecretReadPolicy"}) in policy_refs, name


def test_every_function_logs_to_its_own_log_group() -> None:
    """Given every function, when its logging is inspected, then it has its own log group with retention."""
    log_groups = _resources_of_type("AWS::Logs::LogGroup")
    used = []

    for name, function in _functions().items():
        target = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(target, dict), f"{name} has no explicit log group"
        assert target["Ref"] in log_groups, name
        assert log_groups[target["Ref"]]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        used.append(target["Ref"])

    assert len(used) == len(set(used))


def test_layer_requirements_match_pyproject() -> None:
    """Given the layer requirements and pyproject.toml, when compared, then they pin the same ranges.

    boto3 is the one exception: the Lambda runtime provides it.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines()
    layer = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}

    runtime = {requirement for requirement in project["dependencies"] if not requirement.startswith("boto3")}

    assert layer == runtime


class _RecordingS3:
    """Just enough of an S3 client for the archiver: remembers every upload and serves it back."""

    def __init__(self) -> None:
        self.puts: dict[str, dict[str, Any]] = {}

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.puts[request["Key"]] = request
        return {}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3's parameter names)
        if Key not in self.puts:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {"ContentLength": len(self.puts[Key]["Body"]), "ObjectLockMode": self.puts[Key]["ObjectLockMode"]}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        return {"Body": io.BytesIO(self.puts[Key]["Body"])}


def test_retention_api_function_reads_the_database_and_nothing_in_s3() -> None:
    """Given the GDPR API function, when its policies are inspected, then it may read the database secrets only:
    export and erasure go through the database, never through the archive."""
    properties = _functions()["RetentionFunction"]["Properties"]

    assert properties["Policies"] == [{"Ref": "DatabaseSecretReadPolicy"}]


def test_retention_nightly_runs_at_two_utc_with_the_sample_input() -> None:
    """Given the nightly retention schedule, when inspected, then it fires at 02:00 UTC with what the sample event
    holds, retries within the hour, parks failures in its queue, and the function runs one at a time for 15 min."""
    nightly = dict(_schedules())["RetentionNightlyFunction"]
    sample = json.loads((RETENTION_EVENTS / NIGHTLY_EVENT_FILE).read_text())
    properties = _functions()["RetentionNightlyFunction"]["Properties"]
    queue_arn = {"Fn::GetAtt": ["RetentionDeadLetterQueue", "Arn"]}

    assert nightly["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert nightly["ScheduleExpressionTimezone"] == "UTC"
    assert json.loads(nightly["Input"]) == sample == {"action": "retention"}
    assert nightly["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert nightly["DeadLetterConfig"] == {"Arn": queue_arn}
    assert nightly["OmitName"] is True
    assert (properties["Timeout"], properties["MemorySize"]) == (900, 1024)
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": queue_arn,
    }


@pytest.mark.parametrize("name", sorted(RETENTION_FUNCTIONS))
def test_retention_functions_are_told_where_the_archive_is(name: str) -> None:
    """Given a retention function, when its environment is inspected, then it names the archive bucket and the lock
    the template gives that bucket by default."""
    variables = _functions()[name]["Properties"]["Environment"]["Variables"]

    assert variables["AUDIT_ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
    assert variables["AUDIT_ARCHIVE_LOCK_DAYS"] == {"Ref": "ArchiveLockDays"}


def test_archive_lock_days_parameter_matches_the_settings_model() -> None:
    """Given the ArchiveLockDays parameter and the settings model, when compared, then the default and the bounds
    agree, so a value CloudFormation accepts is one the function accepts."""
    field = Settings.model_fields["archive_lock_days"]
    bounds = {type(constraint).__name__: constraint for constraint in field.metadata}
    parameter = _template()["Parameters"]["ArchiveLockDays"]

    assert parameter["Type"] == "Number"
    assert parameter["Default"] == field.default == 2555
    assert parameter["MinValue"] == bounds["Ge"].ge
    assert parameter["MaxValue"] == bounds["Le"].le


def test_archive_bucket_is_locked_versioned_private_and_encrypted() -> None:
    """Given the archive bucket, when inspected, then it has Object Lock COMPLIANCE with a default retention,
    versioning, every public access block, SSE-KMS by default, and it outlives the stack."""
    bucket = _template()["Resources"]["ArchiveBucket"]
    properties = bucket["Properties"]
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert bucket["Type"] == "AWS::S3::Bucket"
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "ArchiveLockDays"}}},
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms"}
    # A generated name: a fixed one would collide between stacks, and a retained bucket keeps its name forever.
    assert "BucketName" not in properties


def test_archive_lifecycle_moves_archives_to_glacier_and_never_expires_them() -> None:
    """Given the archive bucket's lifecycle, when inspected, then objects under archive/ and noncurrent versions move
    to Glacier after the parameterised days, and no rule expires anything."""
    (rule,) = _template()["Resources"]["ArchiveBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    to_glacier = [{"StorageClass": "GLACIER", "TransitionInDays": {"Ref": "ArchiveGlacierTransitionDays"}}]

    assert rule["Status"] == "Enabled"
    assert rule["Prefix"] == "archive/"
    assert rule["Transitions"] == to_glacier
    assert rule["NoncurrentVersionTransitions"] == to_glacier
    assert not [key for key in rule if "Expiration" in key or key.startswith("AbortIncomplete")]
    assert _template()["Parameters"]["ArchiveGlacierTransitionDays"]["Default"] == 30


def test_archive_bucket_policy_refuses_plain_http_and_unlocked_uploads() -> None:
    """Given the archive bucket's policy, when inspected, then it only denies: any request without TLS, and any
    upload that does not state the COMPLIANCE lock mode (a missing header included)."""
    (policy,) = (
        policy
        for policy in _resources_of_type("AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "ArchiveBucket"}
    )
    statements = {statement["Sid"]: statement for statement in policy["Properties"]["PolicyDocument"]["Statement"]}
    tls = statements["DenyInsecureTransport"]
    lock = statements["DenyUploadsWithoutComplianceLock"]

    assert {statement["Effect"] for statement in statements.values()} == {"Deny"}
    assert (tls["Principal"], tls["Action"], tls["Resource"]) == ("*", "s3:*", ARCHIVE_RESOURCES)
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert (lock["Principal"], lock["Action"], lock["Resource"]) == ("*", "s3:PutObject", ARCHIVE_RESOURCES[1])
    assert lock["Condition"] == {"StringNotEquals": {"s3:object-lock-mode": "COMPLIANCE"}}


def test_no_statement_allows_deleting_from_s3() -> None:
    """Given every IAM statement after the SAM transform and every bucket policy, when the Allow statements are
    inspected, then none grants an S3 delete, not even through a wildcard, and the only AWS managed policies
    attached to a role are ones that grant nothing in S3."""
    resources = _translated()["Resources"]
    statements = list(_translated_statements())
    for name, resource in resources.items():
        if resource["Type"] == "AWS::S3::BucketPolicy":
            statements += [
                (name, statement) for statement in _as_list(resource["Properties"]["PolicyDocument"]["Statement"])
            ]
    managed = {
        literal
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in resource["Properties"].get("ManagedPolicyArns", [])
        for literal in _literal_strings(arn)
    }

    for owner, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement, owner
        for action in _as_list(statement["Action"]):
            assert not action.lower().startswith("s3:delete"), (owner, action)
            matched = [delete for delete in S3_DELETE_ACTIONS if fnmatch.fnmatchcase(delete.lower(), action.lower())]
            assert not matched, (owner, action, matched)
    assert statements
    assert managed <= AWS_MANAGED_POLICIES


def test_only_the_nightly_function_reaches_the_archive_and_only_that_bucket() -> None:
    """Given every IAM statement after the SAM transform, when those about S3 are inspected, then they sit in one
    policy attached to the nightly function alone, grant exactly the archive actions, and name only the archive
    bucket: the bucket itself for listing, its objects for the rest."""
    resources = _translated()["Resources"]
    # Other buckets (the digest bucket) have their own policies and tests (test_template_anchor.py).
    s3_statements = [
        (owner, statement)
        for owner, statement in _translated_statements()
        if any(action.lower().startswith("s3:") for action in _as_list(statement["Action"]))
        and ("ArchiveBucket" in json.dumps(statement["Resource"]) or owner == "ArchiveWritePolicy")
    ]
    attached = {
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role"
        and {"Ref": "ArchiveWritePolicy"} in resource["Properties"].get("ManagedPolicyArns", [])
    }
    granted: set[str] = set()

    for owner, statement in s3_statements:
        actions = _as_list(statement["Action"])
        assert owner == "ArchiveWritePolicy", (owner, actions)
        assert statement["Effect"] == "Allow", owner
        expected = ARCHIVE_RESOURCES[0] if actions == ["s3:ListBucket"] else ARCHIVE_RESOURCES[1]
        assert statement["Resource"] == expected, (actions, statement["Resource"])
        granted.update(actions)
    assert attached == {"RetentionNightlyFunctionRole"}
    assert granted == ARCHIVE_ACTIONS


def test_archiver_writes_what_the_bucket_accepts_and_its_policy_allows() -> None:
    """Given the archiver writing one batch, when its S3 requests are recorded, then every key falls under the
    lifecycle prefix, every upload states the lock mode the bucket policy demands and the bucket's encryption, and
    every call it makes is covered by the nightly function's actions."""
    from retention.archive import Archiver

    s3 = _RecordingS3()
    archiver = Archiver("archive-bucket", lock_days=2555)
    archiver.__dict__["_s3"] = s3  # the cached boto3 client, replaced: no network in unit tests
    rows = [{"seq": 1, "prev_hash": "\\x" + "00" * 32, "chain_hash": "\\x" + "11" * 32, "user_id": GDPR_SUBJECT_ID}]
    properties = _template()["Resources"]["ArchiveBucket"]["Properties"]
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    batch = archiver.put_batch("run-1", datetime(2026, 12, 3, 2, 0, tzinfo=UTC), rows)

    assert set(s3.puts) == {batch.object_key, batch.manifest_key}
    for key, put in s3.puts.items():
        assert key.startswith(rule["Prefix"]), key
        assert put["ObjectLockMode"] == "COMPLIANCE", key
        assert put["ServerSideEncryption"] == encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"], key
    # put_object with lock headers -> PutObject and PutObjectRetention; head_object and get_object -> GetObject.
    assert {"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject"} <= ARCHIVE_ACTIONS


def test_gdpr_samples_address_one_subject() -> None:
    """Given the GDPR sample events, when parsed, then both name the same subject in the path and its parameters,
    the export is a GET and the erasure a POST without a body."""
    export = _sample("retention/export_subject.json")
    erase = _sample("retention/erase_subject.json")

    for event, suffix in ((export, "export"), (erase, "erasure")):
        assert event["pathParameters"] == {"user_id": GDPR_SUBJECT_ID}
        assert event["path"] == f"/subjects/{GDPR_SUBJECT_ID}/{suffix}"
        assert event["queryStringParameters"] is None
    assert (export["httpMethod"], erase["httpMethod"]) == ("GET", "POST")
    assert erase["body"] is None


def test_outputs_give_the_archive_bucket_and_the_retention_queue() -> None:
    """Given the stack outputs, when inspected, then they name the archive bucket and the retention queue."""
    outputs = _template()["Outputs"]

    assert outputs["ArchiveBucketName"]["Value"] == {"Ref": "ArchiveBucket"}
    assert outputs["RetentionDeadLetterQueueUrl"]["Value"] == {"Ref": "RetentionDeadLetterQueue"}
