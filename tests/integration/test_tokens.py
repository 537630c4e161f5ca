"""`audit-trail token` and `audit_trail.local.tokens`: tokens the local stack accepts, checked as the API checks them.

The access tokens are verified with the authorizer's own verifier (`SupabaseJwtVerifier`), the
writer tokens with `writer_principal` against the real database, so a token this module mints is a
token the deployed checks accept. The CLI finds the stack through its state file; the tests write
that file for a stack "running" in this process (the pid check only needs a live process).
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import orjson
import psycopg
import pytest

from audit_common.auth import AuditRole, SupabaseJwtVerifier, Unauthorized, writer_principal
from audit_common.db import PostgresTransport
from audit_trail.cli import main
from audit_trail.local.state import write_state
from audit_trail.local.tokens import (
    TokenError,
    default_subject,
    issue_writer_token,
    jwt_claims,
    mint_jwt,
)

pytestmark = pytest.mark.integration

JWT_SECRET = "local-jwt-secret-for-the-token-tests-0123456789"


@pytest.fixture
def stack_dir(tmp_path: Path, db_url: str) -> Path:
    """A data directory whose state file describes a running stack with a JWT secret."""
    data_dir = tmp_path / "stack"
    data_dir.mkdir()
    write_state(
        data_dir,
        {
            "pid": os.getpid(),
            "api_url": "http://127.0.0.1:1",
            "database_url": db_url,
            "secrets": {"JwtSecretArn": JWT_SECRET, "WebhookSecretArn": "w" * 32},
            "jwt_issuer": None,
        },
    )
    return data_dir


def token_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `audit-trail token ...`; (exit status, stdout, stderr)."""
    status = main(["token", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("role", "expected"),
    [("user", AuditRole.USER), ("auditor", AuditRole.AUDITOR), ("admin", AuditRole.ADMIN)],
)
def test_cli_access_token_verifies_and_maps_to_the_role(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], role: str, expected: AuditRole
) -> None:
    """Given a running stack, When a token is asked for a staff or user role, Then stdout is only the token and the
    authorizer's verifier accepts it as that role."""
    status, out, err = token_cli(capsys, "--role", role, "--data-dir", str(stack_dir), "--email", "a@example.com")

    assert status == 0, err
    token = out.strip()
    assert out == token + "\n"
    principal = SupabaseJwtVerifier(secret=JWT_SECRET).principal(token)
    assert (principal.role, principal.subject, principal.email) == (expected, default_subject(role), "a@example.com")


