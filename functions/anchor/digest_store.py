"""The digest bucket: digests under Object Lock COMPLIANCE, their signature in object metadata.

Writes are conditional (``If-None-Match: *``): S3 refuses a second object under a digest's key, so two
runs that raced for the same ``digest_seq`` cannot leave two different signed digests N in the bucket;
the loser reads the winner's digest instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from audit_common.aws_config import aws_config
from audit_common.integrity.digest import DIGEST_CONTENT_TYPE, SIGNATURE_METADATA_KEY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_ALREADY_THERE = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True)
class StoredDigest:
    """A digest object as found in the bucket."""

    key: str
    body: bytes
    signature: str


class DigestStore:
    """Reads and writes one chain's objects in the digest bucket."""

    def __init__(self, bucket: str, lock_days: int, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.lock_days = lock_days
        self._client_override = client

    @cached_property
    def _s3(self) -> S3Client:
        if self._client_override is not None:
            return self._client_override
        import boto3

        return boto3.client("s3", config=aws_config())

    def get(self, key: str) -> StoredDigest | None:
        """The digest object at ``key`` with its metadata signature, or None when there is none."""
        from botocore.exceptions import ClientError

        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        body = response["Body"].read()
        return StoredDigest(key, body, response.get("Metadata", {}).get(SIGNATURE_METADATA_KEY, ""))

    def put_digest(self, key: str, body: bytes, signature: str, retain_until: datetime) -> bool:
        """Write a digest unless ``key`` exists; False when another object is already there."""
        return self._put_new(key, body, DIGEST_CONTENT_TYPE, retain_until, {SIGNATURE_METADATA_KEY: signature})

    def put_public_key(self, key: str, pem: str, retain_until: datetime) -> bool:
        """Write the PEM public key beside the digests unless it is already there."""
        return self._put_new(key, pem.encode("ascii"), "application/x-pem-file", retain_until, {})

    def _put_new(self, key: str, body: bytes, content_type: str, retain_until: datetime, meta: dict[str, str]) -> bool:
        from botocore.exceptions import ClientError

        try:
            # S3 requires an integrity checksum on uploads under Object Lock.
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
                ChecksumAlgorithm="SHA256",
                ServerSideEncryption="AES256",
                Metadata={**meta, "sha256": hashlib.sha256(body).hexdigest()},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _ALREADY_THERE:
                return False
            raise
        return True
