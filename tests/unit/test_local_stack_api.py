"""The local API turns HTTP requests into API Gateway proxy events, and runs authorizers as the gateway would."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from werkzeug.test import Client

from audit_trail.local.api import LocalApi, policy_effect
from audit_trail.local.runtime import Runtime
from audit_trail.local.template import Template

TEMPLATE = """
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      Auth:
        DefaultAuthorizer: Tokens
        Authorizers:
          Tokens:
            FunctionArn: !GetAtt AuthFunction.Arn
            FunctionPayloadType: REQUEST
            Identity: {Headers: [Authorization]}
  AuthFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code/, Handler: local_api_auth.handler}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: local_api_echo.handler
      Events:
        Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: "/things/{thing_id}", Method: get}}
        Post: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /things, Method: post}}
        Hook: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /hook, Method: post, Auth: {Authorizer: NONE}}}
        Tick:
          Type: ScheduleV2
          Properties: {ScheduleExpression: "rate(1 hour)", Input: '{"action": "tick"}'}
"""

ECHO = """
import json
def handler(event, context):
    if event.get("action"):
        return {"ticked": event["action"], "remaining_ms": context.get_remaining_time_in_millis() > 0}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
            "body": json.dumps(event)}
"""

AUTH = """
def handler(event, context):
    token = event["headers"].get("Authorization") or event["headers"].get("authorization")
    if token == "Bearer bad":
        raise Exception("Unauthorized")
    effect = "Deny" if token == "Bearer denied" else "Allow"
    return {"principalId": "user-1", "context": {"role": "auditor", "n": 3, "ok": True},
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect,
                 "Resource": "arn:aws:execute-api:us-east-1:123456789012:local/v1/*/things*"}]}}
"""


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "local_api_echo.py").write_text(ECHO)
    (tmp_path / "code" / "local_api_auth.py").write_text(AUTH)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    for module in ("local_api_echo", "local_api_auth"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    runtime = Runtime(Template(tmp_path / "template.yaml"))
    return Client(LocalApi(runtime, log=lambda _line: None, status=lambda: {"ok": True}))


def echoed(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    event: dict[str, Any] = orjson.loads(response.get_data())
    return event


def test_a_request_becomes_a_rest_proxy_event(client: Client) -> None:
    """Given a GET with a path parameter, repeated query keys and headers, When served, Then the handler
    receives them as API Gateway REST would (single and multi-value maps, resource, requestContext)."""
    response = client.get("/things/a%20b?tag=x&tag=y&limit=5", headers={"Authorization": "Bearer ok", "X-Trace": "t1"})

    event = echoed(response)
    assert response.headers["X-Echo"] == "yes"
    assert (event["resource"], event["path"], event["httpMethod"]) == ("/things/{thing_id}", "/things/a b", "GET")
    assert event["pathParameters"] == {"thing_id": "a b"}
    assert event["queryStringParameters"] == {"tag": "y", "limit": "5"}
    assert event["multiValueQueryStringParameters"] == {"tag": ["x", "y"], "limit": ["5"]}
    assert event["headers"]["X-Trace"] == "t1"
    assert event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert (event["body"], event["isBase64Encoded"]) == (None, False)
    context = event["requestContext"]
    assert (context["resourcePath"], context["stage"], context["identity"]["sourceIp"]) == (
        "/things/{thing_id}",
        "v1",
        "127.0.0.1",
    )
    assert context["authorizer"] == {"principalId": "user-1", "role": "auditor", "n": "3", "ok": "true"}


def test_bodies_pass_as_text_or_base64(client: Client) -> None:
    """Given a UTF-8 and a binary body, When posted, Then one arrives as text and the other base64-encoded."""
    text = echoed(client.post("/things", data='{"a": "é"}', headers={"Authorization": "Bearer ok"}))
    binary = echoed(client.post("/things", data=b"\xff\x00\xfe", headers={"Authorization": "Bearer ok"}))

    assert (text["body"], text["isBase64Encoded"]) == ('{"a": "é"}', False)
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\xff\x00\xfe", True)


def test_the_authorizer_refuses_as_the_gateway_does(client: Client) -> None:
    """Given no token, a bad token and a denied one, When calling, Then 401, 401 and 403 in the error envelope."""
    missing = client.get("/things/1")
    bad = client.get("/things/1", headers={"Authorization": "Bearer bad"})
    denied = client.get("/things/1", headers={"Authorization": "Bearer denied"})

    assert (missing.status_code, orjson.loads(missing.get_data())["error"]["code"]) == (401, "UNAUTHORIZED")
    assert bad.status_code == 401
    assert (denied.status_code, orjson.loads(denied.get_data())["error"]["code"]) == (403, "ACCESS_DENIED")


def test_a_route_without_authorizer_needs_no_token(client: Client) -> None:
    """Given Auth: Authorizer: NONE, When called without a token, Then the handler runs without a principal."""
    event = echoed(client.post("/hook", data="{}"))

    assert "authorizer" not in event["requestContext"]


def test_unknown_paths_and_methods_answer_404_and_405(client: Client) -> None:
    """Given the routes, When a path or method is unknown, Then 404, or 405 naming the allowed methods."""
    missing = client.get("/nothing")
    wrong = client.delete("/things")

    assert (missing.status_code, orjson.loads(missing.get_data())["error"]["code"]) == (404, "NOT_FOUND")
    assert (wrong.status_code, wrong.headers["Allow"]) == (405, "POST")


def test_the_admin_route_runs_a_schedule_with_its_input(client: Client) -> None:
    """Given a ScheduleV2 with an action, When invoked by name, Then its function gets the schedule's input."""
    ran = client.post("/_local/invoke/tick")
    unknown = client.post("/_local/invoke/tock")

    answer = orjson.loads(ran.get_data())
    assert (ran.status_code, answer["function"], answer["input"]) == (200, "EchoFunction", {"action": "tick"})
    assert answer["result"] == {"ticked": "tick", "remaining_ms": True}
    assert (unknown.status_code, orjson.loads(unknown.get_data())["error"]["code"]) == (404, "UNKNOWN_SCHEDULE")


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        ([{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:x/v1/GET/events"}], "Allow"),
        ([{"Action": "execute-api:*", "Effect": "Allow", "Resource": ["arn:x/v1/*/events*"]}], "Allow"),
        (
            [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:x/*"},
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:x/v1/GET/*"},
            ],
            "Deny",
        ),
        ([{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:x/v1/POST/events"}], None),
    ],
)
def test_policies_allow_by_wildcard_and_deny_wins(statements: list[dict[str, Any]], expected: str | None) -> None:
    """Given an authorizer's policy, When evaluated for GET /events, Then Deny beats Allow and no match is None."""
    assert policy_effect({"Statement": statements}, "arn:x/v1/GET/events") == expected
