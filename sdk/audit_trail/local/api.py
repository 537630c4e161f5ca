"""The HTTP API on 127.0.0.1: each request becomes an API Gateway REST proxy event for its route's handler.

Routes come from the template's Api events. Unknown paths answer 404 and known paths with another
method 405, in the error envelope the template's GatewayResponses use. A local-only admin route,
`POST /_local/invoke/{name}`, runs a scheduled function with its schedule's input, so
`audit-trail invoke` runs it here, with the stack's environment. Served by werkzeug's threaded server
(moto's dependency, so nothing new to install).
"""

from __future__ import annotations

import base64
import fnmatch
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from audit_trail.local.runtime import Runtime, UnknownSchedule
from audit_trail.local.template import ACCOUNT_ID, REGION, Authorizer, Route

ADMIN_PREFIX: Final = "/_local"
STAGE: Final = "v1"
Log = Callable[[str], None]


def _error(status: int, code: str, message: str) -> Response:
    response = Response(
        orjson.dumps({"error": {"code": code, "message": message}}), status=status, mimetype="application/json"
    )
    # As the template's gateway responses: 401 says how to authenticate (RFC 6750), 503 when to retry.
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    elif status == 503:
        response.headers["Retry-After"] = "5"
    return response


def proxy_event(request: Request, route: Route, path_parameters: dict[str, str]) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event API Gateway would send for this request."""
    raw = request.get_data(cache=False)
    try:
        body: str | None = raw.decode() if raw else None
        encoded = False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode(), True
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        multi_headers.setdefault(name, []).append(value)
    query = request.args
    now = datetime.now(UTC)
    source_ip = request.remote_addr or "127.0.0.1"
    user_agent = request.headers.get("User-Agent")
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method,
        # API Gateway gives the last value of a repeated header or parameter in the single-value maps.
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {key: query.getlist(key)[-1] for key in query} or None,
        "multiValueQueryStringParameters": {key: query.getlist(key) for key in query} or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": route.path,
            "httpMethod": request.method,
            "path": f"/{STAGE}{request.path}",
            "stage": STAGE,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "domainName": request.host,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": user_agent,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "accessKey": None,
                "apiKey": None,
            },
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def proxy_response(result: Any) -> Response:
    """The HTTP response for a Lambda proxy result (API Gateway answers 502 to anything malformed)."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return _error(502, "BAD_GATEWAY", "Internal server error: the function returned no proxy response")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = Headers()
    for name, value in (result.get("headers") or {}).items():
        headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name not in (result.get("headers") or {}):
            for value in values:
                headers.add(name, str(value))
    return Response(data, status=result["statusCode"], headers=headers)


def _context_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_effect(policy: Any, method_arn: str) -> str | None:
    """What an authorizer's IAM policy says about invoking `method_arn`: Deny wins, then Allow, else None."""
    effects: set[str] = set()
    for statement in _as_list((policy or {}).get("Statement") or []):
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        if any(fnmatch.fnmatchcase(method_arn, str(r)) for r in _as_list(statement.get("Resource", []))):
            effects.add(str(statement.get("Effect")))
    if "Deny" in effects:
        return "Deny"
    return "Allow" if "Allow" in effects else None


