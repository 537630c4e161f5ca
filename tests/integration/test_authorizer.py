"""The authorizer against the real database: writer tokens stored hashed, Supabase JWTs, the answers.

Given / When / Then: each test mints credentials the way production would (writer tokens through the
SQL API, JWTs signed with the project's secret) and calls the real Lambda authorizer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import jwt
import psycopg
import pytest

from audit_common.auth import mint_writer_token
from audit_common.db import PostgresTransport
from audit_common.settings import get_settings
from authorizer import handler as authorizer
from tests.support.apigw import FakeLambdaContext
from tests.support.events import access_records

JWT_SECRET = "local-jwt-secret-for-tests-only-0123456789abcdef"
ISSUER = "http://127.0.0.1:54321/auth/v1"
API = "arn:aws:execute-api:us-east-1:123456789012:api0000001/prod"


@pytest.fixture
def authorizer_env(configured: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AUDIT_JWT_SECRET", JWT_SECRET)
    monkeypatch.setenv("AUDIT_JWT_ISSUER", ISSUER)
    get_settings.cache_clear()
    authorizer.verifier.cache_clear()
    yield
    authorizer.verifier.cache_clear()


def _issue(transport: PostgresTransport, name: str = "checkout-service", **extra: Any) -> str:
    minted = mint_writer_token()
    transport.call(
        "issue_writer_token",
        {
            "p_token_id": minted.token_id,
            "p_name": name,
            "p_secret_sha256": minted.secret_sha256,
            "p_created_by": "admin:ops",
            **extra,
        },
    )
    return minted.token


def _jwt(**overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "user-123",
        "aud": "authenticated",
        "iss": ISSUER,
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        "app_metadata": {},
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, JWT_SECRET, algorithm="HS256")


def _authorize(authorization: str | None, method: str = "GET") -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    event = {
        "type": "REQUEST",
        "methodArn": f"{API}/{method}/events",
        "resource": "/events",
        "path": "/events",
        "httpMethod": method,
        "headers": headers,
        "requestContext": {"requestId": f"req-{time.time_ns()}", "identity": {"sourceIp": "198.51.100.7"}},
    }
    answer: dict[str, Any] = authorizer.lambda_handler(event, FakeLambdaContext(function_name="authorizer"))
    return answer


def _refused(authorization: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        _authorize(authorization)


@pytest.mark.usefixtures("authorizer_env")
class TestWriterTokens:
    def test_writer_may_post_events_only(self, transport: PostgresTransport) -> None:
        """Given a token issued to a writer, then the policy allows POST /events and nothing else."""
        answer = _authorize(f"Bearer {_issue(transport)}")
        (statement,) = answer["policyDocument"]["Statement"]
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == [f"{API}/POST/events"]
        assert answer["context"]["role"] == "writer"
        assert answer["context"]["subject"] == "checkout-service"

    def test_database_keeps_only_the_hash(self, transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
        """Given an issued token, then neither the secret nor the token appears in the table."""
        token = _issue(transport)
        secret = token.split("_", 2)[2]
        ((stored, token_id),) = db.execute("select secret_sha256, token_id from audit.writer_tokens").fetchall()
        assert bytes(stored) == hashlib.sha256(secret.encode()).digest()
        assert token_id in token
        row_text = str(db.execute("select t::text from audit.writer_tokens t").fetchone())
        assert secret not in row_text

    def test_wrong_secret_is_refused(self, transport: PostgresTransport) -> None:
        token = _issue(transport)
        _refused(f"Bearer {token[:-4]}AAAA")

    def test_unknown_token_is_refused(self) -> None:
        _refused(f"Bearer {mint_writer_token().token}")

    def test_revoked_token_is_refused(self, transport: PostgresTransport) -> None:
        token = _issue(transport)
        token_id = token[4:16]
        revoked = transport.call("revoke_writer_token", {"p_token_id": token_id, "p_revoked_by": "admin:ops"})
        assert revoked["active"] is False
        assert revoked["revoked_by"] == "admin:ops"
        _refused(f"Bearer {token}")

    def test_expired_token_is_refused(self, transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
        token = _issue(transport, p_expires_at="2999-01-01T00:00:00Z")
        assert _authorize(f"Bearer {token}")["context"]["role"] == "writer"
        # A token whose expiry passed: issue one expiring in a moment and wait it out.
        soon = _issue(transport, name="short-lived", p_expires_at=_in_seconds(db, 1))
        time.sleep(1.2)
        _refused(f"Bearer {soon}")

    def test_tokens_can_only_be_revoked_never_edited_or_deleted(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        _issue(transport)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only be revoked"):
            db.execute("update audit.writer_tokens set scopes = array['events:write'], name = 'renamed'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="never deleted"):
            db.execute("delete from audit.writer_tokens")

    def test_service_role_reaches_tokens_only_through_the_sql_api(self, db_url: str) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("set role service_role")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select * from audit.writer_tokens")

    def test_malformed_secret_hash_is_refused(self, transport: PostgresTransport) -> None:
        minted = mint_writer_token()
        with pytest.raises(Exception, match="64 lowercase hex"):
            transport.call(
                "issue_writer_token",
                {"p_token_id": minted.token_id, "p_name": "x", "p_secret_sha256": "abc", "p_created_by": "admin:ops"},
            )


def _in_seconds(db: psycopg.Connection[Any], seconds: int) -> str:
    row = db.execute("select (now() + make_interval(secs => %s))::text", (seconds,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.usefixtures("authorizer_env")
class TestSupabaseTokens:
    def test_user_gets_reader_routes(self) -> None:
        answer = _authorize(f"Bearer {_jwt()}")
        resources = set(answer["policyDocument"]["Statement"][0]["Resource"])
        assert f"{API}/GET/events" in resources
        assert f"{API}/GET/events/*" in resources
        assert f"{API}/GET/subjects/*/export" in resources
        assert f"{API}/GET/alerts" not in resources
        assert f"{API}/POST/events" not in resources
        assert answer["context"] == {"subject": "user-123", "role": "user"}

    def test_admin_gets_erasure(self) -> None:
        answer = _authorize(f"Bearer {_jwt(app_metadata={'audit_role': 'admin'})}")
        assert f"{API}/POST/subjects/*/erasure" in answer["policyDocument"]["Statement"][0]["Resource"]

    @pytest.mark.parametrize(
        "authorization",
        [
            None,
            "",
            "Basic dXNlcjpwYXNz",
            f"Bearer {_jwt(exp=int(time.time()) - 3600)}",
            f"Bearer {_jwt(aud='other')}",
            f"Bearer {jwt.encode({'sub': 'x', 'role': 'authenticated', 'aud': 'authenticated'}, '', algorithm='none')}",
            f"Bearer {jwt.encode({'sub': 'x'}, 'wrong-secret-wrong-secret-wrong-secret', algorithm='HS256')}",
        ],
        ids=["none", "empty", "basic", "expired", "wrong-audience", "alg-none", "wrong-signature"],
    )
    def test_bad_credentials_get_401(self, authorization: str | None) -> None:
        _refused(authorization)

    def test_anon_key_gets_403(self) -> None:
        answer = _authorize(f"Bearer {_jwt(role='anon')}")
        assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"


@pytest.mark.usefixtures("authorizer_env")
class TestRefusalsAreRecorded:
    """PCI DSS 10.2.1.4: invalid access attempts go into the chain, with who tried and why."""

    def test_an_invalid_token_is_recorded_as_an_anonymous_attempt(self, db: psycopg.Connection[Any]) -> None:
        _refused(f"Bearer {_jwt(aud='other')}")
        assert access_records(db) == [
            {
                "action": "audit_access_refused",
                "principal": "anonymous",
                "route": "GET /events",
                "reason": "token audience is not 'authenticated'",
                "status": "failure",
            }
        ]
        ip = db.execute("select host(ip_address) from audit.audit_events").fetchone()
        assert ip == ("198.51.100.7",)

    def test_a_route_outside_the_role_is_recorded_and_the_policy_still_lists_only_the_roles_routes(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        answer = _authorize(f"Bearer {_issue(transport)}", method="GET")
        assert answer["policyDocument"]["Statement"][0]["Resource"] == [f"{API}/POST/events"]
        assert [(r["principal"], r["reason"]) for r in access_records(db)] == [
            ("writer:checkout-service", "role 'writer' may not call GET /events")
        ]

    def test_an_allowed_call_records_nothing_here(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """The function behind the route records reads; the authorizer records only refusals."""
        answer = _authorize(f"Bearer {_issue(transport)}", method="POST")
        assert answer["usageIdentifierKey"].startswith("writer-") and answer["context"]["role"] == "writer"
        _authorize(f"Bearer {_jwt(app_metadata={'audit_role': 'auditor'})}", method="GET")
        assert access_records(db) == []

    def test_a_refusal_that_cannot_be_recorded_is_still_a_refusal(self, db: psycopg.Connection[Any]) -> None:
        db.execute("revoke execute on function audit.ingest_events(json) from service_role")
        _refused(f"Bearer {_jwt(aud='other')}")
        assert access_records(db) == []
