"""An anchored audit trail for attack tests, and the tools of the attackers it must withstand.

The trail is real: events sealed and stored by ``audit_common.event_store.store_events``, redacted by the
database's own ``audit.redact_events``/``audit.erase_subject``, digests written by the anchor function
(``anchor.service.run_anchor``) to an Object-Locked moto bucket and signed by a moto KMS key. The attackers
are a database superuser (triggers off with ``session_replication_role = replica``, constraints dropped,
then anything) and whoever may write to the digest bucket. Verdicts are taken the three ways an auditor
takes them: ``verify_offline`` with the bucket, ``audit-trail verify --digest-bucket`` with the published key
fingerprint, and ``audit-trail verify --digests-dir`` over a ``--save-digests`` copy with ``--public-key``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3
import orjson
import psycopg
from psycopg.types.json import Jsonb

from anchor.digest_store import DigestStore
from anchor.service import AnchorResult, run_anchor
from anchor.signer import KmsSigner
from audit_common.db import PostgresTransport
from audit_common.integrity import SEALED_FIELDS, chain_hash
from audit_common.integrity.seal import event_checksum, seal_v2
from audit_trail.cli import main
from audit_trail.postgres import create_database, drop_database
from audit_trail.verify import Report, verify_offline
from audit_trail.verify_digests import S3DigestSource

CHAIN: Final = "default"
FINGERPRINTS_ENV: Final = "AUDIT_SIGNING_KEY_FINGERPRINTS"
"""Where the operator publishes the signing key's fingerprint (SHA-256 of its DER SubjectPublicKeyInfo)."""

ANY: Final = object()
"""An expectation that does not constrain the value (a failure that names a digest may also name a seq)."""


# ---------------------------------------------------------------------------------------------
# Keys and anchors
# ---------------------------------------------------------------------------------------------


def create_signing_key() -> str:
    """A KMS ECC P-256 signing key like the template's; returns its ARN."""
    created = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    return str(created["KeyMetadata"]["Arn"])


def public_key_der(key_arn: str) -> bytes:
    """The key's public half as KMS gives it (DER SubjectPublicKeyInfo): what an auditor fetches themself."""
    return bytes(boto3.client("kms").get_public_key(KeyId=key_arn)["PublicKey"])


def fingerprint(key_arn: str) -> str:
    """The fingerprint the operator publishes: SHA-256 hex of the DER public key."""
    return hashlib.sha256(public_key_der(key_arn)).hexdigest()


@contextlib.contextmanager
def published_fingerprint(key_arn: str) -> Iterator[str]:
    """The operator's published configuration: ``AUDIT_SIGNING_KEY_FINGERPRINTS`` names the signing key."""
    saved = os.environ.get(FINGERPRINTS_ENV)
    os.environ[FINGERPRINTS_ENV] = fingerprint(key_arn)
    try:
        yield os.environ[FINGERPRINTS_ENV]
    finally:
        if saved is None:
            os.environ.pop(FINGERPRINTS_ENV, None)
        else:
            os.environ[FINGERPRINTS_ENV] = saved


@dataclass
class Anchorer:
    """Runs the real anchor against one database, bucket and key (on the real clock: digests are fresh)."""

    transport: PostgresTransport
    key_arn: str
    bucket: str

    def anchor(self) -> AnchorResult:
        signer = KmsSigner(self.key_arn)
        return run_anchor(self.transport, signer, DigestStore(self.bucket, 30), chain_id=CHAIN)


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def database_copy(server_url: str, template: str) -> Iterator[str]:
    """A fresh copy of the database ``template`` (nobody may be connected to it); dropped afterwards."""
    name = f"audit_case_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(server_url, name)


def database_name(url: str) -> str:
    """The database a URL names."""
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(url)["dbname"])


# ---------------------------------------------------------------------------------------------
# The database superuser
# ---------------------------------------------------------------------------------------------

_INSERT_COLUMNS: Final = (
    "seq",
    *SEALED_FIELDS,
    "seal_version",
    "seal_salt",
    "payload_commitment",
    "checksum",
    "prev_hash",
    "chain_hash",
)