class LocalApi:
    """The WSGI application: routing, proxy events, the admin routes."""

    def __init__(self, runtime: Runtime, log: Log, status: Callable[[], dict[str, Any]]) -> None:
        self.runtime = runtime
        self.routes = runtime.template.routes()
        self._log = log
        self._status = status

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        response = self.dispatch(request)
        elapsed_ms = (time.monotonic() - started) * 1000
        self._log(f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code} ({elapsed_ms:.0f} ms)")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """The response to one request."""
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            return self._admin(request)
        allowed: list[str] = []
        for route in self.routes:
            parameters = route.match(request.path)
            if parameters is None:
                continue
            if route.method not in (request.method, "ANY"):
                allowed.append(route.method)
                continue
            return self._call(request, route, parameters)
        if allowed:
            response = _error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed on {request.path}")
            response.headers["Allow"] = ", ".join(sorted(set(allowed)))
            return response
        return _error(404, "NOT_FOUND", f"no route {request.method} {request.path}")

    def _call(self, request: Request, route: Route, parameters: dict[str, str]) -> Response:
        event = proxy_event(request, route, parameters)
        if route.authorizer is not None:
            refused = self._authorize(route.authorizer, event)
            if refused is not None:
                return refused
        try:
            return proxy_response(self.runtime.invoke(route.function, event))
        except Exception:
            # API Gateway shows a failed invocation as 502; the trace is for the developer's terminal only.
            self._log(f"{route.function} raised:\n{traceback.format_exc()}")
            return _error(502, "BAD_GATEWAY", "Internal server error: the function failed (see the stack's log)")

    def _authorize(self, authorizer: Authorizer, event: dict[str, Any]) -> Response | None:
        """Run the route's Lambda authorizer as API Gateway would; None when allowed (the event then
        carries the principal in requestContext.authorizer), else the gateway's 401/403/500."""
        headers = {name.lower(): value for name, value in (event["headers"] or {}).items()}
        if any(not headers.get(name.lower()) for name in authorizer.headers):
            return _error(401, "UNAUTHORIZED", "Unauthorized")
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:local/{STAGE}/{event['httpMethod']}{event['path']}"
        if authorizer.payload == "TOKEN":
            request_event: dict[str, Any] = {
                "type": "TOKEN",
                "authorizationToken": headers[authorizer.headers[0].lower()],
                "methodArn": method_arn,
            }
        else:
            request_event = {"type": "REQUEST", "methodArn": method_arn, **event}
            request_event.pop("body", None)
            request_event.pop("isBase64Encoded", None)
        try:
            answer = self.runtime.invoke(authorizer.function, request_event)
        except Exception as exc:
            if str(exc) == "Unauthorized":  # the one message API Gateway turns into 401
                return _error(401, "UNAUTHORIZED", "Unauthorized")
            self._log(f"{authorizer.function} raised:\n{traceback.format_exc()}")
            # template.yaml maps AUTHORIZER_FAILURE to 503 (the database behind writer tokens is down)
            return _error(503, "service_unavailable", "authentication is unavailable; retry later")
        if policy_effect(answer.get("policyDocument") if isinstance(answer, dict) else None, method_arn) != "Allow":
            return _error(403, "ACCESS_DENIED", "User is not authorized to access this resource")
        # REST APIs hand the authorizer's context to the function as strings, beside the principal id.
        context = {key: _context_value(value) for key, value in (answer.get("context") or {}).items()}
        event["requestContext"]["authorizer"] = {"principalId": answer.get("principalId"), **context}
        return None

    def _admin(self, request: Request) -> Response:
        path = request.path[len(ADMIN_PREFIX) :]
        if path == "/status" and request.method == "GET":
            return Response(orjson.dumps(self._status()), mimetype="application/json")
        if path.startswith("/invoke/") and request.method == "POST":
            return self._invoke(path.removeprefix("/invoke/"), request)
        return _error(404, "NOT_FOUND", f"no admin route {request.method} {request.path}")

    def _invoke(self, name: str, request: Request) -> Response:
        try:
            schedule = self.runtime.schedule(name)
        except UnknownSchedule as exc:
            return _error(404, "UNKNOWN_SCHEDULE", str(exc))
        event = schedule.input
        if request.get_data():
            try:
                event = orjson.loads(request.get_data())
            except orjson.JSONDecodeError as exc:
                return _error(400, "BAD_REQUEST", f"body: not valid JSON ({exc})")
        started = time.monotonic()
        try:
            result = self.runtime.invoke(schedule.function, event)
        except Exception as exc:
            self._log(f"{schedule.function} raised:\n{traceback.format_exc()}")
            code = getattr(exc, "code", type(exc).__name__)
            message = getattr(exc, "message", str(exc))
            status = int(getattr(exc, "status", 500))
            return Response(
                orjson.dumps(
                    {"function": schedule.function, "input": event, "error": {"code": code, "message": message}}
                ),
                status=status,
                mimetype="application/json",
            )
        answer = {
            "function": schedule.function,
            "schedule": schedule.name,
            "input": event,
            "seconds": round(time.monotonic() - started, 3),
            "result": result,
        }
        return Response(orjson.dumps(answer, default=str), mimetype="application/json")


class ApiServer:
    """werkzeug's threaded WSGI server for the LocalApi, in a background thread."""

    def __init__(self, app: LocalApi, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self.url = f"http://{host}:{self._server.server_port}"

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and close the socket."""
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
