"""template.yaml's access control and hardening: authorizer, limits, alarms, least privilege, encryption.

Routes and roles come from `audit_common.access` (the table the authorizer and the handlers enforce), metric
names from the functions that emit them, so the template cannot drift from the code. Where what matters is
what API Gateway receives (the OpenAPI body, the stage, the roles), the SAM-translated template is read.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit_common.access import ROUTE_ROLES, UNAUTHENTICATED_ROUTES
from audit_common.settings import Settings
from audit_trail.local.template import Template
from tests.unit.test_template import (
    SERVICE_NAMES,
    _as_list,
    _functions,
    _resources_of_type,
    _template,
    _translated,
    _translated_statements,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SECURITY_DOC = ROOT / "docs" / "security.md"
AUTHORIZER = "SupabaseJwtAuthorizer"
OPS_TOPIC = {"Ref": "OpsTopic"}
# Functions whose concurrency is fixed at 1 instead of a parameter, and why.
SINGLETONS = {
    "DetectSweepFunction": "two sweeps would analyse the same backlog and race on the watermark",
    "RetentionNightlyFunction": "one retention run at a time (the database refuses a second one too)",
    "AnchorFunction": "one digest at a time keeps the digest chain linear",
}
# AWS refuses a reservation that leaves less than 100 of the account's (default 1000) unreserved.
MAX_TOTAL_RESERVED = 900
# Custom metrics alarms watch: (metric, file that must emit it, function whose service name is its dimension).
CUSTOM_METRICS = {
    "SweepLag": ("functions/detect/sweep.py", "DetectSweepFunction"),
    "DigestsWritten": ("functions/anchor/handler.py", "AnchorFunction"),
    "AuthorizerRefused": ("functions/authorizer/handler.py", "AuthorizerFunction"),
    "RefusalNotRecorded": ("functions/authorizer/handler.py", "AuthorizerFunction"),
    "ChainInvalid": ("functions/ingest/handler.py", "IngestFunction"),
}
# Environment variables whose names sound secret but hold an identifier, and what they hold.
NOT_SECRET_VARIABLES = {
    "AUDIT_SIGNING_KEY_ID": "the KMS alias of the signing key",
    "AUDIT_REPORTS_KMS_KEY_ID": "the ARN of the reports bucket's KMS key",
}
DEAD_LETTER_QUEUES = [
    "AnchorDeadLetterQueue",
    "DetectSweepDeadLetterQueue",
    "ReportsDeadLetterQueue",
    "RetentionDeadLetterQueue",
]
# Everything each function's role may touch beyond logs and X-Ray: (action, resource) from its statements, and
# the template's managed policies it carries (each tested on its own: secrets, archive, digests, reports key).
DATABASE = "DatabaseSecretReadPolicy"
FUNCTION_GRANTS: dict[str, tuple[set[tuple[str, str]], set[str]]] = {
    "AuthorizerFunction": (set(), {DATABASE, "JwtSecretReadPolicy"}),
    "IngestFunction": (set(), {DATABASE}),
    "AnalyticsFunction": (set(), {DATABASE}),
    "RetentionFunction": (set(), {DATABASE}),
    "DetectFunction": (
        {("events:PutEvents", "AuditEventBus"), ("sns:Publish", "AlertsTopic")},
        {DATABASE, "WebhookSecretReadPolicy"},
    ),
    "DetectSweepFunction": (
        {
            ("events:PutEvents", "AuditEventBus"),
            ("sns:Publish", "AlertsTopic"),
            ("sqs:SendMessage", "DetectSweepDeadLetterQueue"),
        },
        {DATABASE},
    ),
    "RetentionNightlyFunction": ({("sqs:SendMessage", "RetentionDeadLetterQueue")}, {DATABASE, "ArchiveWritePolicy"}),
    "AnchorFunction": ({("sqs:SendMessage", "AnchorDeadLetterQueue")}, {DATABASE, "DigestWritePolicy"}),
    "ReportsFunction": (
        {
            ("events:PutEvents", "AuditEventBus"),
            ("sqs:SendMessage", "ReportsDeadLetterQueue"),
            ("s3:PutObject", "ReportsBucket"),
            ("s3:GetObject", "ReportsBucket"),
            ("s3:AbortMultipartUpload", "ReportsBucket"),
        },
        {DATABASE, "ReportsKmsPolicy"},
    ),
}
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY", "CREDENTIAL")
SECRET_ARN_PATTERN = "^(|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)$"


def _rest_api_body() -> dict[str, Any]:
    apis = [r for r in _translated()["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert len(apis) == 1
    body = apis[0]["Properties"]["Body"]
    assert isinstance(body, dict)
    return body


def _method_security() -> dict[tuple[str, str], list[str]]:
    """(METHOD, path) -> the security schemes API Gateway applies to it (empty: none)."""
    found: dict[tuple[str, str], list[str]] = {}
    for path, operations in _rest_api_body()["paths"].items():
        for verb, operation in operations.items():
            # SAM marks an opted-out method with a "NONE" scheme, which API Gateway reads as no authorization.
            schemes = [name for entry in operation.get("security") or [] for name in entry if name != "NONE"]
            found[(verb.upper(), path)] = schemes
    assert found, "no API methods in the translated template"
    return found


def _alarms() -> dict[str, dict[str, Any]]:
    return {name: alarm["Properties"] for name, alarm in _resources_of_type("AWS::CloudWatch::Alarm").items()}


def _watched(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric, dimensions) of every metric an alarm reads, plain or inside metric math."""
    if "MetricName" in alarm:
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        yield alarm["Namespace"], alarm["MetricName"], dimensions
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dimensions


