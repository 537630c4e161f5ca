"""A minimal stand-in for PostgREST's RPC endpoint, backed by the real test database.

PostgREST cannot run on the test machines, so the Supabase transport is contract-tested
against this stub. It implements just the part of PostgREST's documented contract the
transport relies on: `POST /rest/v1/rpc/<function>` with a JSON object of named arguments,
the schema chosen by the `Content-Profile` header, `apikey` and `Authorization: Bearer`
headers, the role taken from the JWT (the service role key is trusted as service_role; with a
`jwt_secret`, a user's HS256 access token is verified and its `role` and claims are set for the call,
`request.jwt.claims` as PostgREST does),
arguments cast to the function's declared parameter types, and errors answered as
`{"code", "message", "details", "hint"}` with HTTP 400 (or 404 for an unknown function).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import psycopg
from psycopg import sql


@dataclass
class RecordedRequest:
    """What the transport sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class PostgrestStub:
    """Running stub: its base URL and the requests it saw."""

    url: str
    requests: list[RecordedRequest] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any]] | None = None


def _argument_types(conn: psycopg.Connection[Any], schema: str, function: str) -> dict[str, str] | None:
    row = conn.execute(
        """select p.proargnames, array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t)
             from pg_proc p join pg_namespace n on n.oid = p.pronamespace
            where n.nspname = %s and p.proname = %s""",
        (schema, function),
    ).fetchone()
    if row is None:
        return None
    names, types = row
    return dict(zip(names or [], types, strict=False))


def _caller(headers: dict[str, str], service_key: str, jwt_secret: str | None) -> tuple[str | None, dict[str, Any]]:
    """The database role and claims of a request: the service key, or a verified user token."""
    if headers.get("apikey") != service_key:
        return None, {}
    token = headers.get("authorization", "").removeprefix("Bearer ")
    if token == service_key:
        return "service_role", {"role": "service_role"}
    if jwt_secret is None:
        return None, {}
    try:
        claims = jwt.decode(token, jwt_secret, algorithms=["HS256"], audience="authenticated")
    except jwt.InvalidTokenError:
        return None, {}
    role = claims.get("role")
    return (role if role in ("anon", "authenticated") else None), claims


@contextmanager
def postgrest_stub(db_url: str, service_key: str, jwt_secret: str | None = None) -> Iterator[PostgrestStub]:
    """Serve the stub on a free loopback port for the duration of the block."""
    stub = PostgrestStub(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            headers = {k.lower(): v for k, v in self.headers.items()}
            stub.requests.append(RecordedRequest("POST", self.path, headers, body))
            if stub.fail_with is not None:
                self._answer(*stub.fail_with)
                return
            role, claims = _caller(headers, service_key, jwt_secret)
            if role is None:
                self._answer(401, {"code": "PGRST301", "message": "JWT invalid", "details": None, "hint": None})
                return
            prefix = "/rest/v1/rpc/"
            schema = headers.get("content-profile", "public")
            if not self.path.startswith(prefix):
                self._answer(404, {"code": "PGRST000", "message": "not found", "details": None, "hint": None})
                return
            function = self.path[len(prefix) :]
            with psycopg.connect(db_url, autocommit=True) as conn:
                types = _argument_types(conn, schema, function)
                if types is None or set(body) - set(types):
                    self._answer(
                        404,
                        {
                            "code": "PGRST202",
                            "message": f"Could not find the function {schema}.{function}",
                            "details": None,
                            "hint": None,
                        },
                    )
                    return
                args = sql.SQL(", ").join(
                    sql.SQL("{} => {}::{}").format(sql.Identifier(name), sql.Placeholder(name), sql.SQL(types[name]))
                    for name in body
                )
                params = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in body.items()}
                try:
                    with conn.transaction():
                        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                        row = conn.execute(
                            sql.SQL("select {}.{}({})").format(sql.Identifier(schema), sql.Identifier(function), args),
                            params,
                        ).fetchone()
                except psycopg.Error as exc:
                    self._answer(
                        400,
                        {
                            "code": exc.sqlstate,
                            "message": exc.diag.message_primary,
                            "details": exc.diag.message_detail,
                            "hint": exc.diag.message_hint,
                        },
                    )
                    return
            self._answer(200, None if row is None else row[0])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
