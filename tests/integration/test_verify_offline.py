"""`audit-trail verify` against real PostgreSQL and moto (S3 with Object Lock, KMS ECC P-256): the tamper matrix.

The digests are the anchor function's own (anchor.service.run_anchor), written to an Object-Locked bucket
and signed by a moto KMS key whose fingerprint is configured as the operator publishes it
(AUDIT_SIGNING_KEY_FINGERPRINTS). Every case tampers with one thing, the way someone with that access would
(a database superuser with the append-only triggers off, or someone who can write to the bucket), and the
verifier must fail with exactly that kind, at the right seq or digest. Changes to digest objects in the bucket
leave the locked first version in place and are `digest_overwritten`; what a changed digest looks like on its
own (altered, badly signed) is seen through a saved copy (--digests-dir). Event-level kinds are also covered,
through GET /integrity/verify, in test_tamper_detection.py; the digests as evidence in test_digest_evidence.py.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import psycopg
import pytest

from anchor.digest_store import DigestStore
from anchor.service import AnchorResult, run_anchor
from anchor.signer import KmsSigner
from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.integrity import chain_hash, event_checksum
from audit_common.integrity.digest import digest_bytes, digest_key, parse_digest
from audit_common.models import AuditEventIn
from audit_trail.cli import main
from audit_trail.verify import Report, verify_offline
from audit_trail.verify_digests import FINGERPRINTS_ENV, DirectoryDigestSource, KeyTrust, S3DigestSource, save_digests
from tests.support.aws import moto_account
from tests.support.events import make_event
from tests.support.trail import Superuser

BUCKET = "audit-digests-verify-test"
CHAIN = "default"
# Four digests: after 10, 25 and 40 events, and one more after a quiet hour (tree size 40 again).
BATCHES = (10, 15, 15, 0)
EVENTS = sum(BATCHES)


@dataclass
class Trail:
    """An anchored audit trail in the test database and moto, with the means to tamper with it."""

    db_url: str
    db: psycopg.Connection[Any]
    transport: PostgresTransport
    signer: KmsSigner
    store: DigestStore
    clock: list[datetime]
    key_arn: str
    fingerprint: str

    def anchor(self) -> AnchorResult:
        self.clock[0] += timedelta(hours=1)
        moment = self.clock[0]
        return run_anchor(self.transport, self.signer, self.store, chain_id=CHAIN, now=lambda: moment)

    def add_events(self, first: int, count: int) -> None:
        if count:
            events = [AuditEventIn.model_validate(make_event(n)) for n in range(first, first + count)]
            event_store.store_events(self.transport, events)

    @property
    def trust(self) -> KeyTrust:
        """The published fingerprint of the anchor's key, with KMS look-ups as the CLI does for the bucket."""
        return KeyTrust.create(fingerprints=[self.fingerprint])

    def verify(self, **options: Any) -> Report:
        return verify_offline(
            self.db_url, S3DigestSource(BUCKET, client=boto3.client("s3")), trust=self.trust, **options
        )

    def saved(self, directory: Path) -> Path:
        """A copy of the digests as --save-digests writes it (first versions, .sig files, the PEM): the chain dir."""
        source = S3DigestSource(BUCKET, client=boto3.client("s3"))
        save_digests(source, CHAIN, source.records(CHAIN), directory)
        return directory / "digests" / CHAIN

    def verify_copy(self, directory: Path) -> Report:
        return verify_offline(self.db_url, DirectoryDigestSource(directory), trust=self.trust)

    def as_superuser(self, *statements: str) -> None:
        """What an attacker with the database's superuser does: triggers off, then anything."""
        self.db.execute("set session_replication_role = replica")
        for statement in statements:
            self.db.execute(statement)

    def reseal(self, first_seq: int = 1) -> None:
        """Recompute every checksum and chain hash from ``first_seq`` on, and the chain head: a consistent rewrite."""
        with Superuser(self.db_url) as superuser:
            superuser.reseal(first_seq)

    # --- the bucket ---------------------------------------------------------------------------

    def digest_object(self, digest_seq: int) -> tuple[bytes, str]:
        response = boto3.client("s3").get_object(Bucket=BUCKET, Key=digest_key(CHAIN, digest_seq))
        return response["Body"].read(), response["Metadata"]["signature"]

    def overwrite_digest(self, digest_seq: int, body: bytes, signature: str) -> None:
        """A new object version over the locked one: the bucket's latest view changes, the original stays."""
        boto3.client("s3").put_object(
            Bucket=BUCKET, Key=digest_key(CHAIN, digest_seq), Body=body, Metadata={"signature": signature}
        )


