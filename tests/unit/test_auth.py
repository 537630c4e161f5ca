"""Supabase JWT verification: what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audit_common.auth import (
    AuditRole,
    Forbidden,
    SupabaseJwtVerifier,
    Unauthorized,
    bearer_token,
    role_from_claims,
)

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ISSUER = "https://project-ref.supabase.co/auth/v1"
JWKS_URL = "https://project-ref.supabase.co/auth/v1/.well-known/jwks.json"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "6a1f3c2e-0000-4000-8000-000000000001",
        "aud": "authenticated",
        "iss": ISSUER,
        "role": "authenticated",
        "email": "alice@example.com",
        "iat": now,
        "exp": now + 3600,
        "app_metadata": {"provider": "email"},
        "user_metadata": {},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], key: str = SECRET) -> str:
    return jwt.encode(payload, key, algorithm="HS256")


@pytest.fixture
def verifier() -> SupabaseJwtVerifier:
    return SupabaseJwtVerifier(secret=SECRET, issuer=ISSUER)


def test_valid_token_gives_user_principal(verifier: SupabaseJwtVerifier) -> None:
    """Given a fresh Supabase access token, when verified, then it is a `user` named by its sub."""
    principal = verifier.principal(hs256(claims()))
    assert principal.role is AuditRole.USER
    assert principal.subject == "6a1f3c2e-0000-4000-8000-000000000001"
    assert principal.email == "alice@example.com"
    assert principal.label == "user:6a1f3c2e-0000-4000-8000-000000000001"
    assert not principal.is_staff


@pytest.mark.parametrize("role", ["auditor", "admin", "writer"])
def test_app_metadata_grants_the_audit_role(verifier: SupabaseJwtVerifier, role: str) -> None:
    """Given app_metadata.audit_role (settable only with the service key), then the principal has it."""
    principal = verifier.principal(hs256(claims(app_metadata={"audit_role": role})))
    assert principal.role == AuditRole(role)


def test_user_metadata_cannot_grant_a_role(verifier: SupabaseJwtVerifier) -> None:
    """Given a user who wrote audit_role into their own user_metadata, then they stay a user."""
    principal = verifier.principal(hs256(claims(user_metadata={"audit_role": "admin"})))
    assert principal.role is AuditRole.USER


def test_unknown_audit_role_is_a_plain_user(verifier: SupabaseJwtVerifier) -> None:
    principal = verifier.principal(hs256(claims(app_metadata={"audit_role": "root"})))
    assert principal.role is AuditRole.USER


@pytest.mark.parametrize(
    ("token_claims", "message"),
    [
        (claims(exp=int(time.time()) - 120), "token expired"),
        (claims(aud="somebody-else"), "audience"),
        (claims(iss="https://evil.example/auth/v1"), "issuer"),
        (claims(sub=None), "'sub'"),
        (claims(exp=None), "'exp'"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "no-sub", "no-exp"],
)
def test_bad_claims_are_refused(verifier: SupabaseJwtVerifier, token_claims: dict[str, Any], message: str) -> None:
    """Given a token whose claims are wrong, when verified, then 401 names what failed."""
    with pytest.raises(Unauthorized) as refused:
        verifier.principal(hs256(token_claims))
    assert message in refused.value.message
    assert refused.value.status == 401


def test_wrong_signature_is_refused(verifier: SupabaseJwtVerifier) -> None:
    with pytest.raises(Unauthorized, match="not valid"):
        verifier.principal(hs256(claims(), key="another-secret-of-at-least-32-characters!!"))


def test_tampered_payload_is_refused(verifier: SupabaseJwtVerifier) -> None:
    """Given a valid token whose payload was swapped for an admin one, then the signature fails."""
    header, _, signature = hs256(claims()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(app_metadata={"audit_role": "admin"})).encode()).rstrip(b"=")
    with pytest.raises(Unauthorized):
        verifier.principal(f"{header}.{forged.decode()}.{signature}")


def test_alg_none_is_refused(verifier: SupabaseJwtVerifier) -> None:
    """Given an unsigned token (`alg: none`), then it is refused before anything else."""
    unsigned = jwt.encode(claims(app_metadata={"audit_role": "admin"}), "", algorithm="none")
    with pytest.raises(Unauthorized):
        verifier.principal(unsigned)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "...."])
def test_malformed_tokens_are_refused(verifier: SupabaseJwtVerifier, garbage: str) -> None:
    with pytest.raises(Unauthorized):
        verifier.principal(garbage)


@pytest.mark.parametrize("role", ["anon", "service_role", None])
def test_only_authenticated_tokens_may_call(verifier: SupabaseJwtVerifier, role: str | None) -> None:
    """Given the anon key or the service key as a bearer token, then 403 (401 when no role claim)."""
    expected: type[Exception] = Unauthorized if role is None else Forbidden
    with pytest.raises(expected):
        verifier.principal(hs256(claims(role=role)))


def test_role_from_claims_ignores_non_object_app_metadata() -> None:
    assert role_from_claims({"role": "authenticated", "app_metadata": "admin"}) is AuditRole.USER


class TestJwks:
    """Supabase's asymmetric keys: ES256 from the project's JWKS, and no other algorithm."""

    @pytest.fixture
    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    @pytest.fixture
    def jwks_verifier(
        self, signing_key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
    ) -> SupabaseJwtVerifier:
        public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing_key.public_key()))
        public_jwk.update({"kid": "key-1", "alg": "ES256", "use": "sig"})
        # The JWKS download is PyJWT's own (urllib); serve the document without the network.
        monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda _self: {"keys": [public_jwk]})
        return SupabaseJwtVerifier(jwks_url=JWKS_URL, issuer=ISSUER)

    def test_es256_token_verifies(
        self, jwks_verifier: SupabaseJwtVerifier, signing_key: ec.EllipticCurvePrivateKey
    ) -> None:
        token = jwt.encode(claims(), signing_key, algorithm="ES256", headers={"kid": "key-1"})
        assert jwks_verifier.principal(token).role is AuditRole.USER

    def test_hs256_signed_with_the_public_key_is_refused(
        self, jwks_verifier: SupabaseJwtVerifier, signing_key: ec.EllipticCurvePrivateKey
    ) -> None:
        """Given the algorithm-confusion attack (HMAC keyed with the public key), then it is refused."""
        pem = signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"key-1"}').rstrip(b"=")
        payload = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
        signing_input = header + b"." + payload
        signature = base64.urlsafe_b64encode(hmac.new(pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
        with pytest.raises(Unauthorized):
            jwks_verifier.principal((signing_input + b"." + signature).decode())

    def test_unknown_kid_is_refused(
        self, jwks_verifier: SupabaseJwtVerifier, signing_key: ec.EllipticCurvePrivateKey
    ) -> None:
        token = jwt.encode(claims(), signing_key, algorithm="ES256", headers={"kid": "rotated-away"})
        with pytest.raises(Unauthorized, match="signing key is unknown"):
            jwks_verifier.principal(token)


def test_verifier_needs_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SupabaseJwtVerifier()
    with pytest.raises(ValueError, match="exactly one"):
        SupabaseJwtVerifier(secret=SECRET, jwks_url=JWKS_URL)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer  abc ", "abc")],
)
def test_bearer_token_reads_the_header(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer ", "abc.def.ghi"])
def test_bearer_token_refuses_other_headers(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        bearer_token(header)