def test_cli_json_names_the_subject_and_expiry(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given --sub, --ttl and --json, Then the JSON carries the token, role, sub and an expiry matching exp."""
    status, out, err = token_cli(
        capsys, "--role", "auditor", "--sub", "auditor-7", "--ttl", "600", "--json", "--data-dir", str(stack_dir)
    )

    assert status == 0, err
    answer = orjson.loads(out)
    assert (answer["role"], answer["sub"]) == ("auditor", "auditor-7")
    claims = SupabaseJwtVerifier(secret=JWT_SECRET).claims(answer["token"])
    assert claims["sub"] == "auditor-7"
    assert claims["exp"] - claims["iat"] == 600
    assert datetime.fromisoformat(answer["expires_at"]) == datetime.fromtimestamp(claims["exp"], UTC)


def test_plain_user_token_has_no_audit_role_and_supabase_claims(stack_dir: Path) -> None:
    """A user's token is shaped like Supabase's: authenticated role and audience, no app_metadata.audit_role."""
    claims = jwt_claims("user", "u-1", email="u@example.com")

    assert (claims["role"], claims["aud"], claims["sub"]) == ("authenticated", "authenticated", "u-1")
    assert "audit_role" not in claims["app_metadata"]
    assert {"exp", "iat", "email"} <= claims.keys()
    assert jwt_claims("admin", "a-1")["app_metadata"]["audit_role"] == "admin"


def test_issuer_is_signed_when_the_stack_requires_one() -> None:
    """Given an issuer, Then a verifier that requires it accepts the token and one expecting another refuses it."""
    token = mint_jwt(JWT_SECRET, "auditor", "s-1", issuer="https://local.supabase.co/auth/v1")

    assert SupabaseJwtVerifier(secret=JWT_SECRET, issuer="https://local.supabase.co/auth/v1").principal(token)
    with pytest.raises(Unauthorized):
        SupabaseJwtVerifier(secret=JWT_SECRET, issuer="https://other.supabase.co/auth/v1").principal(token)


def test_token_minted_in_the_past_is_expired() -> None:
    """Given a token minted two hours ago with a one-hour lifetime, Then the verifier refuses it as expired."""
    token = mint_jwt(JWT_SECRET, "auditor", "s-1", now=datetime.now(UTC) - timedelta(hours=2))

    with pytest.raises(Unauthorized, match="expired"):
        SupabaseJwtVerifier(secret=JWT_SECRET).principal(token)


def test_token_signed_with_another_secret_is_refused() -> None:
    """A token is only as good as the stack's secret: another secret's signature does not verify."""
    token = mint_jwt("another-secret-entirely-0123456789abcdef", "admin", "s-1")

    with pytest.raises(Unauthorized):
        SupabaseJwtVerifier(secret=JWT_SECRET).principal(token)


def test_cli_writer_token_authenticates_against_the_database(
    stack_dir: Path, db_url: str, db: psycopg.Connection[tuple[object, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given --role writer, Then the token authenticates through writer_principal as the named writer, and the
    database holds only its hash."""
    status, out, err = token_cli(capsys, "--role", "writer", "--sub", "billing-app", "--data-dir", str(stack_dir))

    assert status == 0, err
    token = out.strip()
    transport = PostgresTransport(db_url, role="service_role")
    try:
        principal = writer_principal(token, transport)
    finally:
        transport.close()
    assert (principal.role, principal.subject) == (AuditRole.WRITER, "billing-app")
    stored = db.execute("select name, secret_sha256, expires_at from audit.writer_tokens").fetchall()
    secret = token.split("_", 2)[2]
    assert stored == [("billing-app", hashlib.sha256(secret.encode()).digest(), None)]


def test_writer_token_with_ttl_expires(stack_dir: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Given --ttl for a writer, Then the JSON names the expiry the database stored."""
    status, out, _ = token_cli(capsys, "--role", "writer", "--ttl", "120", "--json", "--data-dir", str(stack_dir))

    assert status == 0
    answer = orjson.loads(out)
    assert (answer["role"], answer["sub"]) == ("writer", "local-writer")
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select expires_at from audit.writer_tokens").fetchone()
    assert row is not None
    assert row[0] == datetime.fromisoformat(answer["expires_at"])


def test_unregistered_writer_token_is_refused(db_url: str) -> None:
    """A well-formed writer token that was never issued does not authenticate (the test that can fail)."""
    issue_writer_token(db_url, "real-writer")
    forged = "atw_abcdefghijkl_" + "x" * 43
    transport = PostgresTransport(db_url, role="service_role")
    try:
        with pytest.raises(Unauthorized):
            writer_principal(forged, transport)
    finally:
        transport.close()


@pytest.mark.parametrize("role", ["root", "service_role", "anon", ""])
def test_cli_refuses_unknown_roles(stack_dir: Path, capsys: pytest.CaptureFixture[str], role: str) -> None:
    """Given a role that is not writer, user, auditor or admin, Then exit 2 naming the valid roles, no token."""
    status, out, err = token_cli(capsys, "--role", role, "--data-dir", str(stack_dir))

    assert (status, out) == (2, "")
    assert "writer, user, auditor, admin" in err


def test_mint_jwt_refuses_the_writer_role() -> None:
    """Writers never get a JWT (their token is an atw_ token the database can revoke)."""
    with pytest.raises(TokenError):
        mint_jwt(JWT_SECRET, "writer", "w")


def test_cli_without_a_running_stack_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given no state file, Then exit 2 and a message naming `audit-trail local`."""
    status, out, err = token_cli(capsys, "--role", "auditor", "--data-dir", str(tmp_path))

    assert (status, out) == (2, "")
    assert "no local stack is running" in err
    assert "audit-trail local" in err


def test_cli_with_a_stale_state_file_is_no_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a state file whose process is gone, Then it is treated as no stack (exit 2)."""
    write_state(tmp_path, {"pid": 2**22 + 12345, "database_url": "postgresql://nowhere/x", "secrets": {}})

    status, _, err = token_cli(capsys, "--role", "writer", "--data-dir", str(tmp_path))

    assert status == 2
    assert "no local stack is running" in err


def test_cli_stack_without_jwt_secret_refuses_access_tokens(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a stack whose template has no JwtSecretArn, Then an auditor token is refused (exit 2, says why) while a
    writer token still works (the database holds writer tokens either way)."""
    write_state(tmp_path, {"pid": os.getpid(), "database_url": db_url, "secrets": {"WebhookSecretArn": "w" * 32}})

    status, out, err = token_cli(capsys, "--role", "auditor", "--data-dir", str(tmp_path))
    assert (status, out) == (2, "")
    assert "no JWT secret" in err

    status, out, _ = token_cli(capsys, "--role", "writer", "--data-dir", str(tmp_path))
    assert status == 0
    assert out.startswith("atw_")


def test_cli_refuses_a_non_positive_ttl(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--ttl 0 would mint a token that is dead on arrival: refused."""
    status, out, err = token_cli(capsys, "--role", "auditor", "--ttl", "0", "--data-dir", str(stack_dir))

    assert (status, out) == (2, "")
    assert "--ttl" in err


def test_access_token_header_is_hs256() -> None:
    """The algorithm is the one the authorizer pins for the shared secret."""
    assert jwt.get_unverified_header(mint_jwt(JWT_SECRET, "user", "u"))["alg"] == "HS256"
