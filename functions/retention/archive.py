"""Archive objects in Object-Locked S3: gzipped JSON lines plus a manifest, verified after upload.

Nothing is redacted in the database until the archive of those events has been read back from S3
and its size and SHA-256 match what was written (the manifest records both, and the chain hashes at
each end, so an archive can be checked against the chain years later).

The private part of each archived event (the fields a redaction erases, and its seal salt) is sealed
under its user's archive key (AES-256-GCM, ``audit.subject_keys``), the rest stays in clear. Object Lock
keeps an archive for years and cannot delete one event from it, yet a GDPR erasure must make the
subject's data unreadable: erasure deletes the key (crypto-shredding). The kept fields and the payload
commitment in clear are enough to reproduce each event's checksum (seal version 2), so an archive stays
provable against the chain after its private parts are shredded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from audit_common.aws_config import aws_config
from audit_common.integrity.seal import PRIVATE_FIELDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FORMAT = (
    "audit-trail/archive-v2 (gzip, one event per line as GET /events/{event_id} returns it, its private fields"
    " and seal_salt sealed in private_sealed: base64 of nonce || AES-256-GCM under its user's archive key)"
)
ARCHIVE_KEY_BYTES = 32
_NONCE_BYTES = 12
_SEALED_MEMBERS = (*PRIVATE_FIELDS, "seal_salt")


class ArchiveVerificationError(RuntimeError):
    """The object read back from S3 is not the one written: nothing may be redacted."""


@dataclass(frozen=True)
class ArchivedBatch:
    """Where a batch went and how to check it."""

    object_key: str
    manifest_key: str
    sha256: str
    size_bytes: int
    seqs: list[int]


def _nonce(key: bytes, seq: int) -> bytes:
    # Deterministic, so that a retried run writes the very same object (its key is derived from its content):
    # one nonce per (key, event), and an event's private part never changes while it is archived.
    return hmac.new(key, b"archive nonce %d" % seq, hashlib.sha256).digest()[:_NONCE_BYTES]


def seal_private(row: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The archive line of a row: its private fields and salt replaced by ``private_sealed``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    line = {name: value for name, value in row.items() if name not in _SEALED_MEMBERS}
    plaintext = orjson.dumps({name: row.get(name) for name in _SEALED_MEMBERS}, option=orjson.OPT_SORT_KEYS)
    nonce = _nonce(key, int(row["seq"]))
    sealed = nonce + AESGCM(key).encrypt(nonce, plaintext, str(row["event_id"]).encode())
    line["private_sealed"] = base64.b64encode(sealed).decode("ascii")
    return line


def open_private(line: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The row an archive line was made from (raises ``cryptography``'s InvalidTag for a wrong key)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    sealed = base64.b64decode(line["private_sealed"])
    plaintext = AESGCM(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], str(line["event_id"]).encode())
    row = {name: value for name, value in line.items() if name != "private_sealed"}
    row.update(orjson.loads(plaintext))
    return row


def encode_lines(rows: list[dict[str, Any]]) -> bytes:
    """The archive payload: one JSON object per line, gzip-compressed (deterministic: no timestamp)."""
    lines = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    return gzip.compress(lines, compresslevel=6, mtime=0)


class Archiver:
    """Writes and verifies archive objects in one bucket."""

    def __init__(self, bucket: str, lock_days: int) -> None:
        self.bucket = bucket
        self.lock_days = lock_days

    @cached_property
    def _s3(self) -> S3Client:
        import boto3

        return boto3.client("s3", config=aws_config())

    def put_batch(self, run_id: str, as_of: datetime, rows: list[dict[str, Any]]) -> ArchivedBatch:
        """Upload one batch and its manifest under Object Lock COMPLIANCE, then verify the upload.

        The key is derived from the content (run, seq range, SHA-256 prefix): a retry after a crash
        between the upload and the database's record finds the object already there, verifies it and
        reuses it, so the same events are never archived twice.
        """
        body = encode_lines(rows)
        digest = hashlib.sha256(body).hexdigest()
        first, last = int(rows[0]["seq"]), int(rows[-1]["seq"])
        prefix = f"archive/{as_of:%Y/%m}/{run_id}/{first:012d}-{last:012d}-{digest[:16]}"
        object_key = f"{prefix}.jsonl.gz"
        manifest_key = f"{prefix}.manifest.json"
        seqs = [int(r["seq"]) for r in rows]
        if self._exists(object_key):
            self.verify(object_key, digest, len(body))
            return ArchivedBatch(object_key, manifest_key, digest, len(body), seqs)
        now = datetime.now(UTC)
        lock_until = now + timedelta(days=self.lock_days)
        self._put(object_key, body, "application/gzip", lock_until, digest)
        manifest = {
            "format": FORMAT,
            "run_id": run_id,
            "object_key": object_key,
            "sha256": digest,
            "size_bytes": len(body),
            "count": len(rows),
            "first_seq": first,
            "last_seq": last,
            "first_prev_hash": rows[0]["prev_hash"],
            "first_chain_hash": rows[0]["chain_hash"],
            "last_chain_hash": rows[-1]["chain_hash"],
            "created_at": now.isoformat(),
            "object_lock": {"mode": "COMPLIANCE", "retain_until": lock_until.isoformat()},
        }
        manifest_body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        self._put(
            manifest_key, manifest_body, "application/json", lock_until, hashlib.sha256(manifest_body).hexdigest()
        )
        self.verify(object_key, digest, len(body))
        return ArchivedBatch(object_key, manifest_key, digest, len(body), seqs)

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _put(self, key: str, body: bytes, content_type: str, lock_until: datetime, sha256_hex: str) -> None:
        # S3 requires an integrity checksum on uploads under Object Lock; SHA-256 is also what we record.
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ServerSideEncryption="aws:kms",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=lock_until,
            ChecksumAlgorithm="SHA256",
            Metadata={"sha256": sha256_hex},
        )

    def verify(self, key: str, sha256_hex: str, size: int) -> None:
        """Read the object back; raise ArchiveVerificationError unless size and SHA-256 match."""
        head = self._s3.head_object(Bucket=self.bucket, Key=key)
        if head["ContentLength"] != size:
            raise ArchiveVerificationError(f"{key}: {head['ContentLength']} bytes in S3, {size} written")
        if head.get("ObjectLockMode") != "COMPLIANCE":
            raise ArchiveVerificationError(f"{key}: not under Object Lock COMPLIANCE ({head.get('ObjectLockMode')})")
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if hashlib.sha256(body).hexdigest() != sha256_hex:
            raise ArchiveVerificationError(f"{key}: SHA-256 read back differs from what was written")
