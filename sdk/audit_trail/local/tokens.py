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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import jwt

from audit_common.auth import SUPABASE_AUDIENCE, AuditRole, mint_writer_token

if TYPE_CHECKING:
    from audit_common.db import Transport

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


class NoJwtSecret(TokenError):
    """The stack's template has no JWT secret, so it checks no access tokens (calls need none)."""


@dataclass(frozen=True)
class IssuedToken:
    """A token and what it stands for (what `audit-trail token --json` prints)."""

    token: str
    role: AuditRole
    subject: str
    expires_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """`{"token", "role", "sub", "expires_at"}` with an ISO 8601 UTC expiry (None: never)."""
        expiry = self.expires_at.isoformat().replace("+00:00", "Z") if self.expires_at else None
        return {"token": self.token, "role": self.role.value, "sub": self.subject, "expires_at": expiry}


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
    # Imported here: audit_common.db brings the functions' observability stack, which minting a JWT never needs.
    from audit_common.db import PostgresTransport

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


def token_for_state(
    state: Mapping[str, Any],
    role: str | AuditRole,
    subject: str | None = None,
    *,
    email: str | None = None,
    ttl_seconds: int | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """A token for the local stack a state file describes (`database_url`, `secrets`, `jwt_issuer`).

    Writers: registered in the stack's database under the name `subject`, expiring only when
    `ttl_seconds` is given. Others: signed with the stack's JWT secret (`ttl_seconds` default one
    hour); NoJwtSecret when the stack has none. `now` in the past mints an already expired token.
    """
    parsed = parse_role(role)
    if ttl_seconds is not None and ttl_seconds <= 0:
        raise TokenError("the lifetime must be a positive number of seconds (mint an expired token with `now`)")
    subject = subject or default_subject(parsed)
    # Whole seconds: a JWT's exp is an integer, and the reported expiry must be the same instant.
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    if parsed is AuditRole.WRITER:
        expiry = expires_at(ttl_seconds, now)
        token = issue_writer_token(
            str(state["database_url"]), subject, created_by="audit-trail token (local)", expires_at=expiry
        )
        return IssuedToken(token, parsed, subject, expiry)
    secret = (state.get("secrets") or {}).get(JWT_SECRET_PARAMETER)
    if not secret:
        raise NoJwtSecret(
            f"the stack has no JWT secret (its template has no {JWT_SECRET_PARAMETER} parameter), "
            "so it checks no access tokens: call the API without one"
        )
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    issuer = state.get("jwt_issuer")
    token = mint_jwt(secret, parsed, subject, email=email, ttl_seconds=ttl, issuer=issuer or None, now=now)
    return IssuedToken(token, parsed, subject, now + timedelta(seconds=ttl))


def bearer(token: str | None) -> dict[str, str]:
    """The `Authorization` header for `token` (none for None: a stack that checks no tokens)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
