"""Signing digests with a KMS asymmetric key (SIGN_VERIFY): the private key never leaves KMS."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from audit_common.aws_config import aws_config
from audit_common.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

# Preferred order when a key offers several: ECC_NIST_P256 keys offer only ECDSA_SHA_256;
# RSA keys offer PKCS#1 v1.5 and PSS, of which v1.5 is what openssl's default `dgst -verify` checks.
_PREFERRED = ("ECDSA_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256", "ECDSA_SHA_384", "RSASSA_PSS_SHA_256")


@dataclass(frozen=True)
class SigningKey:
    """What a digest names about its key, and the public half for verifying."""

    key_id: str
    algorithm: str
    public_key_der: bytes


class KmsSigner:
    """Signs digest bytes (MessageType RAW) with one KMS key; looks up public keys of any key."""

    def __init__(self, key_id: str, client: KMSClient | None = None) -> None:
        self._configured_key_id = key_id
        self._client_override = client
        self._public_keys: dict[str, tuple[str, bytes, list[str]]] = {}

    @cached_property
    def _kms(self) -> KMSClient:
        if self._client_override is not None:
            return self._client_override
        import boto3

        return boto3.client("kms", config=aws_config())

    def _public_key(self, key_id: str) -> tuple[str, bytes, list[str]]:
        if key_id not in self._public_keys:
            response = self._kms.get_public_key(KeyId=key_id)
            if response.get("KeyUsage") != "SIGN_VERIFY":
                raise ConfigurationError(f"KMS key {key_id} is not a SIGN_VERIFY key")
            # KMS answers with the key ARN; keep a configured ARN as given (an alias would not be stable).
            arn = key_id if key_id.startswith("arn:") and ":key/" in key_id else response["KeyId"]
            if not arn.startswith("arn:"):
                # KMS answers with the ARN; moto (the local stack) with the bare id. Digests name the full ARN
                # (docs/integrity.md, 8.1): a bare id says nothing of the account and region it lives in.
                arn = self._kms.describe_key(KeyId=arn)["KeyMetadata"]["Arn"]
            self._public_keys[key_id] = (arn, response["PublicKey"], list(response.get("SigningAlgorithms", [])))
        return self._public_keys[key_id]

    @cached_property
    def key(self) -> SigningKey:
        """The configured key: its ARN, the algorithm digests are signed with, the public key (DER)."""
        arn, der, algorithms = self._public_key(self._configured_key_id)
        algorithm = next((name for name in _PREFERRED if name in algorithms), None)
        if algorithm is None:
            raise ConfigurationError(f"KMS key {arn} offers none of {', '.join(_PREFERRED)}")
        return SigningKey(arn, algorithm, der)

    def public_key_der(self, key_id: str) -> bytes:
        """The public key (DER SubjectPublicKeyInfo) of a key named in a digest: for adopting one."""
        if key_id == self.key.key_id:
            return self.key.public_key_der
        return self._public_key(key_id)[1]

    def sign(self, message: bytes) -> str:
        """The base64 signature of ``message`` by the configured key."""
        key = self.key
        response = self._kms.sign(
            KeyId=key.key_id,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=key.algorithm,  # type: ignore[arg-type]
        )
        return base64.b64encode(response["Signature"]).decode("ascii")
