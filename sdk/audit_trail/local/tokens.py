"""Tokens the local stack accepts: Supabase-shaped access tokens (JWT) and registered writer tokens.

In production, Supabase Auth issues the access tokens of users, auditors and admins, and an
operator issues writer tokens to the apps that send events. Locally there is no Supabase Auth, so
`mint_jwt` signs the same claims with the stack's local JWT secret (the one the authorizer reads
from its `JwtSecretArn` secret), and `issue_writer_token` registers a writer token in the stack's
database exactly as an operator would (only its SHA-256 is stored).

    TOKEN=$(audit-trail token --role auditor)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/alerts
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt

from audit_common.auth import SUPABASE_AUDIENCE, AuditRole, mint_writer_token
from audit_common.db import PostgresTransport, Transport

JWT_ROLES: Final = (AuditRole.USER, AuditRole.AUDITOR, AuditRole.ADMIN)
"""Roles whose tokens are Supabase access tokens; a writer's token is an `atw_` token instead."""
ALL_ROLES: Final = (AuditRole.WRITER, *JWT_ROLES)
JWT_SECRET_PARAMETER: Final = "JwtSecretArn"  # noqa: S105 - a parameter name, not a secret
"""The template parameter whose local secret signs access tokens (`LocalStack.local_secrets[...]`)."""
DEFAULT_WRITER_NAME: Final = "local-writer"
DEFAULT_TTL_SECONDS: Final = 3600
# Supabase user ids are UUIDs (RLS compares auth.uid(), a uuid): derive stable ones from a name.
_LOCAL_SUBJECTS: Final = uuid.UUID("5a0e3d1c-7f6b-4b39-9d52-0c1f6f2b8a11")


class TokenError(ValueError):
    """A token cannot be made as asked (unknown role, no JWT secret, ...)."""


def parse_role(role: str | AuditRole) -> AuditRole:
    """The audit role named `role`, or TokenError listing the valid ones."""
    try:
        return AuditRole(str(role).lower())
    except ValueError:
        raise TokenError(f"unknown role {role!r}: use one of {', '.join(r.value for r in ALL_ROLES)}") from None


def default_subject(role: str | AuditRole) -> str:
    """The `sub` (a stable UUID per role) or writer name used when none is given."""
    parsed = parse_role(role)
    if parsed is AuditRole.WRITER:
        return DEFAULT_WRITER_NAME
    return str(uuid.uuid5(_LOCAL_SUBJECTS, f"local-{parsed.value}"))


def jwt_claims(
    role: str | AuditRole,
    subject: str,
    *,
    email: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    issuer: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The claims Supabase Auth puts in an access token for this principal.

    `app_metadata.audit_role` is what the API reads (only the service role can set app_metadata);
    a plain user has none. `now` lets a test mint a token that expired already (`now` in the past).
    """
    parsed = parse_role(role)
    if parsed not in JWT_ROLES:
        raise TokenError(f"role {parsed.value!r} does not use a JWT (writers get an atw_ token)")
    if not subject:
        raise TokenError("the token needs a subject (sub)")
    issued = int((now or datetime.now(UTC)).timestamp())
    app_metadata: dict[str, Any] = {"provider": "email", "providers": ["email"]}
    if parsed is not AuditRole.USER:
        app_metadata["audit_role"] = parsed.value
    claims: dict[str, Any] = {
        "aud": SUPABASE_AUDIENCE,
        "exp": issued + ttl_seconds,
        "iat": issued,
        "sub": subject,
        "email": email or "",
        "phone": "",
        "app_metadata": app_metadata,
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": issued}],
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
    }
    if issuer:
        claims["iss"] = issuer
    return claims


def mint_jwt(
    secret: str,
    role: str | AuditRole,
    subject: str,
    *,
    email: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    issuer: str | None = None,
    now: datetime | None = None,
) -> str:
    """An HS256 access token for `role` (user, auditor or admin), signed with the project's JWT secret."""
    if not secret:
        raise TokenError("no JWT secret to sign with")
    claims = jwt_claims(role, subject, email=email, ttl_seconds=ttl_seconds, issuer=issuer, now=now)
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})


def issue_writer_token(
    database: str | Transport,
    name: str = DEFAULT_WRITER_NAME,
    *,
    created_by: str = "audit-trail token",
    expires_at: datetime | None = None,
    database_role: str | None = "service_role",
) -> str:
    """Mint a writer token and register its hash through the SQL API; the token (shown once).

    `database` is a PostgreSQL URL (the call runs as `database_role`, the role the SQL API grants
    `issue_writer_token` to) or a transport the caller owns.
    """
    if expires_at is not None and expires_at.tzinfo is None:
        raise TokenError("expires_at must carry a time zone")
    minted = mint_writer_token()
    owned = isinstance(database, str)
    transport: Transport = PostgresTransport(database, role=database_role) if isinstance(database, str) else database
    try:
        transport.call(
            "issue_writer_token",
            {
                "p_token_id": minted.token_id,
                "p_name": name,
                "p_secret_sha256": minted.secret_sha256,
                "p_created_by": created_by,
                "p_expires_at": expires_at,
            },
        )
    finally:
        if owned:
            transport.close()
    return minted.token


def expires_at(ttl_seconds: int | None, now: datetime | None = None) -> datetime | None:
    """When a token made now with this lifetime expires (None: never)."""
    if ttl_seconds is None:
        return None
    return (now or datetime.now(UTC)) + timedelta(seconds=ttl_seconds)
