"""The local stack reads template.yaml: routes, schedules, functions and intrinsics, nothing repeated by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit_trail.local.template import NO_VALUE, Template, load_yaml, route_pattern

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

SMALL = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  EnvironmentName: {Type: String, Default: dev}
  KeyArn: {Type: String, Default: ""}
Conditions:
  HasKey: !Not [!Equals [!Ref KeyArn, ""]]
  IsProd: !Equals [!Ref EnvironmentName, prod]
Globals:
  Function:
    Timeout: 29
    Environment:
      Variables:
        SHARED: !Sub "audit-${EnvironmentName}"
        KEY: !If [HasKey, !Ref KeyArn, !Ref AWS::NoValue]
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Auth:
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt AuthFunction.Arn
            FunctionPayloadType: REQUEST
            Identity: {Headers: [Authorization]}
  Bucket:
    Type: AWS::S3::Bucket
  ProdOnly:
    Type: AWS::S3::Bucket
    Condition: IsProd
  AuthFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code/, Handler: auth.handler}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: echo.handler
      Timeout: 300
      Environment:
        Variables:
          BUCKET: !Ref Bucket
          BUCKET_ARN: !GetAtt Bucket.Arn
          JOINED: !Join ["/", [a, !Select [1, !Split [",", "x,y,z"]]]]
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/items/{item_id}", Method: get}
        Post:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /items, Method: post}
        Named:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /items/special, Method: get}
        Public:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /hooks, Method: post, Auth: {Authorizer: NONE}}
        Nightly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: "cron(0 2 * * ? *)", Input: '{"action": "nightly"}'}
"""


@pytest.fixture
def small(tmp_path: Path) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    return Template(path)


def test_short_tags_load_as_their_long_form(tmp_path: Path) -> None:
    """Given !Ref/!GetAtt/!If, When loaded, Then they are {"Ref": ...}/{"Fn::GetAtt": [..]}/{"Fn::If": [..]}."""
    path = tmp_path / "t.yaml"
    path.write_text("Resources:\n  A: {X: !Ref B, Y: !GetAtt C.Arn, Z: !If [Cond, 1, 2], S: !Sub 'a-${B}'}\n")

    loaded: dict[str, Any] = load_yaml(path)["Resources"]["A"]

    assert loaded == {
        "X": {"Ref": "B"},
        "Y": {"Fn::GetAtt": ["C", "Arn"]},
        "Z": {"Fn::If": ["Cond", 1, 2]},
        "S": {"Fn::Sub": "a-${B}"},
    }


def test_intrinsics_resolve_against_parameters_conditions_and_provisioned_names(small: Template) -> None:
    """Given a provisioned bucket, When the environment is read, Then Ref/GetAtt/Sub/If/Join resolve."""
    small.physical["Bucket"] = {"Ref": "local-bucket", "Arn": "arn:aws:s3:::local-bucket"}

    env = small.functions()["EchoFunction"].environment

    assert env == {
        "SHARED": "audit-dev",
        "BUCKET": "local-bucket",
        "BUCKET_ARN": "arn:aws:s3:::local-bucket",
        "JOINED": "a/y",
    }
    assert "KEY" not in env  # AWS::NoValue removes the variable


