"""template.yaml and the sample events agree with the code and with the architecture.

The template is parsed with cfn-lint's own decoder, which understands the short CloudFormation tags
(``!Ref``, ``!If``, ...) that ``yaml.safe_load`` refuses.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events" / "ingest"

INGEST_ROUTES = {
    ("POST", "/events"),
    ("GET", "/events"),
    ("GET", "/events/{event_id}"),
    ("GET", "/integrity/verify"),
}
EXPECTED_EVENT_FILES = {
    "post_event.json",
    "post_batch.json",
    "post_duplicate.json",
    "post_invalid.json",
    "get_events.json",
    "get_event.json",
    "get_event_unknown.json",
    "verify.json",
}
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
SECRET_PARAMETERS = {"DatabaseSecretArn", "SupabaseKeySecretArn"}
SECRET_MARKERS = ("postgres://", "postgresql://", "key")
# Offline tools must not wait on the network: no region lookup, no instance metadata, no telemetry.
TOOL_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0", "AWS_EC2_METADATA_DISABLED": "true"}


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
    """Given events/ingest, when it is listed, then it holds exactly the documented sample events."""
    names = {path.name for path in EVENTS.glob("*.json")}

    assert names == EXPECTED_EVENT_FILES


@pytest.mark.parametrize("name", sorted(EXPECTED_EVENT_FILES))
def test_sample_event_is_a_rest_v1_proxy_event(name: str) -> None:
    """Given a sample event, when it is parsed, then it has the API Gateway REST proxy shape."""
    event = json.loads((EVENTS / name).read_text())

    assert event.keys() >= PROXY_KEYS
    assert event["requestContext"].keys() >= REQUEST_CONTEXT_KEYS
    assert event["requestContext"]["stage"] == "v1"
    assert event["requestContext"]["httpMethod"] == event["httpMethod"]
    assert event["requestContext"]["resourcePath"] == event["resource"]
    assert "sourceIp" in event["requestContext"]["identity"]
    assert (event["httpMethod"], event["resource"]) in INGEST_ROUTES
    assert event["isBase64Encoded"] is False
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


def test_ingest_handler_resolves_to_a_file() -> None:
    """Given the ingest function, when its Handler is resolved against its CodeUri, then the module exists."""
    properties = _functions()["IngestFunction"]["Properties"]
    module, _, function_name = properties["Handler"].rpartition(".")

    module_file = ROOT / properties["CodeUri"] / Path(*module.split(".")).with_suffix(".py")

    assert function_name == "lambda_handler"
    assert module_file == ROOT / "functions" / "ingest" / "handler.py"
    assert module_file.is_file(), f"{module_file.relative_to(ROOT)} does not exist"


def test_routes_are_exactly_the_ingest_api() -> None:
    """Given every Api event in the template, when collected, then they are the four ingest routes."""
    routes = set()
    for function in _functions().values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                assert event["Properties"]["RestApiId"] == {"Ref": "AuditApi"}
                routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))

    assert routes == INGEST_ROUTES


def test_environment_holds_no_secrets() -> None:
    """Given every function environment variable, when inspected, then none carries a secret value.

    Secrets reach the functions only as Secrets Manager ARNs, read at run time.
    """
    parameters = _template()["Parameters"]

    for owner, variable, value in _environment_variables():
        for literal in _literal_strings(value):
            assert not any(marker in literal.lower() for marker in SECRET_MARKERS), (owner, variable)
        for target in _refs(value):
            if any(word in target.lower() for word in ("key", "password", "token", "database")):
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
    policy_refs = {json.dumps(policy) for policy in _functions()["IngestFunction"]["Properties"]["Policies"]}
    assert json.dumps({"Ref": "DatabaseSecretReadPolicy"}) in policy_refs


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
