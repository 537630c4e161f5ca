"""Signed digests of the chain (docs/integrity.md, "Digests"): the format the anchor writes and a verifier reads.

Once an hour the anchor function writes one digest: a small JSON object naming the chain's size, its
RFC 6962 Merkle root and its chain hash at that size, linked to the previous digest by that digest's
S3 key and signature (the CloudTrail digest-file model). The S3 object body is exactly the RFC 8785
canonical bytes of the object (``digest_bytes``); those bytes are what KMS signs (MessageType RAW), and
the base64 signature travels in the object's metadata ``signature``, in the ``digests`` table, and in
the next digest's ``previous_digest_signature``.

This module knows nothing of S3, KMS or the database: it is the format, shared by the anchor (writer)
and the verifier (reader), and small enough to re-implement from docs/integrity.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audit_common.integrity.canonical import canonical_bytes
from audit_common.integrity.merkle import EMPTY_ROOT
from audit_common.integrity.seal import format_timestamp

__all__ = [
    "DIGEST_CONTENT_TYPE",
    "DIGEST_VERSION",
    "EMPTY_ROOT_HEX",
    "GENESIS_CHAIN_HASH_HEX",
    "SIGNATURE_METADATA_KEY",
    "SIGNING_ALGORITHMS",
    "Digest",
    "DigestFormatError",
    "SigningAlgorithm",
    "digest_bytes",
    "digest_key",
    "digest_prefix",
    "digest_timestamp",
    "key_file_id",
    "load_public_key",
    "parse_digest",
    "public_key_key",
    "public_key_pem",
    "verify_signature",
]

DIGEST_VERSION: Final = 1
DIGEST_CONTENT_TYPE: Final = "application/json"
SIGNATURE_METADATA_KEY: Final = "signature"
"""S3 user metadata key (``x-amz-meta-signature``) holding the base64 signature of the object body."""

EMPTY_ROOT_HEX: Final = EMPTY_ROOT.hex()
"""Root of the empty tree (SHA-256 of the empty string): the ``root_hash`` of a digest with tree_size 0."""
GENESIS_CHAIN_HASH_HEX: Final = "0" * 64
"""The ``chain_hash`` of a digest with tree_size 0 (the chain's genesis previous hash)."""

SigningAlgorithm = Literal[
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
]
"""KMS SigningAlgorithmSpec names this module can verify."""
SIGNING_ALGORITHMS: Final[tuple[str, ...]] = get_args(SigningAlgorithm)

_HEX64 = r"^[0-9a-f]{64}$"
# RFC 3339 UTC with exactly six fractional digits and Z, as every timestamp in this project.
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
# Safe in an S3 key and a file name: no slash, no dot-dot, no spaces.
_CHAIN_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_BASE64 = r"^[A-Za-z0-9+/]+={0,2}$"

HashHex = Annotated[str, Field(pattern=_HEX64, description="32 bytes, lowercase hex")]
Timestamp = Annotated[str, Field(pattern=_TIMESTAMP, description="RFC 3339 UTC, six fractional digits, Z")]
Base64Signature = Annotated[str, Field(pattern=_BASE64, max_length=2048)]


class DigestFormatError(ValueError):
    """Bytes that are not a well-formed digest object in canonical form."""


class Digest(BaseModel):
    """One signed digest: the state of the chain at one anchor run, linked to the previous digest.

    Field formats are checked here; whether a digest is *true* (its root, chain hash and links
    against the database and the previous digest) is the verifier's job.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = DIGEST_VERSION
    chain_id: Annotated[str, Field(pattern=_CHAIN_ID)]
    digest_seq: Annotated[int, Field(ge=1, description="1 for the first digest, +1 per digest, gap-free")]
    tree_size: Annotated[int, Field(ge=0, description="Events covered: seq 1..tree_size")]
    root_hash: HashHex
    chain_hash: HashHex
    previous_tree_size: Annotated[int, Field(ge=0)]
    period_start: Timestamp
    period_end: Timestamp
    oldest_event_time: Timestamp | None
    newest_event_time: Timestamp | None
    created_at: Timestamp
    previous_digest_key: Annotated[str, Field(min_length=1, max_length=1024)] | None
    previous_digest_signature: Base64Signature | None
    signing_key_id: Annotated[str, Field(min_length=1, max_length=2048)]
    signing_algorithm: SigningAlgorithm

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.tree_size < self.previous_tree_size:
            raise ValueError("tree_size must not be smaller than previous_tree_size")
        if (self.oldest_event_time is None) != (self.newest_event_time is None):
            raise ValueError("oldest_event_time and newest_event_time are both set or both null")
        if (self.oldest_event_time is None) != (self.tree_size == self.previous_tree_size):
            raise ValueError("event times are null exactly when the digest covers no new events")
        first = self.digest_seq == 1
        if first and (self.previous_digest_key is not None or self.previous_digest_signature is not None):
            raise ValueError("the first digest has no previous digest")
        if first and self.previous_tree_size != 0:
            raise ValueError("the first digest's previous_tree_size is 0")
        if not first and (self.previous_digest_key is None or self.previous_digest_signature is None):
            raise ValueError("every digest after the first names the previous digest's key and signature")
        if self.tree_size == 0 and (self.root_hash != EMPTY_ROOT_HEX or self.chain_hash != GENESIS_CHAIN_HASH_HEX):
            raise ValueError("an empty tree has the empty root and the genesis chain hash")
        return self


def digest_timestamp(value: datetime) -> str:
    """A timezone-aware datetime as digest timestamps are written (``2026-11-27T08:00:00.000000Z``)."""
    return format_timestamp(value)


def digest_bytes(digest: Digest) -> bytes:
    """The canonical (RFC 8785) bytes of a digest: the S3 object body and exactly what is signed."""
    return canonical_bytes(digest.model_dump(mode="json"))


def parse_digest(body: bytes, *, require_canonical: bool = True) -> Digest:
    """Parse an S3 object body into a Digest.

    With ``require_canonical`` (the default) the body must be byte-identical to ``digest_bytes`` of
    the parsed digest: the signature covers the bytes, so any other spelling is not one we wrote.
    Raises DigestFormatError naming what is wrong.
    """
    try:
        value: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DigestFormatError(f"digest is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DigestFormatError("digest is not a JSON object")
    try:
        digest = Digest.model_validate(value, strict=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'digest'}: {e['msg']}" for e in exc.errors())
        raise DigestFormatError(f"digest fields are invalid: {problems}") from None
    if require_canonical and digest_bytes(digest) != bytes(body):
        raise DigestFormatError("digest body is not in RFC 8785 canonical form")
    return digest


def digest_prefix(chain_id: str) -> str:
    """The S3 prefix under which a chain's digests and public keys live (``digests/<chain_id>/``)."""
    if not re.fullmatch(_CHAIN_ID, chain_id):
        raise ValueError(f"chain_id {chain_id!r} is not a valid chain id")
    return f"digests/{chain_id}/"


def digest_key(chain_id: str, digest_seq: int) -> str:
    """The S3 key of a digest: ``digests/<chain_id>/<digest_seq:010d>.json``.

    Zero-padded so that listing order is digest order. The key depends on the sequence number only
    (no date): a retried anchor run must find the object an interrupted run may have written for the
    same ``digest_seq``, whatever the time, or it could write a second, different digest N.
    """
    if digest_seq < 1:
        raise ValueError("digest_seq starts at 1")
    return f"{digest_prefix(chain_id)}{digest_seq:010d}.json"


def key_file_id(signing_key_id: str) -> str:
    """A file-name-safe id for a signing key: the key id of a KMS key ARN, else the id with unsafe characters
    replaced (``arn:aws:kms:eu-west-1:123:key/1234abcd-...`` -> ``1234abcd-...``)."""
    tail = signing_key_id.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", tail).strip(".")
    if not safe:
        raise ValueError(f"signing key id {signing_key_id!r} has no usable name")
    return safe


def public_key_key(chain_id: str, signing_key_id: str) -> str:
    """The S3 key of the PEM public key beside the digests: ``digests/<chain_id>/public-keys/<key id>.pem``."""
    return f"{digest_prefix(chain_id)}public-keys/{key_file_id(signing_key_id)}.pem"


def load_public_key(data: bytes | str) -> Any:
    """Load a public key from PEM text or DER SubjectPublicKeyInfo bytes (as KMS GetPublicKey returns)."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    raw = data.encode("ascii") if isinstance(data, str) else bytes(data)
    if raw.lstrip().startswith(b"-----BEGIN"):
        return load_pem_public_key(raw)
    return load_der_public_key(raw)


def public_key_pem(data: bytes | str) -> str:
    """The PEM (SubjectPublicKeyInfo) text of a public key given as DER or PEM."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = load_public_key(data)
    pem: bytes = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def verify_signature(message: bytes, signature_b64: str, public_key: bytes | str, algorithm: str) -> bool:
    """Check a KMS signature (MessageType RAW) over ``message`` with a DER or PEM public key.

    ``algorithm`` is the KMS SigningAlgorithmSpec name (``ECDSA_SHA_256``: DER-encoded ECDSA as KMS
    returns it; ``RSASSA_PKCS1_V1_5_SHA_*``; ``RSASSA_PSS_SHA_*`` with the salt as long as the hash, as KMS
    signs). Never raises on bad input (unknown algorithm, key of the wrong type, malformed base64 or
    key): returns False, because every one of those means the digest is not proven.
    """
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if algorithm not in SIGNING_ALGORITHMS or not isinstance(signature_b64, str):
        return False
    hash_algorithm: hashes.HashAlgorithm = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[
        algorithm[-3:]
    ]
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key = load_public_key(public_key)
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm):
        return False
    try:
        if algorithm.startswith("ECDSA_"):
            if not isinstance(key, ec.EllipticCurvePublicKey):
                return False
            key.verify(signature, message, ec.ECDSA(hash_algorithm))
        elif algorithm.startswith("RSASSA_PKCS1_V1_5_"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            key.verify(signature, message, padding.PKCS1v15(), hash_algorithm)
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            pss = padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
            key.verify(signature, message, pss, hash_algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True
