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

from enum import StrEnum
from typing import Any, Final

import jwt
from pydantic import BaseModel, ConfigDict

from audit_common.errors import AuditError

SYMMETRIC_ALGORITHMS: Final = ("HS256",)
"""Supabase's legacy JWT secret signs with HS256 only."""
ASYMMETRIC_ALGORITHMS: Final = ("ES256", "RS256")
"""Supabase's asymmetric signing keys (published at /auth/v1/.well-known/jwks.json)."""
SUPABASE_AUDIENCE: Final = "authenticated"
CLOCK_LEEWAY_SECONDS: Final = 30


class Unauthorized(AuditError):
    """No credentials, or credentials that do not verify (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(AuditError):
    """Verified credentials that do not allow this request (403)."""

    status = 403
    code = "forbidden"


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

    @property
    def label(self) -> str:
        """How the principal is named in audit-of-audit events and alert changes (`auditor:<sub>`)."""
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
            email=email if isinstance(email, str) else None,
        )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()