def key_fingerprint(kms: Any, key_arn: str) -> str:
    """What the operator publishes: SHA-256 of the key's DER public key, as KMS gives it."""
    return hashlib.sha256(kms.get_public_key(KeyId=key_arn)["PublicKey"]).hexdigest()


@pytest.fixture
def trail(
    db_url: str, db: psycopg.Connection[Any], transport: PostgresTransport, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Trail]:
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        key_arn = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        published = key_fingerprint(boto3.client("kms"), key_arn)
        monkeypatch.setenv(FINGERPRINTS_ENV, published)
        # One anchor run per hour, the last one now: the digests are fresh.
        start = datetime.now(UTC) - timedelta(hours=len(BATCHES))
        signer, store = KmsSigner(key_arn), DigestStore(BUCKET, 30)
        trail = Trail(db_url, db, transport, signer, store, [start], key_arn, published)
        first = 0
        for count in BATCHES:
            trail.add_events(first, count)
            first += count
            trail.anchor()
        yield trail


def assert_fails(report: Report, kind: str, *, seq: int | None = None, digest_seq: int | None = None) -> None:
    assert report.failure is not None, report.lines()
    assert (report.failure.kind, report.failure.seq, report.failure.digest_seq) == (kind, seq, digest_seq), (
        report.failure
    )
    assert not report.valid


# --- the control --------------------------------------------------------------------------------


def test_an_untouched_trail_verifies(trail: Trail) -> None:
    """Given 40 events anchored by 4 signed digests, When verified, Then every event and digest is valid."""
    report = trail.verify()

    assert report.valid, report.lines()
    assert report.summary() == f"4/4 digests valid, {EVENTS}/{EVENTS} events valid, 0 redacted"
    assert (report.anchored_seq, report.newest_digest and report.newest_digest["digest_seq"]) == (EVENTS, 4)
    assert len(report.signing_keys) == 1


def test_recorded_redactions_stay_valid(trail: Trail) -> None:
    """Given two events redacted through the redaction function (which chains a record of it), When verified,
    Then valid and counted; the record, after the newest digest, is not covered by a digest yet."""
    event_ids = [make_event(n)["event_id"] for n in (3, 30)]
    trail.transport.call(
        "redact_events", {"p_event_ids": event_ids, "p_reason": "erasure", "p_actor": "dpo", "p_ref": "t-1"}
    )

    report = trail.verify()

    assert report.valid, report.lines()
    assert report.summary() == f"4/4 digests valid, {EVENTS + 1}/{EVENTS + 1} events valid, 2 redacted"
    assert report.unanchored == 1


@pytest.mark.parametrize("chunk_bits", [2, 3])
def test_workers_and_small_chunks_give_the_same_verdicts(trail: Trail, chunk_bits: int) -> None:
    """Given chunks of 4 or 8 events spread over two processes (digests at 10, 25 and 40 events: inside a chunk,
    and at the end of one), When verified, Then the roots match and a failure is found at the same seq."""
    assert trail.verify(workers=2, chunk_bits=chunk_bits).valid

    trail.as_superuser("update audit.audit_events set action = 'innocent' where seq = 17")

    assert_fails(trail.verify(workers=2, chunk_bits=chunk_bits), "modified", seq=17)