def _alarms_on(namespace: str, metric: str, dimension: str, value: Any) -> list[str]:
    return [
        name
        for name, alarm in _alarms().items()
        if any((ns, m, dims.get(dimension)) == (namespace, metric, value) for ns, m, dims in _watched(alarm))
    ]


def _evaluated(parameters: dict[str, str] | None = None) -> Template:
    """The template with intrinsics evaluated as the local stack does (parameter defaults unless given)."""
    return Template(TEMPLATE, parameters)


def _logical_ids(value: Any) -> Iterator[str]:
    """Resources a policy value points at: Ref, Fn::GetAtt and the ${Resource} / ${Resource.Attr} of Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from _logical_ids(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                yield item[0] if isinstance(item, list) else str(item).split(".")[0]
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                yield from re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", text)
                if isinstance(item, list):
                    yield from _logical_ids(item[1])
            else:
                yield from _logical_ids(item)


def _checkov_skips() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in _template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            yield name, skip


# -- authentication ------------------------------------------------------------------------------------


def test_every_access_controlled_route_exists_and_goes_through_the_lambda_authorizer() -> None:
    """Given the access table, When the translated API is read, Then each of its routes exists and API Gateway
    runs the Lambda authorizer (and nothing weaker) before it."""
    methods = _method_security()

    for route in ROUTE_ROLES:
        assert route in methods, f"{route} is in audit_common.access.ROUTE_ROLES but not in template.yaml"
        assert AUTHORIZER in methods[route], (route, methods[route])
        assert "AWS_IAM" not in methods[route], route


def test_exactly_the_unauthenticated_routes_skip_the_authorizer() -> None:
    """Given the translated API, When its methods are read, Then only the documented public routes have no
    authorizer, and every route is in the access table one way or the other (none is forgotten)."""
    methods = _method_security()
    public = {route for route, schemes in methods.items() if not schemes}

    assert public == set(UNAUTHENTICATED_ROUTES)
    assert set(methods) == set(ROUTE_ROLES) | set(UNAUTHENTICATED_ROUTES)


def test_authorizer_is_a_short_cached_request_authorizer_on_the_authorization_header() -> None:
    """Given the authorizer's security scheme, Then it is a REQUEST authorizer invoking AuthorizerFunction, keyed
    on the Authorization header, with answers cached a minute at most (revoked tokens stop within a minute)."""
    scheme = _rest_api_body()["components"]["securitySchemes"][AUTHORIZER]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    uri = authorizer["authorizerUri"]["Fn::Sub"]

    assert scheme["x-amazon-apigateway-authtype"] == "custom"
    assert authorizer["type"] == "request"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert 0 < authorizer["authorizerResultTtlInSeconds"] <= 60
    assert uri[1]["__FunctionArn__"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert _template()["Resources"]["AuditApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == AUTHORIZER


def test_authorizer_function_is_configured_through_the_settings_model() -> None:
    """Given AuthorizerFunction, Then it runs authorizer.handler under functions/, and the variables it is given
    (ARN, JWKS URL, issuer, database role) are the ones the settings model reads."""
    properties = _functions()["AuthorizerFunction"]["Properties"]
    variables = properties["Environment"]["Variables"]
    optional = {"AUDIT_JWT_SECRET_ARN": "JwtSecretArn", "AUDIT_JWKS_URL": "JwksUrl", "AUDIT_JWT_ISSUER": "JwtIssuer"}

    assert properties["Handler"] == "authorizer.handler.lambda_handler"
    assert properties["CodeUri"] == "functions/"
    for variable, parameter in optional.items():
        condition, value, otherwise = variables[variable]["Fn::If"]
        assert (value, otherwise) == ({"Ref": parameter}, {"Ref": "AWS::NoValue"}), variable
        assert _template()["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUDIT_JWT_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-AbCdEf")
        env.setenv("AUDIT_JWKS_URL", "https://ref.supabase.co/auth/v1/.well-known/jwks.json")
        env.setenv("AUDIT_JWT_ISSUER", "https://ref.supabase.co/auth/v1")
        env.setenv("AUDIT_DATABASE_ROLE", "audit_lambda")
        configured = Settings()
    assert configured.jwt_secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-AbCdEf"
    assert configured.jwks_url == "https://ref.supabase.co/auth/v1/.well-known/jwks.json"
    assert configured.jwt_issuer == "https://ref.supabase.co/auth/v1"
    assert configured.database_role == "audit_lambda"


@pytest.mark.parametrize(
    ("parameters", "deployable"),
    [
        ({}, False),
        ({"JwtSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:jwt-AbCdEf"}, True),
        ({"JwksUrl": "https://ref.supabase.co/auth/v1/.well-known/jwks.json"}, True),
    ],
)
def test_the_stack_cannot_deploy_without_a_key_to_verify_tokens(parameters: dict[str, str], deployable: bool) -> None:
    """Given the JwtKeyConfigured rule, When it is evaluated with and without a JWT secret or JWKS URL, Then it
    holds only when one of them is set."""
    template = _evaluated(parameters)
    assertions = template.data["Rules"]["JwtKeyConfigured"]["Assertions"]

    assert all(template.evaluate(assertion["Assert"]) for assertion in assertions) is deployable


def test_gateway_refusals_use_the_error_envelope_and_401_challenges_for_a_bearer_token() -> None:
    """Given the translated gateway responses, Then 401 and 403 carry the API's JSON error shape, and 401 says
    how to authenticate (WWW-Authenticate: Bearer, RFC 6750)."""
    responses = _rest_api_body()["x-amazon-apigateway-gateway-responses"]
    context = {"$context.error.responseType": "UNAUTHORIZED", "$context.error.messageString": '"Unauthorized"'}

    assert responses["UNAUTHORIZED"]["statusCode"] == "401"
    assert responses["UNAUTHORIZED"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"] == "'Bearer'"
    assert responses["ACCESS_DENIED"]["statusCode"] == "403"
    for name in ("UNAUTHORIZED", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX"):
        rendered = responses[name]["responseTemplates"]["application/json"]
        for placeholder, value in context.items():
            rendered = rendered.replace(placeholder, value)
        assert json.loads(rendered) == {"error": {"code": "UNAUTHORIZED", "message": "Unauthorized"}}, name
        header = responses[name]["responseParameters"]["gatewayresponse.header.Content-Type"]
        assert header == "'application/json'", name


def test_an_authorizer_that_cannot_reach_the_database_is_a_503_to_retry() -> None:
    """Given the authorizer failing (writer tokens live in the database, which is down), Then API Gateway
    answers 503 with Retry-After and the envelope, like the functions' own outage answer, not a bare 500."""
    failure = _rest_api_body()["x-amazon-apigateway-gateway-responses"]["AUTHORIZER_FAILURE"]
    assert failure["statusCode"] == "503"
    assert failure["responseParameters"]["gatewayresponse.header.Retry-After"] == "'5'"
    body = json.loads(failure["responseTemplates"]["application/json"])
    assert body["error"]["code"] == "service_unavailable"