class Superuser:
    """What someone holding the database's superuser can do: triggers off, CHECK constraints dropped, anything.

    Every change goes through this one connection (autocommit): the verifier reads a committed state.
    """

    def __init__(self, url: str) -> None:
        self.conn: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)
        self.conn.execute("set session_replication_role = replica")
        # The table's CHECK constraints (full-length masks, the seal's shape) stop honest mistakes, not a
        # superuser: they go first, so that each case tampers with exactly what it names.
        names = self.conn.execute(
            "select conname from pg_constraint where conrelid = 'audit.audit_events'::regclass and contype = 'c'"
        ).fetchall()
        for (name,) in names:
            self.conn.execute(f'alter table audit.audit_events drop constraint "{name}"')

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Superuser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def sql(self, *statements: str) -> None:
        for statement in statements:
            self.conn.execute(statement)

    def scalar(self, query: str, params: Any = None) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None, query
        return row[0]

    def event(self, seq: int) -> dict[str, Any]:
        """The row as the SQL API shows it (audit.event_json): seal columns and hashes in hex."""
        event: dict[str, Any] = self.scalar(
            "select audit.event_json(e) from audit.audit_events e where seq = %s", [seq]
        )
        return event

    def chain_hash_at(self, seq: int) -> bytes:
        if seq == 0:
            return bytes(32)
        return bytes(self.scalar("select chain_hash from audit.audit_events where seq = %s", (seq,)))

    def max_seq(self) -> int:
        return int(self.scalar("select coalesce(max(seq), 0) from audit.audit_events"))

    def set_head(self, seq: int, head_hash: bytes | None = None) -> None:
        """Point audit.chain_head at ``seq`` (with the chain hash stored there unless one is given)."""
        value = self.chain_hash_at(seq) if head_hash is None else head_hash
        self.conn.execute("update audit.chain_head set seq = %s, chain_hash = %s", (seq, value))

    def reseal(self, first_seq: int = 1, *, move_head: bool = True) -> None:
        """A consistent rewrite: recompute every seal, checksum and chain hash from ``first_seq`` on.

        An unredacted seal-version-2 row's payload commitment is recomputed from its salt and private fields
        (the salt is stored, so the attacker can); a redacted row keeps its commitment (version 2) or its
        checksum (version 1, which covers the erased values) and is only relinked.
        """
        previous = self.chain_hash_at(first_seq - 1)
        events = self.conn.execute(
            "select audit.event_json(e) from audit.audit_events e where e.seq >= %s order by e.seq", (first_seq,)
        ).fetchall()
        for (event,) in events:
            commitment, checksum = seal_event(event)
            linked = chain_hash(previous, checksum)
            self.conn.execute(
                "update audit.audit_events set payload_commitment = coalesce(%s, payload_commitment),"
                " checksum = %s, prev_hash = %s, chain_hash = %s where seq = %s",
                (commitment, checksum, previous, linked, event["seq"]),
            )
            previous = linked
        if move_head:
            self.set_head(self.max_seq())

    def insert_sealed(self, seq: int, event: Mapping[str, Any], *, prev_hash: bytes | None = None) -> bytes:
        """Insert a forged event at ``seq``, sealed with version 2 (fresh salt) and linked to ``prev_hash``
        (default: the chain hash of ``seq - 1``); returns its chain hash."""
        salt = os.urandom(16)
        commitment, checksum = seal_v2(event, salt)
        previous = self.chain_hash_at(seq - 1) if prev_hash is None else prev_hash
        linked = chain_hash(previous, checksum)
        values: dict[str, Any] = {name: event.get(name) for name in _INSERT_COLUMNS}
        values.update(
            seq=seq,
            details=Jsonb(event.get("details") or {}),
            metadata=Jsonb(event.get("metadata") or {}),
            compliance_tags=list(event.get("compliance_tags") or []),
            seal_version=2,
            seal_salt=salt,
            payload_commitment=commitment,
            checksum=checksum,
            prev_hash=previous,
            chain_hash=linked,
        )
        columns = ", ".join(f'"{name}"' for name in _INSERT_COLUMNS)
        placeholders = ", ".join("%s::inet" if name == "ip_address" else "%s" for name in _INSERT_COLUMNS)
        self.conn.execute(
            f"insert into audit.audit_events ({columns}) values ({placeholders})",
            [values[name] for name in _INSERT_COLUMNS],
        )
        return linked