# --- the tamper matrix ----------------------------------------------------------------------------


def _insert_forged_event(trail: Trail) -> None:
    """Shift seqs 20.. up by one and put a forged, properly linked event at seq 20."""
    trail.as_superuser(
        "update audit.audit_events set seq = -seq where seq >= 20",
        "update audit.audit_events set seq = 1 - seq where seq < 0",
        """insert into audit.audit_events (seq, event_id, "timestamp", event_type, user_id, action, status,
                                           security_level, details, checksum, prev_hash, chain_hash)
           select 20, 'forged-1', "timestamp", 'permission_change', 'mallory', 'grant_role', 'success', 'high',
                  '{"role": "admin"}', checksum, prev_hash, chain_hash
             from audit.audit_events where seq = 21""",
    )
    (event,) = trail.db.execute("select audit.event_json(e) from audit.audit_events e where seq = 20").fetchone()  # type: ignore[misc]
    previous = bytes(trail.db.execute("select chain_hash from audit.audit_events where seq = 19").fetchone()[0])  # type: ignore[index]
    checksum = event_checksum(event)
    trail.db.execute(
        "update audit.audit_events set checksum = %s, prev_hash = %s, chain_hash = %s where seq = 20",
        (checksum, previous, chain_hash(previous, checksum)),
    )


def _truncate_consistently(trail: Trail) -> None:
    trail.as_superuser("delete from audit.audit_events where seq > 30")
    trail.reseal(30)


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        (lambda t: t.as_superuser("update audit.audit_events set action = 'innocent' where seq = 17"), "modified", 17),
        (
            lambda t: t.as_superuser("update audit.audit_events set details = details || '{\"x\": 1}' where seq = 33"),
            "modified",
            33,
        ),
        (
            # 2026 AD -> 2026 BC: to_char prints both as "2026-...", so only a verifier that checks the era sees it
            lambda t: t.as_superuser(
                'update audit.audit_events set "timestamp" = "timestamp" - interval \'4051 years\' where seq = 21'
            ),
            "modified",
            21,
        ),
        (lambda t: t.as_superuser("delete from audit.audit_events where seq = 12"), "missing", 12),
        (_insert_forged_event, "inserted", 20),
        (
            lambda t: t.as_superuser(
                "update audit.audit_events set seq = -20 where seq = 20",
                "update audit.audit_events set seq = 20 where seq = 21",
                "update audit.audit_events set seq = 21 where seq = -20",
            ),
            "reordered",
            20,
        ),
        (
            lambda t: t.as_superuser(
                "update audit.audit_events set user_email = null, ip_address = null, user_agent = null,"
                " session_id = null, details = '{}', metadata = '{}' where seq = 9"
            ),
            "redacted_without_record",
            9,
        ),
        (_truncate_consistently, "missing", 31),
    ],
    ids=[
        "modified",
        "modified-details",
        "modified-era",
        "missing",
        "inserted",
        "reordered",
        "redacted-without-record",
        "truncated",
    ],
)
def test_event_tampering_is_named_at_its_seq(
    trail: Trail, tamper: Callable[[Trail], None], kind: str, seq: int
) -> None:
    """Given one kind of tampering with the events, When verified, Then that kind at that seq, and exit 1."""
    tamper(trail)

    assert_fails(trail.verify(), kind, seq=seq)


@pytest.mark.parametrize("digest_seq", [2, 4])
def test_a_deleted_digest_is_overwritten_by_its_delete_marker(trail: Trail, digest_seq: int) -> None:
    """Given a digest deleted from the bucket (a delete marker: the locked version stays), Then digest_overwritten
    at that digest, naming the marker; digests before it are still proven against the events."""
    marker = boto3.client("s3").delete_object(Bucket=BUCKET, Key=digest_key(CHAIN, digest_seq))["VersionId"]

    report = trail.verify()

    assert_fails(report, "digest_overwritten", digest_seq=digest_seq)
    assert report.failure is not None and f"delete marker {marker}" in report.failure.message
    assert report.digests_valid == digest_seq - 1