# -- limits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICE_NAMES))
def test_every_function_has_reserved_concurrency(name: str) -> None:
    """Given a function, Then its concurrency is reserved: fixed at 1 for the documented singletons, else a
    parameter with a positive default, where 0 (and only 0) leaves it unreserved."""
    reserved = _functions()[name]["Properties"].get("ReservedConcurrentExecutions")

    assert reserved is not None, f"{name} has no reserved concurrency"
    if name in SINGLETONS:
        assert reserved == 1, name
        return
    condition, value, otherwise = reserved["Fn::If"]
    parameter = value["Ref"]
    spec = _template()["Parameters"][parameter]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert _template()["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, "0"]}]}
    assert spec["Type"] == "Number" and spec["MinValue"] == 0 and spec["Default"] >= 1
    assert _evaluated().properties(name)["ReservedConcurrentExecutions"] == spec["Default"]
    assert "ReservedConcurrentExecutions" not in _evaluated({parameter: "0"}).properties(name)


def test_reserved_concurrency_defaults_leave_the_account_its_unreserved_minimum() -> None:
    """Given the defaults, Then all reservations together leave 100 of a default 1000-execution account free."""
    evaluated = _evaluated()
    total = sum(evaluated.properties(name)["ReservedConcurrentExecutions"] for name in _functions())

    assert total <= MAX_TOTAL_RESERVED


def test_stage_throttling_names_real_routes() -> None:
    """Given the per-method throttling of the stage, Then each entry names a route of the API (a typo would
    silently throttle nothing), and writes have their own budget."""
    stages = [r for r in _translated()["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    settings = stages[0]["Properties"]["MethodSettings"]
    routes = set(_method_security())
    # "/~1integrity~1verify" is /integrity/verify: a leading "/", then the path with each "/" written "~1".
    named = {(s["HttpMethod"], s["ResourcePath"][1:].replace("~1", "/")) for s in settings if s["ResourcePath"] != "/*"}

    assert len(stages) == 1
    assert named <= routes, named - routes
    assert ("POST", "/events") in named


def test_writer_usage_plan_meters_this_stage_by_the_key_the_authorizer_returns() -> None:
    """Given the writer usage plan, Then it applies to the API's stage with a throttle and a daily quota, and the
    API takes the key from the authorizer (usageIdentifierKey), not from a header the client chooses."""
    resources = _translated()["Resources"]
    plan = resources["WriterUsagePlan"]["Properties"]
    api = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi")
    stage = plan["ApiStages"][0]["Stage"]["Ref"]

    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    assert plan["ApiStages"][0]["ApiId"] == {"Ref": "AuditApi"}
    assert resources[stage]["Type"] == "AWS::ApiGateway::Stage"
    assert plan["Throttle"] == {
        "RateLimit": {"Ref": "WriterUsagePlanRateLimit"},
        "BurstLimit": {"Ref": "WriterUsagePlanBurstLimit"},
    }
    assert plan["Quota"] == {"Limit": {"Ref": "WriterUsagePlanDailyQuota"}, "Period": "DAY"}


# -- alarms --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICE_NAMES))
def test_every_function_has_errors_and_throttles_alarms(name: str) -> None:
    """Given a function, Then one alarm watches its Lambda Errors and one its Throttles."""
    function = {"Ref": name}

    assert len(_alarms_on("AWS/Lambda", "Errors", "FunctionName", function)) == 1, name
    assert len(_alarms_on("AWS/Lambda", "Throttles", "FunctionName", function)) == 1, name


def test_authorizer_errors_alarm_ignores_refused_tokens() -> None:
    """Given the authorizer's Errors alarm, Then it subtracts the refusals the function counts (raising
    "Unauthorized" is how it answers 401, and Lambda counts that as an error)."""
    (name,) = _alarms_on("AWS/Lambda", "Errors", "FunctionName", {"Ref": "AuthorizerFunction"})
    alarm = _alarms()[name]
    returned = [query for query in alarm["Metrics"] if query.get("ReturnData", True)]
    ids = {
        query["MetricStat"]["Metric"]["MetricName"]: query["Id"] for query in alarm["Metrics"] if "MetricStat" in query
    }

    assert len(returned) == 1
    assert re.fullmatch(
        rf"FILL\({ids['Errors']}, 0\) - FILL\({ids['AuthorizerRefused']}, 0\)", returned[0]["Expression"]
    )


def test_the_dead_letter_queues_are_all_the_queues() -> None:
    """Given the template's queues, Then they are exactly the dead-letter queues the alarms below cover."""
    assert set(_resources_of_type("AWS::SQS::Queue")) == set(DEAD_LETTER_QUEUES)


@pytest.mark.parametrize("queue", DEAD_LETTER_QUEUES)
def test_every_dead_letter_queue_alarms_on_its_first_message(queue: str) -> None:
    """Given a dead-letter queue, Then an alarm fires as soon as one message is visible in it."""
    (name,) = _alarms_on(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", {"Fn::GetAtt": [queue, "QueueName"]}
    )
    alarm = _alarms()[name]

    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_api_5xx_alarm_watches_this_api_and_stage() -> None:
    """Given the API 5XX alarm, Then its dimensions are the API's name and stage as the template defines them."""
    api = _template()["Resources"]["AuditApi"]["Properties"]
    (name,) = _alarms_on("AWS/ApiGateway", "5XXError", "ApiName", api["Name"])

    assert {d["Name"]: d["Value"] for d in _alarms()[name]["Dimensions"]}["Stage"] == api["StageName"]


@pytest.mark.parametrize("metric", sorted(CUSTOM_METRICS))
def test_custom_metric_alarms_watch_what_the_code_emits(metric: str) -> None:
    """Given an alarm on one of the functions' own metrics, Then the function's code emits that metric, in the
    namespace and with the service dimension Powertools gives it."""
    source, function = CUSTOM_METRICS[metric]
    namespace = _template()["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    service = _functions()[function]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]

    assert re.search(rf'add_metric\(\s*name="{metric}"', (ROOT / source).read_text()), (
        f"{source} does not emit {metric}"
    )
    assert _alarms_on(namespace, metric, "service", service), metric


def test_a_stopped_anchor_or_sweep_alarms() -> None:
    """Given the anchor gap and sweep lag alarms, Then missing data breaches (a function that stopped emits
    nothing), and the anchor alarms after two hours without a digest."""
    (anchor,) = _alarms_on("AuditTrail", "DigestsWritten", "service", "anchor")
    (sweep,) = _alarms_on("AuditTrail", "SweepLag", "service", "detect-sweep")
    gap, lag = _alarms()[anchor], _alarms()[sweep]

    assert gap["TreatMissingData"] == "breaching"
    assert (gap["Statistic"], gap["ComparisonOperator"], gap["Threshold"]) == ("Sum", "LessThanThreshold", 1)
    assert gap["Period"] * gap["EvaluationPeriods"] == 2 * 3600
    assert lag["TreatMissingData"] == "breaching"
    assert (lag["ComparisonOperator"], lag["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_alarm_notifies_the_ops_topic_which_alarms_can_publish_to() -> None:
    """Given every alarm, Then it notifies OpsTopic, whose key admits CloudWatch (an AWS managed key would not)
    and whose policy admits only this account's alarms."""
    topic = _template()["Resources"]["OpsTopic"]["Properties"]
    key_policy = _template()["Resources"]["OperationsKey"]["Properties"]["KeyPolicy"]["Statement"]
    topic_policy = _template()["Resources"]["OpsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    assert _alarms()
    for name, alarm in _alarms().items():
        assert alarm["AlarmActions"] == [OPS_TOPIC], name
    assert topic["KmsMasterKeyId"] == {"Ref": "OperationsKey"}
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in key_policy)
    publishers = [s for s in topic_policy if s["Effect"] == "Allow"]
    assert [s["Principal"] for s in publishers] == [{"Service": "cloudwatch.amazonaws.com"}]
    assert "aws:SourceArn" in publishers[0]["Condition"]["ArnLike"]


# -- least privilege and encryption --------------------------------------------------------------------


def test_every_log_group_is_encrypted_with_a_key_that_admits_only_this_stacks_log_groups() -> None:
    """Given every log group, Then it names the operations key, and that key's CloudWatch Logs statement
    matches (by encryption context) this stack's log group names."""
    key = _template()["Resources"]["OperationsKey"]["Properties"]
    (logs,) = [s for s in key["KeyPolicy"]["Statement"] if "logs" in json.dumps(s["Principal"])]
    patterns = [p["Fn::Sub"] for p in logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    prefix = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"

    assert key["EnableKeyRotation"] is True
    for name, group in _resources_of_type("AWS::Logs::LogGroup").items():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["OperationsKey", "Arn"]}, name
        arn = prefix + group["Properties"]["LogGroupName"]["Fn::Sub"]
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns), name


def test_every_function_switches_to_the_configured_database_role() -> None:
    """Given the functions' shared environment, Then each is told the role to SET LOCAL, service_role unless
    the operator names a narrower one."""
    variables = _template()["Globals"]["Function"]["Environment"]["Variables"]
    parameter = _template()["Parameters"]["DatabaseRole"]

    assert variables["AUDIT_DATABASE_ROLE"] == {"Ref": "DatabaseRole"}
    assert parameter["Default"] == "service_role"
    assert re.fullmatch(parameter["AllowedPattern"], "audit_lambda")
    assert not re.fullmatch(parameter["AllowedPattern"], "service_role; drop table audit.audit_events")
    for function in _evaluated().functions().values():
        assert function.environment["AUDIT_DATABASE_ROLE"] == "service_role", function.logical_id


def test_no_environment_variable_holds_a_secret_value() -> None:
    """Given every function's evaluated environment, Then a variable named like a secret holds an ARN of a
    Secrets Manager parameter (or a documented identifier), never a value."""
    parameters = _template()["Parameters"]
    evaluated = _evaluated(
        {
            name: f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}-AbCdEf"
            for name in parameters
            if name.endswith("SecretArn")
        }
    )

    for function in evaluated.functions().values():
        for variable, value in function.environment.items():
            if not any(word in variable for word in SECRET_WORDS) or variable in NOT_SECRET_VARIABLES:
                continue
            assert variable.endswith("_SECRET_ARN"), (function.logical_id, variable)
            assert re.fullmatch(SECRET_ARN_PATTERN, value) and value, (function.logical_id, variable, value)
    for name, spec in parameters.items():
        if name.endswith("SecretArn"):
            assert spec["AllowedPattern"] == SECRET_ARN_PATTERN, name


def test_only_the_authorizer_reads_the_jwt_secret_and_it_reads_no_other_secret_but_the_databases() -> None:
    """Given the translated roles, Then the JWT secret's read policy is attached to the authorizer's role alone,
    names that secret alone, and the authorizer's role reads no other secret but the database's."""
    resources = _translated()["Resources"]
    jwt_statements = [s for owner, s in _translated_statements() if "JwtSecretArn" in json.dumps(s)]
    attached = {
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role" and "JwtSecretReadPolicy" in json.dumps(resource["Properties"])
    }
    authorizer_policies = json.dumps(resources["AuthorizerFunctionRole"]["Properties"])

    assert [(owner, s["Resource"]) for owner, s in _translated_statements() if "JwtSecretArn" in json.dumps(s)] == [
        ("JwtSecretReadPolicy", {"Ref": "JwtSecretArn"})
    ]
    assert [_as_list(s["Action"]) for s in jwt_statements] == [["secretsmanager:GetSecretValue"]]
    assert attached == {"AuthorizerFunctionRole"}
    assert "WebhookSecretReadPolicy" not in authorizer_policies
    assert "secretsmanager" not in authorizer_policies  # no inline statement: only the two managed policies
    assert resources["JwtSecretReadPolicy"]["Condition"] == "HasJwtSecret"


@pytest.mark.parametrize("function", sorted(FUNCTION_GRANTS))
def test_each_function_role_reaches_only_its_own_resources(function: str) -> None:
    """Given a function's translated role, Then its statements name only its own bus, topic, queue and bucket,
    and it carries only its own managed policies: a new grant anywhere has to be added here on purpose."""
    resources = _translated()["Resources"]
    role = resources[f"{function}Role"]["Properties"]
    logical = set(resources)
    grants = {
        (action, target)
        for policy in role.get("Policies", [])
        for statement in _as_list(policy["PolicyDocument"]["Statement"])
        for action in _as_list(statement["Action"])
        for target in _logical_ids(statement["Resource"])
        if target in logical
    }
    managed = {target for arn in role["ManagedPolicyArns"] for target in _logical_ids(arn) if target in logical}
    expected_grants, expected_managed = FUNCTION_GRANTS[function]

    assert set(FUNCTION_GRANTS) == set(SERVICE_NAMES)
    assert grants == expected_grants
    assert managed == expected_managed
    for arn in role["ManagedPolicyArns"]:
        assert not isinstance(arn, str) or arn.startswith("arn:aws:iam::aws:policy/"), arn


# -- security scan -------------------------------------------------------------------------------------


def test_every_checkov_skip_has_a_reason_and_is_documented() -> None:
    """Given the checkov skips in the resources' Metadata, Then each has a reason, and docs/security.md
    explains every skipped check."""
    skips = list(_checkov_skips())
    document = SECURITY_DOC.read_text()

    assert skips
    for resource, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (resource, skip)
        assert len(skip.get("comment", "").split()) >= 8, (resource, skip["id"])
        assert skip["id"] in document, f"{skip['id']} (skipped on {resource}) is not explained in docs/security.md"