def seal_event(event: Mapping[str, Any]) -> tuple[bytes | None, bytes]:
    """(new payload commitment or None, checksum) of a stored row, as a forger recomputes them."""
    version = event.get("seal_version") or 1
    if version == 2 and event.get("redacted_at") is None:
        return seal_v2(event, bytes.fromhex(event["seal_salt"]))
    if version == 1 and event.get("redacted_at") is not None:
        return None, bytes.fromhex(event["checksum"])
    return None, event_checksum(event)


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A verdict: valid (``kind`` None), or the failure kind with the seq and digest it names."""

    kind: str | None
    seq: object = None
    digest_seq: object = None

    def matches(self, kind: str | None, seq: int | None, digest_seq: int | None) -> bool:
        return (
            kind == self.kind
            and (self.seq is ANY or seq == self.seq)
            and (self.digest_seq is ANY or digest_seq == self.digest_seq)
        )

    @property
    def where(self) -> str:
        """How the CLI's FAILED line names the place: ``seq N`` or ``digest N``."""
        if self.seq is not None and self.seq is not ANY and self.digest_seq in (None, ANY):
            return f"seq {self.seq}"
        return f"digest {self.digest_seq}"


VALID: Final = Expected(None)


def library_verify(db_url: str, bucket: str) -> Report:
    """The default library call: every row of the database, the digests from the bucket."""
    return verify_offline(db_url, S3DigestSource(bucket, client=boto3.client("s3")))


def run_cli(*args: str) -> tuple[int, str, str]:
    """``audit-trail`` in this process: exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def save_digests(db_url: str, bucket: str, directory: Path) -> None:
    """What an auditor keeps: ``audit-trail verify --save-digests`` (which verifies too, and must pass)."""
    code, out, err = run_cli(
        "verify", "--database-url", db_url, "--digest-bucket", bucket, "--save-digests", str(directory)
    )
    assert code == 0, out + err


@dataclass(frozen=True)
class Evidence:
    """Where an auditor takes the digests from and which key they trust."""

    bucket: str
    key_arn: str
    saved_digests: Path
    public_key_file: Path


def assert_verdicts(db_url: str, evidence: Evidence, expected: Expected) -> None:
    """The same verdict from the library, the CLI on the bucket (published fingerprint) and the CLI on the copy."""
    report = library_verify(db_url, evidence.bucket)
    failure = report.failure
    got = (None, None, None) if failure is None else (failure.kind, failure.seq, failure.digest_seq)
    assert expected.matches(*got), f"library: expected {expected}, got {got}: {report.lines()}"
    assert report.valid is (expected.kind is None)

    code, out, err = run_cli("verify", "--database-url", db_url, "--digest-bucket", evidence.bucket)
    failed = [line for line in out.splitlines() if line.startswith("FAILED at ")]
    if expected.kind is None:
        assert (code, failed) == (0, []), out + err
    else:
        assert code == 1, out + err
        assert len(failed) == 1, out + err
        assert f": {expected.kind}:" in failed[0] and expected.where in failed[0], (
            f"CLI --digest-bucket: expected {expected.kind} at {expected.where}: {failed[0]}"
        )

    code, out, err = run_cli(
        "verify",
        "--database-url",
        db_url,
        "--digests-dir",
        str(evidence.saved_digests),
        "--public-key",
        str(evidence.public_key_file),
        "--json",
    )
    assert code == (0 if expected.kind is None else 1), out + err
    result = orjson.loads(out)
    got = (result["reason"], result["first_invalid_seq"], result["digest_seq"])
    assert expected.matches(*got), f"CLI --digests-dir: expected {expected}, got {got}: {result['message']}"