@pytest.mark.parametrize("digest_seq", [2, 4])
def test_a_digest_missing_from_a_copy(trail: Trail, tmp_path: Path, digest_seq: int) -> None:
    """Given a saved copy without digest N, Then digest_missing N (for the newest: the database recorded it)."""
    chain_dir = trail.saved(tmp_path)
    (chain_dir / f"{digest_seq:010d}.json").unlink()

    assert_fails(trail.verify_copy(tmp_path), "digest_missing", digest_seq=digest_seq)


@pytest.mark.parametrize("digest_seq", [2, 4])
def test_an_altered_digest(trail: Trail, tmp_path: Path, digest_seq: int) -> None:
    """Given a digest rewritten with another root but its own signature: in the bucket a new version over the
    locked one (digest_overwritten), in a copy digest_altered (also the newest)."""
    body, signature = trail.digest_object(digest_seq)
    forged = digest_bytes(parse_digest(body).model_copy(update={"root_hash": "ab" * 32}))
    chain_dir = trail.saved(tmp_path)
    (chain_dir / f"{digest_seq:010d}.json").write_bytes(forged)
    trail.overwrite_digest(digest_seq, forged, signature)

    assert_fails(trail.verify(), "digest_overwritten", digest_seq=digest_seq)
    assert_fails(trail.verify_copy(tmp_path), "digest_altered", digest_seq=digest_seq)


def test_a_digest_that_is_not_canonical_json_is_altered(trail: Trail, tmp_path: Path) -> None:
    body, _ = trail.digest_object(3)
    chain_dir = trail.saved(tmp_path)
    (chain_dir / "0000000003.json").write_bytes(body.replace(b",", b", ", 1))

    assert_fails(trail.verify_copy(tmp_path), "digest_altered", digest_seq=3)


def test_a_changed_signature_is_invalid(trail: Trail, tmp_path: Path) -> None:
    """Given digest 2's signature with one byte flipped in a copy, Then signature_invalid at digest 2."""
    _, signature = trail.digest_object(2)
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    chain_dir = trail.saved(tmp_path)
    (chain_dir / "0000000002.json.sig").write_text(base64.b64encode(bytes(raw)).decode() + "\n")

    assert_fails(trail.verify_copy(tmp_path), "signature_invalid", digest_seq=2)


def test_a_digest_signed_by_another_key_is_invalid(trail: Trail, tmp_path: Path) -> None:
    """Given the newest digest re-signed by a key the attacker controls (the body still naming the anchor's key),
    Then signature_invalid in a copy, and digest_overwritten in the bucket."""
    body, _ = trail.digest_object(4)
    other = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    forged_signature = KmsSigner(other).sign(body)
    chain_dir = trail.saved(tmp_path)
    (chain_dir / "0000000004.json.sig").write_text(forged_signature + "\n")
    trail.overwrite_digest(4, body, forged_signature)

    assert_fails(trail.verify_copy(tmp_path), "signature_invalid", digest_seq=4)
    assert_fails(trail.verify(), "digest_overwritten", digest_seq=4)


def test_a_consistently_rewritten_event_is_caught_by_the_root(trail: Trail) -> None:
    """Given seq 17 edited and every checksum and hash after it recomputed, Then root_mismatch at digest 2."""
    trail.as_superuser("update audit.audit_events set action = 'innocent' where seq = 17")
    trail.reseal(17)

    report = trail.verify()

    assert_fails(report, "root_mismatch", digest_seq=2)
    assert report.digests_valid == 1
    assert report.events_checked == EVENTS  # the chain itself is flawless


