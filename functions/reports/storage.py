"""Report files in S3: written once with server-side encryption, hashed while written, read by presigned URL.

Small files go up in one PUT; the CSV is streamed into a multipart upload part by part, so the
function holds one part (8 MiB) whatever the number of events. The SHA-256 is computed over the
bytes as they are sent, and recorded in the reports table.
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from audit_common.aws_config import aws_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART_BYTES: Final = 8 * 1024 * 1024
"""Multipart part size: S3's minimum is 5 MiB (all but the last part)."""
MAX_PENDING_PARTS: Final = 2
"""Parts queued for upload at most (beyond the one being filled)."""

CONTENT_TYPES: Final = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def report_key(standard: str, period_start: datetime, report_id: str, extension: str) -> str:
    """`reports/<standard>/<yyyy>/<mm>/<report_id>.<ext>`, the month being the period's start."""
    return f"reports/{standard}/{period_start:%Y}/{period_start:%m}/{report_id}.{extension}"


@dataclass(frozen=True)
class StoredObject:
    """One file of a report, as recorded in the reports table."""

    key: str
    sha256: str
    size_bytes: int
    content_type: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON recorded per format."""
        return {
            "key": self.key,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "content_type": self.content_type,
        }


class ReportStore:
    """Writes report files to one bucket and signs GET URLs for them."""

    def __init__(self, bucket: str, kms_key_id: str | None = None) -> None:
        self.bucket = bucket
        self.kms_key_id = kms_key_id

    @cached_property
    def _s3(self) -> S3Client:
        import boto3

        # SigV4 explicitly: S3 refuses other signatures for SSE-KMS objects.
        return boto3.client("s3", config=aws_config(signature_version="s3v4"))

    def _encryption(self) -> dict[str, str]:
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def put(self, key: str, body: bytes, content_type: str) -> StoredObject:
        """Write a small file in one request."""
        digest = hashlib.sha256(body).hexdigest()
        self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumSHA256=_b64(bytes.fromhex(digest)),
            **self._encryption(),  # type: ignore[arg-type]
        )
        return StoredObject(key, digest, len(body), content_type)

    def stream(self, key: str, content_type: str) -> StreamingUpload:
        """A writer that uploads as it goes (use as a context manager; an error aborts the upload)."""
        return StreamingUpload(self, key, content_type)

    def presigned_url(self, key: str, expires_in: int, *, filename: str | None = None) -> str:
        """A GET URL for the object, valid `expires_in` seconds."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'inline; filename="{filename}"'
        return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    def read(self, key: str) -> bytes:
        """The object's bytes (tests and verification)."""
        return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode()


class StreamingUpload:
    """Buffers up to one part, then uploads it; one PUT when the whole file fits in a part."""

    def __init__(self, store: ReportStore, key: str, content_type: str) -> None:
        self._store = store
        self.key = key
        self.content_type = content_type
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._etags: dict[int, str] = {}
        self._next_part = 1
        # Parts go up on one background thread while the caller reads the next page from the database;
        # at most MAX_PENDING_PARTS wait, so memory stays bounded (a few parts) whatever the file size.
        self._uploader: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self.result: StoredObject | None = None

    def write(self, data: bytes) -> None:
        """Append bytes; a full part goes up at once."""
        self._hash.update(data)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) >= PART_BYTES:
            self._send_part(bytes(self._buffer[:PART_BYTES]))
            del self._buffer[:PART_BYTES]

    def _send_part(self, body: bytes) -> None:
        s3 = self._store._s3
        if self._upload_id is None:
            started = s3.create_multipart_upload(
                Bucket=self._store.bucket,
                Key=self.key,
                ContentType=self.content_type,
                **self._store._encryption(),  # type: ignore[arg-type]
            )
            self._upload_id = started["UploadId"]
            self._uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-upload")
        assert self._uploader is not None
        number = self._next_part
        self._next_part += 1
        self._pending.append(self._uploader.submit(self._upload_part, self._upload_id, number, body))
        while len(self._pending) > MAX_PENDING_PARTS:
            self._pending.popleft().result()

    def _upload_part(self, upload_id: str, number: int, body: bytes) -> None:
        answer = self._store._s3.upload_part(
            Bucket=self._store.bucket, Key=self.key, UploadId=upload_id, PartNumber=number, Body=body
        )
        self._etags[number] = answer["ETag"]

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> StoredObject:
        """Finish the upload and say what was stored."""
        if self._upload_id is None:
            self.result = self._store.put(self.key, bytes(self._buffer), self.content_type)
            self._buffer.clear()
            return self.result
        if self._buffer:
            self._send_part(bytes(self._buffer))
            self._buffer.clear()
        self._drain()
        self._shutdown()
        self._store._s3.complete_multipart_upload(
            Bucket=self._store.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": [{"ETag": self._etags[n], "PartNumber": n} for n in sorted(self._etags)]},
        )
        self.result = StoredObject(self.key, self._hash.hexdigest(), self._size, self.content_type)
        return self.result

    def _shutdown(self) -> None:
        if self._uploader is not None:
            self._uploader.shutdown(wait=True, cancel_futures=True)
            self._uploader = None

    def abort(self) -> None:
        """Drop what was uploaded so far (no half-written report stays behind)."""
        self._pending.clear()
        self._shutdown()
        if self._upload_id is not None:
            self._store._s3.abort_multipart_upload(Bucket=self._store.bucket, Key=self.key, UploadId=self._upload_id)
            self._upload_id = None

    def __enter__(self) -> StreamingUpload:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self.abort()
        elif self.result is None:
            self.close()
