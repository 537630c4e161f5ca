"""Who is calling: Supabase-issued JWTs turned into an audit principal.

The API answers to four roles (ARCHITECTURE.md, HTTP API): `writer` (apps that send events),
`user` (a signed-in end user: their own events only), `auditor` (reads everything, manages alerts
and reports) and `admin` (also retention, legal holds and erasure). End users and staff arrive with
the JWT Supabase Auth issued them; the audit role is `app_metadata.audit_role`, which only the
project's service role can set (users can edit `user_metadata`, never `app_metadata`).

Verification uses PyJWT rather than hand-written JOSE code: it checks the signature, `exp`, `nbf`,
`iat`, `aud` and `iss`, and refuses any algorithm not named by the caller, which is what stops the
classic `alg: none` and HS256-with-a-public-key confusions.
"""

from __future__ import annotations

import hashlib
import secrets
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import jwt
from pydantic import BaseModel, ConfigDict

from audit_common.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from audit_common.db import Transport

__all__ = [
    "AuditRole",
    "Forbidden",
    "Principal",
    "SupabaseJwtVerifier",
    "Unauthorized",
    "authenticate",
    "bearer_token",
    "mint_writer_token",
    "parse_writer_token",
    "role_from_claims",
    "writer_principal",
    "writer_usage_key",
]

SYMMETRIC_ALGORITHMS: Final = ("HS256",)
"""Supabase's legacy JWT secret signs with HS256 only."""
ASYMMETRIC_ALGORITHMS: Final = ("ES256", "RS256")
"""Supabase's asymmetric signing keys (published at /auth/v1/.well-known/jwks.json)."""
SUPABASE_AUDIENCE: Final = "authenticated"
CLOCK_LEEWAY_SECONDS: Final = 30


class AuditRole(StrEnum):
    """What a principal may do; each role includes nothing of the others but what is listed."""

    WRITER = "writer"
    USER = "user"
    AUDITOR = "auditor"
    ADMIN = "admin"


STAFF_ROLES: Final = frozenset({AuditRole.AUDITOR, AuditRole.ADMIN})


class Principal(BaseModel):
    """The verified caller of one request."""

    model_config = ConfigDict(frozen=True)

    subject: str
    role: AuditRole
    email: str | None = None
    token_id: str | None = None

    @property
    def label(self) -> str:
        """How the principal is named in audit-of-audit events and alert changes (`auditor:<sub>`, `writer:<name>`)."""
        return f"{self.role.value}:{self.subject}"

    @property
    def is_staff(self) -> bool:
        """Auditors and admins read every user's events."""
        return self.role in STAFF_ROLES


def role_from_claims(claims: dict[str, Any]) -> AuditRole:
    """The audit role a verified Supabase JWT grants.

    Only `authenticated` tokens are accepted: `anon` is nobody, and `service_role` is the database
    key, which belongs to the functions and never travels to this API.
    """
    if claims.get("role") != "authenticated":
        raise Forbidden(f"token role {claims.get('role')!r} may not call this API (expected 'authenticated')")
    app_metadata = claims.get("app_metadata")
    wanted = app_metadata.get("audit_role") if isinstance(app_metadata, dict) else None
    if wanted in (AuditRole.AUDITOR.value, AuditRole.ADMIN.value, AuditRole.WRITER.value):
        return AuditRole(wanted)
    return AuditRole.USER