def test_overridden_parameters_flip_conditions(tmp_path: Path) -> None:
    """Given KeyArn set, When the environment is read, Then the conditional variable appears."""
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)

    template = Template(path, {"KeyArn": "arn:aws:kms:us-east-1:123456789012:key/k"})

    assert template.functions()["EchoFunction"].environment["KEY"] == "arn:aws:kms:us-east-1:123456789012:key/k"
    assert template.evaluate({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_resources_whose_condition_is_false_are_skipped(small: Template) -> None:
    """Given a bucket conditioned on prod, When buckets are listed in dev, Then it is absent."""
    assert list(small.of_type("AWS::S3::Bucket")) == ["Bucket"]


def test_routes_prefer_literal_segments_and_carry_their_authorizer(small: Template) -> None:
    """Given /items/special and /items/{item_id}, When matched, Then the literal route wins; NONE opts out."""
    routes = small.routes()

    special = next(route for route in routes if route.match("/items/special") is not None)
    assert special.path == "/items/special"
    by_path = {route.path: route for route in routes}
    assert by_path["/items/{item_id}"].match("/items/42") == {"item_id": "42"}
    assert by_path["/items/{item_id}"].match("/items/42/more") is None
    authorizer = by_path["/items"].authorizer
    assert authorizer is not None
    assert (authorizer.function, authorizer.payload, authorizer.headers) == (
        "AuthFunction",
        "REQUEST",
        ("Authorization",),
    )
    assert by_path["/hooks"].authorizer is None


def test_schedules_and_functions_come_with_input_and_timeout(small: Template) -> None:
    """Given a ScheduleV2 event, When read, Then its JSON Input is parsed and the function's timeout kept."""
    (schedule,) = small.schedules()

    assert (schedule.name, schedule.function, schedule.action) == ("Nightly", "EchoFunction", "nightly")
    function = small.functions()["EchoFunction"]
    assert (function.module, function.attribute, function.timeout) == ("echo", "handler", 300)
    assert function.code_dir == (small.root / "code").resolve()
    assert small.functions()["AuthFunction"].timeout == 29


def test_greedy_path_parameters_take_the_rest_of_the_path() -> None:
    """Given {proxy+}, When matched, Then it spans segments."""
    pattern, literal = route_pattern("/files/{proxy+}")

    found = pattern.fullmatch("/files/a/b/c.txt")
    assert found is not None
    assert (found["proxy"], literal) == ("a/b/c.txt", 1)


def test_every_api_event_and_schedule_of_the_real_template_is_served() -> None:
    """Given template.yaml, When the local stack reads it, Then each Api event is a route and each
    ScheduleV2 event a schedule with an `action`, so `audit-trail invoke <action>` finds it."""
    template = Template(TEMPLATE)
    raw = load_yaml(TEMPLATE)["Resources"]
    declared_routes = set()
    declared_schedules = set()
    for name, resource in raw.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in (resource["Properties"].get("Events") or {}).items():
            if event["Type"] == "Api":
                declared_routes.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"], name))
            elif event["Type"] == "ScheduleV2":
                declared_schedules.add((event_name, name))

    assert {(r.method, r.path, r.function) for r in template.routes()} == declared_routes
    schedules = template.schedules()
    assert {(s.name, s.function) for s in schedules} == declared_schedules
    assert all(s.action for s in schedules)
    assert {"sweep", "retention"} <= {s.action for s in schedules}
    for function in template.functions().values():
        assert (function.code_dir / function.module.replace(".", "/")).with_suffix(".py").is_file()


@pytest.mark.parametrize("secret", [None, "a-local-jwt-secret"], ids=["no-jwt-secret", "jwt-secret"])
def test_banner_says_how_to_get_a_token_and_sign_in(secret: str | None, tmp_path: Path) -> None:
    """Given the real template and a stack with (or without) a local JWT secret, Then the banner names the
    `audit-trail token` command for its data directory and the dashboard says which token signs in."""
    from audit_trail.local.stack import LocalStack

    stack = LocalStack(data_dir=tmp_path / "stack")
    stack.template = Template(TEMPLATE, {})
    stack.api_url = "http://127.0.0.1:3999"
    if secret:
        stack.local_secrets["JwtSecretArn"] = secret

    hints = "\n".join(stack.token_hints())

    command = f"audit-trail token --role auditor --data-dir {tmp_path / 'stack'}"
    if secret:
        assert command in hints
        assert f"dashboard   http://127.0.0.1:3999/dashboard  (sign in with the token of: {command})" in hints
    else:
        assert "checks no access tokens yet" in hints
        assert "audit-trail token --role writer" in hints