def test_a_rewrite_of_the_whole_chain_by_a_superuser_is_caught_by_the_signed_digests(trail: Trail) -> None:
    """Given every event re-attributed and the whole chain recomputed (head included), When verified without
    digests, Then the database alone looks valid; When verified with the digests, Then root_mismatch at digest 1."""
    trail.as_superuser("update audit.audit_events set user_id = 'someone-else'")
    trail.reseal(1)

    assert verify_offline(trail.db_url).valid
    assert_fails(trail.verify(), "root_mismatch", digest_seq=1)


# --- the command ----------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify", *args])
    return code, capsys.readouterr().out


def test_cli_prints_the_summary_and_exits_zero(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--no-progress")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"4/4 digests valid, {EVENTS}/{EVENTS} events valid, 0 redacted"
    assert any(line.startswith("signing key arn:aws:kms:") for line in lines)
    assert "newest valid is digest 4 (tree size 40" in out
    assert "FAILED" not in out


def test_cli_json_names_the_failure_and_exits_one(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    trail.as_superuser("update audit.audit_events set user_id = 'mallory' where seq = 7")

    code, out = run_cli(capsys, "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--json")

    assert code == 1
    result = orjson.loads(out)
    assert (result["valid"], result["reason"], result["first_invalid_seq"], result["digest_seq"]) == (
        False,
        "modified",
        7,
        None,
    )
    assert result["events"] == {"checked": 6, "total": EVENTS, "redacted": 0, "anchored": 0, "unanchored": EVENTS}
    assert (result["digests"]["checked"], result["digests"]["total"], result["digests"]["valid"]) == (True, 4, 0)
    assert result["summary"] == f"0/4 digests valid, 6/{EVENTS} events valid, 0 redacted"


def test_cli_names_a_bad_digest(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    body, _ = trail.digest_object(3)
    trail.overwrite_digest(3, body, base64.b64encode(b"not a signature").decode())

    code, out = run_cli(capsys, "--database-url", trail.db_url, "--digest-bucket", BUCKET)

    assert code == 1
    assert "FAILED at digest 3: digest_overwritten:" in out


def test_cli_saves_the_digests_and_verifies_them_offline(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the digests saved from the bucket, When verified from the directory (with or without .sig files,
    with the saved key pinned by its fingerprint or the key brought), Then the same verdict; with only another
    key trusted, the saved PEM is not believed: key_untrusted."""
    saved = tmp_path / "saved"
    code, _ = run_cli(capsys, "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--save-digests", str(saved))
    assert code == 0
    chain_dir = saved / "digests" / CHAIN
    assert sorted(path.name for path in chain_dir.glob("*.json")) == [f"{n:010d}.json" for n in range(1, 5)]
    (pem,) = (chain_dir / "public-keys").glob("*.pem")
    assert pem.name == f"{trail.key_arn.rsplit('/', 1)[1]}.pem"
    assert (chain_dir / "0000000001.json.sig").read_text() == trail.digest_object(1)[1] + "\n"
    assert (chain_dir / "0000000001.json").read_bytes() == trail.digest_object(1)[0]

    # The key the auditor brought (here: the published PEM they fetched themselves), no configuration.
    monkeypatch.delenv(FINGERPRINTS_ENV)
    brought = tmp_path / "trusted.pem"
    brought.write_bytes(pem.read_bytes())
    code, out = run_cli(
        capsys, "--database-url", trail.db_url, "--digests-dir", str(saved), "--public-key", str(brought)
    )
    assert (code, out.splitlines()[0]) == (0, f"4/4 digests valid, {EVENTS}/{EVENTS} events valid, 0 redacted")
    monkeypatch.setenv(FINGERPRINTS_ENV, trail.fingerprint)

    # Without the .sig files every signature is still known: the next digest's copy, and the database's.
    for signature_file in chain_dir.glob("*.sig"):
        signature_file.unlink()
    code, _ = run_cli(capsys, "--database-url", trail.db_url, "--digests-dir", str(chain_dir))
    assert code == 0

    other = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    other_pem = tmp_path / "other.pem"
    other_pem.write_bytes(boto3.client("kms").get_public_key(KeyId=other)["PublicKey"])  # DER is accepted too
    monkeypatch.delenv(FINGERPRINTS_ENV)
    code, out = run_cli(
        capsys, "--database-url", trail.db_url, "--digests-dir", str(saved), "--public-key", str(other_pem)
    )
    assert code == 1
    assert "FAILED at digest 1: key_untrusted:" in out


def test_cli_usage_errors_exit_two(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["verify", "--database-url", trail.db_url, "--digests-dir", str(tmp_path / "nowhere")]) == 2
    assert main(["verify", "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--chain-id", "other"]) == 2
    assert main(["verify", "--database-url", trail.db_url, "--digests-dir", str(tmp_path)]) == 2  # no digests there
    with pytest.raises(SystemExit) as both:
        main(["verify", "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--digests-dir", str(tmp_path)])
    assert both.value.code == 2
    assert main(["verify", "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--from-seq", "5"]) == 2
    assert main(["verify", "--database-url", trail.db_url, "--workers", "0"]) == 2
    assert main(["verify", "--database-url", trail.db_url, "--public-key", str(tmp_path / "none.pem")]) == 2
    assert main(["verify", "--database-url", trail.db_url, "--digest-bucket", BUCKET, "--key-fingerprint", "ab"]) == 2
    errors = capsys.readouterr().err
    assert "no digests of chain 'other'" in errors
    assert "--from-seq/--to-seq check events only" in errors
    assert "cannot read --public-key" in errors
    assert "is not a SHA-256 key fingerprint" in errors
    # No key pinned at all: refused, saying what to pass, for the bucket and for a copy.
    monkeypatch.delenv(FINGERPRINTS_ENV)
    copy = trail.saved(tmp_path / "copy")
    for digests in (["--digest-bucket", BUCKET], ["--digests-dir", str(copy)]):
        assert main(["verify", "--database-url", trail.db_url, *digests]) == 2
        errors = capsys.readouterr().err
        assert "no trusted signing key" in errors and "--key-fingerprint" in errors and FINGERPRINTS_ENV in errors


def test_cli_range_checks_events_only(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "--database-url", trail.db_url, "--from-seq", "11", "--to-seq", "20")
    assert (code, out.split(" (")[0]) == (0, "10/10 events valid, 0 redacted")


def test_cli_reads_a_moto_server_through_endpoint_url(
    db_url: str, transport: PostgresTransport, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given digests written by the anchor to a moto server (as the local stack runs it) and the key's published
    fingerprint, When verified with --endpoint-url, Then the CLI reads the bucket's versions over HTTP, takes
    the key from KMS there (before the PEM beside the digests), and everything is valid."""
    from audit_trail.local.aws import MotoServer

    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(name, value)
    server = MotoServer()
    endpoint = server.start()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        key_arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        event_store.store_events(transport, [AuditEventIn.model_validate(make_event(n)) for n in range(12)])
        signer, store = KmsSigner(key_arn, client=kms), DigestStore(BUCKET, 30, client=s3)
        now = datetime.now(UTC)
        for moment in (now - timedelta(hours=1), now):
            run_anchor(transport, signer, store, chain_id=CHAIN, now=lambda moment=moment: moment)  # type: ignore[misc]
        monkeypatch.setenv(FINGERPRINTS_ENV, key_fingerprint(kms, key_arn))

        code, out = run_cli(
            capsys, "--database-url", db_url, "--digest-bucket", BUCKET, "--endpoint-url", endpoint, "--no-progress"
        )
    finally:
        server.stop()

    assert code == 0, out
    assert out.splitlines()[0] == "2/2 digests valid, 12/12 events valid, 0 redacted"
    assert "(KMS GetPublicKey, fingerprint pinned)" in out
