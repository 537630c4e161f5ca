"""Bodies the API cannot read are refused with the error envelope, never a 500 (found by the API fuzz)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from audit_common.http import create_resolver, resolve
from tests.support.apigw import FakeLambdaContext, proxy_event

app = create_resolver()
# A route the access guard lets through unauthenticated (it proves itself with a secret in
# production), so this unit test needs no database for the access record.
ECHO = "/webhooks/supabase"


@app.post(ECHO)
def echo() -> dict[str, Any]:
    body: dict[str, Any] = app.current_event.json_body
    return body


def _call(raw_body: str, content_type: str | None = "application/json", *, base64_encoded: bool = False) -> Any:
    event = proxy_event("POST", ECHO, raw_body=raw_body)
    if content_type is None:
        del event["headers"]["Content-Type"]
    else:
        event["headers"]["Content-Type"] = content_type
    event["isBase64Encoded"] = base64_encoded
    answer = resolve(app, event, FakeLambdaContext())  # type: ignore[arg-type]  # the attributes Powertools reads
    return answer["statusCode"], orjson.loads(answer["body"])


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded", "application/xml"]
)
def test_non_json_content_types_get_415(content_type: str) -> None:
    """Given a JSON body sent as another media type, then 415 names the type (Powertools would 500 on forms)."""
    status, body = _call('{"a": 1}', content_type)
    assert status == 415
    assert body["error"]["code"] == "unsupported_media_type"
    assert content_type in body["error"]["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json", None]
)
def test_json_media_types_pass(content_type: str | None) -> None:
    assert _call('{"a": 1}', content_type) == (200, {"a": 1})


def test_base64_body_that_is_not_utf8_gets_400() -> None:
    status, body = _call(base64.b64encode(b"\x80\xff").decode(), base64_encoded=True)
    assert status == 400
    assert "UTF-8" in body["error"]["message"]


def test_base64_utf8_json_is_read() -> None:
    assert _call(base64.b64encode(b'{"a": "\xc3\xa9"}').decode(), base64_encoded=True) == (200, {"a": "é"})
