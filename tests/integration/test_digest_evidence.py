"""The digests as evidence an outsider can trust (issue 14, classes 4 and 5), against real PostgreSQL and moto.

Digests are written by the real anchor (anchor.service.run_anchor) to a versioned bucket under Object Lock
COMPLIANCE and signed by a moto KMS ECC_NIST_P256 key whose fingerprint is configured as the operator
publishes it (AUDIT_SIGNING_KEY_FINGERPRINTS). The attackers: a database superuser (triggers off) and someone
who may write to the digest bucket, as the anchor's role may. Each verdict is the default
`audit-trail verify` (the database and the bucket, no extra flags) unless a case says otherwise:

* the S3 attack end to end: the whole chain rewritten, new digests signed with the attacker's own KMS key and
  uploaded as new versions of every digest, their PEM beside them -> ``digest_overwritten`` (the first locked
  version is the digest), and from a copy of what the bucket shows now -> ``key_untrusted``;
* no key pinned at all -> refused, exit 2;
* the newest digest deleted (a delete marker) with its database row, and the events after the previous digest
  rewritten -> ``digest_overwritten`` from the bucket, ``digests_stale`` from a copy without it;
* a period that does not start where the previous one ended -> ``digest_discontinuous``;
* an unlocked first version -> ``digest_altered``;
* an old copy judged ``--as-of`` when it was taken.
"""

from __future__ import annotations

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
from anchor.service import run_anchor
from anchor.signer import KmsSigner
from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.integrity import merkle_root
from audit_common.integrity.digest import (
    Digest,
    digest_bytes,
    digest_key,
    digest_timestamp,
    parse_digest,
    public_key_key,
    public_key_pem,
)
from audit_common.models import AuditEventIn
from audit_trail.cli import main
from audit_trail.verify import Report, verify_offline
from audit_trail.verify_digests import FINGERPRINTS_ENV, DirectoryDigestSource, KeyTrust, S3DigestSource
from tests.support.aws import moto_account
from tests.support.events import make_event
from tests.support.trail import Superuser

BUCKET = "audit-digests-evidence-test"
CHAIN = "default"
# Four hourly digests: after 10, 25, 40 and 45 events.
BATCHES = (10, 15, 15, 5)
EVENTS = sum(BATCHES)


def hourly(last: datetime, count: int = len(BATCHES)) -> list[datetime]:
    """``count`` anchor times an hour apart, the last at ``last``."""
    return [last - timedelta(hours=count - 1 - n) for n in range(count)]


def key_fingerprint(key_arn: str) -> str:
    """What the operator publishes: SHA-256 of the key's DER public key, as KMS gives it."""
    return hashlib.sha256(boto3.client("kms").get_public_key(KeyId=key_arn)["PublicKey"]).hexdigest()