class SupabaseJwtVerifier:
    """Verifies Supabase Auth access tokens, with the project's JWT secret or its JWKS.

    Exactly one key source is used, and it fixes the algorithms: the shared secret admits HS256
    only; the JWKS admits ES256 and RS256 only. A token naming any other algorithm is refused
    before its signature is looked at.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str = SUPABASE_AUDIENCE,
        timeout_seconds: float = 3.0,
    ) -> None:
        if (secret is None) == (jwks_url is None):
            raise ValueError("give exactly one of secret (HS256) or jwks_url (ES256/RS256)")
        self._secret = secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=int(timeout_seconds)) if jwks_url else None
        self._issuer = issuer
        self._audience = audience

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of `token`, or Unauthorized naming what failed."""
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms: list[str] = list(ASYMMETRIC_ALGORITHMS)
            else:
                key, algorithms = self._secret, list(SYMMETRIC_ALGORITHMS)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=CLOCK_LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "aud", "role"] + (["iss"] if self._issuer else [])},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(f"token audience is not {self._audience!r}") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("token issuer is not this project's Supabase Auth") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise Unauthorized("token algorithm is not allowed") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("token signing key is unknown") from exc
        except jwt.InvalidTokenError as exc:
            # Signature failures and malformed tokens: say no more than that (no oracle).
            raise Unauthorized("token is not valid") from exc
        return claims

    def principal(self, token: str) -> Principal:
        """The principal a bearer token stands for."""
        claims = self.claims(token)
        email = claims.get("email")
        return Principal(
            subject=str(claims["sub"]),
            role=role_from_claims(claims),
            email=email if isinstance(email, str) and email else None,  # Supabase sends "" for phone sign-ins
        )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


WRITER_TOKEN_PREFIX: Final = "atw_"  # noqa: S105 - a prefix, not a secret
_WRITER_ID_LENGTH: Final = 12
_WRITER_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"


class WriterToken(BaseModel):
    """A freshly minted writer token: `token` is shown once; the database keeps only `secret_sha256`."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    secret_sha256: str
    token: str


def mint_writer_token() -> WriterToken:
    """A new random writer token (`atw_<12 id chars>_<43 secret chars>`, 256 bits of secret)."""
    token_id = "".join(secrets.choice(_WRITER_ID_ALPHABET) for _ in range(_WRITER_ID_LENGTH))
    secret = secrets.token_urlsafe(32)
    return WriterToken(
        token_id=token_id,
        secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
        token=f"{WRITER_TOKEN_PREFIX}{token_id}_{secret}",
    )


def is_writer_token(token: str) -> bool:
    """Writer tokens are told from JWTs by their prefix (a JWT starts with `eyJ`)."""
    return token.startswith(WRITER_TOKEN_PREFIX)


def parse_writer_token(token: str) -> tuple[str, str]:
    """`(token_id, SHA-256 of the secret)` of a writer token, or Unauthorized if it is malformed."""
    body = token[len(WRITER_TOKEN_PREFIX) :]
    token_id, separator, secret = body[:_WRITER_ID_LENGTH], body[_WRITER_ID_LENGTH : _WRITER_ID_LENGTH + 1], body[13:]
    if (
        not is_writer_token(token)
        or separator != "_"
        or len(secret) < 32
        or any(c not in _WRITER_ID_ALPHABET for c in token_id)
    ):
        raise Unauthorized("writer token is malformed")
    return token_id, hashlib.sha256(secret.encode()).hexdigest()


def writer_usage_key(token_id: str) -> str:
    """The API Gateway API key value that meters one writer in the writers' usage plan.

    The authorizer returns it as `usageIdentifierKey`; the operator registers a key with this value
    in the plan (docs/security.md). It is derived from the public token id, never from the secret.
    """
    return f"writer-{token_id}-usage-key"


def writer_principal(token: str, transport: Transport) -> Principal:
    """The writer a token stands for, checked against the hashed tokens in the database."""
    token_id, secret_sha256 = parse_writer_token(token)
    writer = transport.call("authenticate_writer", {"p_token_id": token_id, "p_secret_sha256": secret_sha256})
    if not writer:
        # Unknown, wrong secret, revoked or expired: one answer, so ids cannot be probed.
        raise Unauthorized("writer token is not valid")
    return Principal(subject=str(writer["name"]), role=AuditRole.WRITER, token_id=token_id)


def authenticate(authorization: str | None, verifier: SupabaseJwtVerifier, transport: Transport) -> Principal:
    """The principal behind an `Authorization` header: a writer token or a Supabase access token."""
    token = bearer_token(authorization)
    if is_writer_token(token):
        return writer_principal(token, transport)
    return verifier.principal(token)