def create_key() -> str:
    return str(boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"])


@dataclass
class Trail:
    """An anchored trail in the test database and moto, the operator's published fingerprint, and the attackers."""

    db_url: str
    db: psycopg.Connection[Any]
    transport: PostgresTransport
    key_arn: str
    fingerprint: str
    store: DigestStore

    def add_events(self, first: int, count: int, received_at: datetime) -> None:
        """Store events (sealed by the real code), then date their arrival (setup: received_at is not sealed)."""
        if not count:
            return
        event_store.store_events(
            self.transport, [AuditEventIn.model_validate(make_event(n)) for n in range(first, first + count)]
        )
        self.db.execute("set session_replication_role = replica")
        self.db.execute(
            "update audit.audit_events set received_at = %s where seq > %s", (received_at, self._max_seq() - count)
        )
        self.db.execute("set session_replication_role = origin")

    def _max_seq(self) -> int:
        row = self.db.execute("select coalesce(max(seq), 0) from audit.audit_events").fetchone()
        return int(row[0]) if row else 0

    def anchor(self, moment: datetime) -> None:
        run_anchor(self.transport, KmsSigner(self.key_arn), self.store, chain_id=CHAIN, now=lambda: moment)

    def build(self, moments: list[datetime], before_anchor: Callable[[int], None] | None = None) -> None:
        """One batch of events, then one anchor run, per moment (events arrive 10 minutes before each run)."""
        first = 0
        for number, (count, moment) in enumerate(zip(BATCHES, moments, strict=True), start=1):
            self.add_events(first, count, moment - timedelta(minutes=10))
            first += count
            if before_anchor is not None:
                before_anchor(number)
            self.anchor(moment)

    # --- verdicts -------------------------------------------------------------------------------

    def verify(self, **options: Any) -> Report:
        """The library's default: the bucket, the configured fingerprint, KMS look-ups."""
        return verify_offline(self.db_url, S3DigestSource(BUCKET, client=boto3.client("s3")), **options)

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        code = main(["verify", "--database-url", self.db_url, "--no-progress", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    # --- the database superuser -----------------------------------------------------------------

    def as_superuser(self, *statements: str) -> None:
        self.db.execute("set session_replication_role = replica")
        for statement in statements:
            self.db.execute(statement)

    def reseal(self, first_seq: int = 1) -> None:
        """Recompute every checksum and chain hash from ``first_seq`` on, and the chain head: a consistent rewrite."""
        with Superuser(self.db_url) as superuser:
            superuser.reseal(first_seq)

    # --- the bucket -----------------------------------------------------------------------------

    def first_versions(self) -> list[tuple[bytes, str]]:
        """(body, signature) of every honest digest, from its first version."""
        source = S3DigestSource(BUCKET, client=boto3.client("s3"))
        return [(record.body, record.signature or "") for record in source.records(CHAIN)]

    def copy_latest(self, directory: Path) -> Path:
        """What `aws s3 sync` of the bucket gives: the newest version of every object, no versions, no locks."""
        s3 = boto3.client("s3")
        for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="digests/")["Contents"]:
            response = s3.get_object(Bucket=BUCKET, Key=item["Key"])
            target = directory / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(response["Body"].read())
            if "signature" in response["Metadata"]:
                target.with_name(target.name + ".sig").write_text(response["Metadata"]["signature"] + "\n")
        return directory


@pytest.fixture
def make_trail(
    db_url: str, db: psycopg.Connection[Any], transport: PostgresTransport, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Trail]]:
    """A factory: a bucket with versioning and Object Lock, the anchor's KMS key, its fingerprint configured."""
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        key_arn = create_key()
        published = key_fingerprint(key_arn)
        monkeypatch.setenv(FINGERPRINTS_ENV, published)

        def make(store: DigestStore | None = None) -> Trail:
            return Trail(db_url, db, transport, key_arn, published, store or DigestStore(BUCKET, 30))

        yield make


@pytest.fixture
def trail(make_trail: Callable[..., Trail]) -> Trail:
    """Four hourly digests, the newest 30 minutes ago: fresh."""
    built = make_trail()
    built.build(hourly(datetime.now(UTC) - timedelta(minutes=30)))
    return built


def failure(report: Report) -> tuple[str | None, int | None, int | None]:
    return (None, None, None) if report.failure is None else (report.failure.kind, report.failure.seq,
                                                              report.failure.digest_seq)  # fmt: skip


# --- the control --------------------------------------------------------------------------------


def test_an_untouched_trail_verifies_by_default(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    """Given the anchor's digests and the operator's published fingerprint, When verified by default, Then valid,
    the key taken from KMS and pinned, and the report says how fresh the digests are and what they cover."""
    assert failure(trail.verify()) == (None, None, None)

    code, out, err = trail.cli(capsys, "--digest-bucket", BUCKET)

    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"4/4 digests valid, {EVENTS}/{EVENTS} events valid, 0 redacted"
    assert "not covered by any digest yet: 0 events; the newest digest's period ended 30 min before" in out
    assert ": fresh (limit 75 min: anchor interval + grace)" in out
    assert f"signing key {trail.key_arn}: public key SHA-256 {trail.fingerprint} (KMS GetPublicKey" in out

    # The fingerprint the operator publishes is the one `audit-trail keys fingerprint` prints.
    assert main(["keys", "fingerprint", "--key-id", trail.key_arn]) == 0
    assert capsys.readouterr().out.strip() == trail.fingerprint


def test_the_json_report_carries_freshness_and_coverage(trail: Trail, capsys: pytest.CaptureFixture[str]) -> None:
    trail.add_events(100, 3, datetime.now(UTC))

    code, out, _ = trail.cli(capsys, "--digest-bucket", BUCKET, "--json")

    assert code == 0
    document = orjson.loads(out)
    assert (document["events"]["anchored"], document["events"]["unanchored"]) == (EVENTS, 3)
    freshness = document["digests"]["freshness"]
    assert (freshness["stale"], freshness["newest_digest_seq"], freshness["max_age_seconds"]) == (False, 4, 4500)
    assert 29 * 60 < freshness["newest_digest_age_seconds"] < 35 * 60
    assert document["digests"]["signing_key_sources"] == {trail.key_arn: "KMS GetPublicKey, fingerprint pinned"}


def test_the_local_stack_s_alias_signs_under_the_full_key_arn(trail: Trail) -> None:
    """Given the anchor configured with an alias (as the template does) on moto, which answers GetPublicKey with
    a bare key id, Then the digest still names the full key ARN."""
    boto3.client("kms").create_alias(AliasName="alias/audit-trail-digest-signing", TargetKeyId=trail.key_arn)
    assert KmsSigner("alias/audit-trail-digest-signing").key.key_id == trail.key_arn
    assert all(parse_digest(body).signing_key_id == trail.key_arn for body, _ in trail.first_versions())


# --- class 4: the attacker's object versions and the attacker's key --------------------------------


def forge_digests(trail: Trail) -> tuple[str, dict[int, str]]:
    """The bucket writer's half of the attack, over a chain the superuser already rewrote: new digests with the
    rewritten roots, signed with a KMS key of the attacker's own, uploaded as new versions of every digest
    (locked, like the originals) with the attacker's PEM beside them, and the database's records to match.
    Returns the attacker's key ARN and the new version id of every digest."""
    attacker_key = create_key()
    signer = KmsSigner(attacker_key)
    s3 = boto3.client("s3")
    checksums = [
        bytes(row[0]) for row in trail.db.execute("select checksum from audit.audit_events order by seq").fetchall()
    ]
    hashes = [bytes(row[0]) for row in trail.db.execute("select chain_hash from audit.audit_events order by seq")]
    versions: dict[int, str] = {}
    previous_signature: str | None = None
    for body, _ in trail.first_versions():
        honest = parse_digest(body)
        forged = honest.model_copy(
            update={
                "root_hash": merkle_root(checksums[: honest.tree_size]).hex(),
                "chain_hash": hashes[honest.tree_size - 1].hex(),
                "previous_digest_signature": previous_signature,
                "signing_key_id": attacker_key,
            }
        )
        forged_body = digest_bytes(Digest.model_validate(forged.model_dump()))
        signature = signer.sign(forged_body)
        put = s3.put_object(
            Bucket=BUCKET,
            Key=digest_key(CHAIN, honest.digest_seq),
            Body=forged_body,
            Metadata={"signature": signature},
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=30),
            ChecksumAlgorithm="SHA256",
        )
        versions[honest.digest_seq] = put["VersionId"]
        trail.as_superuser()
        trail.db.execute(
            "update audit.digests set signature = %s, signing_key_id = %s, root_hash = %s, chain_hash = %s,"
            " body = %s::jsonb where digest_seq = %s",
            (signature, attacker_key, bytes.fromhex(forged.root_hash), bytes.fromhex(forged.chain_hash),
             forged_body.decode(), honest.digest_seq),
        )  # fmt: skip
        previous_signature = signature
    pem = public_key_pem(signer.key.public_key_der)
    s3.put_object(Bucket=BUCKET, Key=public_key_key(CHAIN, attacker_key), Body=pem.encode(), ChecksumAlgorithm="SHA256")
    return attacker_key, versions


def test_the_s3_attack_end_to_end(trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Given the whole chain rewritten consistently by the superuser, and new digests signed by the attacker's own
    KMS key uploaded as new versions of every digest with their PEM beside them, When verified by default
    (database, bucket, the published fingerprint), Then digest_overwritten at digest 1, naming the new version;
    and a copy of what the bucket shows now is key_untrusted, even with the honest key brought."""
    trail.as_superuser("update audit.audit_events set user_id = 'someone-else', action = 'nothing_happened'")
    trail.reseal(1)
    attacker_key, versions = forge_digests(trail)
    latest = trail.copy_latest(tmp_path / "latest")

    # The attack is real: the database alone is fooled, and so is anyone who believes the PEM in the bucket.
    assert verify_offline(trail.db_url).valid
    believer = KeyTrust.create(fingerprints=[key_fingerprint(attacker_key)])
    assert verify_offline(trail.db_url, DirectoryDigestSource(latest), trust=believer).valid

    report = trail.verify()
    assert failure(report) == ("digest_overwritten", None, 1)
    assert report.failure is not None and f"version {versions[1]}" in report.failure.message
    code, out, err = trail.cli(capsys, "--digest-bucket", BUCKET)
    assert code == 1, out + err
    assert (
        f"FAILED at digest 1: digest_overwritten: digest 1 was overwritten: the bucket holds version {versions[1]}"
        in out
    )

    # From a copy of the newest versions (no versions there to see): the attacker's key is not one we trust.
    copy = verify_offline(trail.db_url, DirectoryDigestSource(latest))
    assert failure(copy) == ("key_untrusted", None, 1)
    assert copy.failure is not None
    assert attacker_key in copy.failure.message and key_fingerprint(attacker_key) in copy.failure.message
    honest_pem = tmp_path / "honest.pem"
    honest_pem.write_bytes(boto3.client("kms").get_public_key(KeyId=trail.key_arn)["PublicKey"])
    code, out, err = trail.cli(capsys, "--digests-dir", str(latest), "--public-key", str(honest_pem), "--json")
    assert code == 1, out + err
    assert (orjson.loads(out)["reason"], orjson.loads(out)["digest_seq"]) == ("key_untrusted", 1)


def test_without_a_pinned_key_the_digests_are_refused(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given no fingerprint configured or given and no key brought, When verifying with digests, Then exit 2 saying
    what is missing and how to get it (bucket and copy alike), never a pass on the PEM beside the digests."""
    copy = trail.copy_latest(tmp_path / "copy")
    monkeypatch.delenv(FINGERPRINTS_ENV)

    for digests in (["--digest-bucket", BUCKET], ["--digests-dir", str(copy)]):
        code, out, err = trail.cli(capsys, *digests)
        assert (code, out) == (2, ""), out + err
        assert "no trusted signing key" in err
        assert "--key-fingerprint" in err and FINGERPRINTS_ENV in err and "--public-key" in err
        assert "audit-trail keys fingerprint --key-id" in err
    # Given one on the command line instead, it verifies.
    code, out, err = trail.cli(capsys, "--digest-bucket", BUCKET, "--key-fingerprint", trail.fingerprint.upper())
    assert code == 0, out + err


def test_an_unlocked_first_version_proves_nothing(make_trail: Callable[..., Trail]) -> None:
    """Given digests written without an Object Lock (a misconfigured anchor: the original could be deleted and
    replaced), Then digest_altered at digest 1, saying the first version is not locked."""

    class UnlockedStore(DigestStore):
        def _put_new(
            self, key: str, body: bytes, content_type: str, retain_until: datetime, meta: dict[str, str]
        ) -> bool:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=meta)
            return True

    trail = make_trail(UnlockedStore(BUCKET, 30))
    trail.build(hourly(datetime.now(UTC) - timedelta(minutes=30)))

    report = trail.verify()

    assert failure(report) == ("digest_altered", None, 1)
    assert report.failure is not None and "not under Object Lock in COMPLIANCE mode" in report.failure.message


# --- class 5: the newest digests deleted, periods that do not tile, freshness ---------------------


def test_deleting_the_newest_digest_and_rewriting_after_the_previous_one_is_caught(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the newest digest deleted (a delete marker) and its database row removed, and an event after the
    previous digest rewritten with every hash after it, When verified from the bucket, Then digest_overwritten
    at digest 4 (the marker); When verified from a copy without digest 4, Then digests_stale at digest 3, which
    is 90 minutes old, and the report says the 5 events after it are covered by nothing."""
    saved = tmp_path / "saved"
    assert trail.cli(capsys, "--digest-bucket", BUCKET, "--save-digests", str(saved))[0] == 0
    marker = boto3.client("s3").delete_object(Bucket=BUCKET, Key=digest_key(CHAIN, 4))["VersionId"]
    trail.as_superuser(
        "delete from audit.digests where digest_seq = 4",
        "update audit.audit_events set action = 'nothing_happened' where seq = 42",
    )
    trail.reseal(42)
    for name in ("0000000004.json", "0000000004.json.sig"):
        (saved / "digests" / CHAIN / name).unlink()

    report = trail.verify()
    assert failure(report) == ("digest_overwritten", None, 4)
    assert report.failure is not None and f"delete marker {marker}" in report.failure.message

    copy = verify_offline(trail.db_url, DirectoryDigestSource(saved))
    assert failure(copy) == ("digests_stale", None, 3)
    assert (copy.digests_valid, copy.events_checked, copy.unanchored) == (3, EVENTS, 5)
    code, out, _ = trail.cli(capsys, "--digests-dir", str(saved))
    assert code == 1
    assert "not covered by any digest yet: 5 event(s) (seq 41..45); the newest digest's period ended 90 min" in out
    assert "STALE" in out and "FAILED at digest 3: digests_stale:" in out
    # A longer grace (say, an anchor known to have been down) is the operator's call, and says so.
    assert trail.cli(capsys, "--digests-dir", str(saved), "--grace", "3600")[0] == 0


def test_a_period_that_does_not_start_where_the_previous_ended_is_discontinuous(
    make_trail: Callable[..., Trail], capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the anchor fed a previous digest whose period ended 10 minutes earlier than signed (the database's
    record of it edited), so digest 3's period leaves a gap, Then digest_discontinuous at digest 3."""
    trail = make_trail()

    def shift_previous_end(number: int) -> None:
        if number == 3:
            trail.as_superuser(
                "update audit.digests set body = jsonb_set(body, '{period_end}',"
                " to_jsonb(audit.format_timestamp(period_end - interval '10 minutes'))) where digest_seq = 2"
            )

    trail.build(hourly(datetime.now(UTC) - timedelta(minutes=30)), before_anchor=shift_previous_end)

    report = trail.verify()

    assert failure(report) == ("digest_discontinuous", None, 3)
    assert report.digests_valid == 2
    code, out, _ = trail.cli(capsys, "--digest-bucket", BUCKET)
    assert code == 1 and "FAILED at digest 3: digest_discontinuous:" in out


def test_an_old_copy_verifies_as_of_when_it_was_taken(
    make_trail: Callable[..., Trail], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a trail whose anchor last ran 30 days ago and a copy of its digests, When verified now, Then stale;
    as of 20 minutes after the last run, valid; but an event received since moves the reference time with it."""
    trail = make_trail()
    last = datetime.now(UTC) - timedelta(days=30)
    trail.build(hourly(last))
    saved = tmp_path / "saved"
    # Saving verifies too: as of the copy's time it passes.
    as_of = digest_timestamp(last + timedelta(minutes=20))
    assert trail.cli(capsys, "--digest-bucket", BUCKET, "--save-digests", str(saved), "--as-of", as_of)[0] == 0

    assert failure(verify_offline(trail.db_url, DirectoryDigestSource(saved))) == ("digests_stale", None, 4)
    code, out, err = trail.cli(capsys, "--digests-dir", str(saved), "--as-of", as_of)
    assert code == 0, out + err
    assert "(--as-of): fresh" in out

    trail.add_events(200, 1, datetime.now(UTC))
    code, out, _ = trail.cli(capsys, "--digests-dir", str(saved), "--as-of", as_of)
    assert code == 1
    assert "(the newest event's received_at)" in out and "FAILED at digest 4: digests_stale:" in out
