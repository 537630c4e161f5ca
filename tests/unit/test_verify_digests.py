"""The digest checks of `audit-trail verify` (audit_trail.verify_digests), with local keys: no AWS, no database.

Covers the digests' own checks (signature, digest chain), where the verifier takes the key from and when it
trusts it (a pinned fingerprint or a key the auditor brought, never a PEM beside the digests by itself),
object versions (the first locked version is the digest, anything later is tampering), continuity of the
anchor periods and freshness of the newest digest. Includes a hypothesis fuzz of the verifier (not only of
the signer): any one byte changed in a digest's body or signature makes it fail, at that digest, as
``digest_altered`` or ``signature_invalid``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_common.integrity import FailureKind
from audit_common.integrity.digest import Digest, digest_bytes, digest_key, digest_timestamp, parse_digest
from audit_trail.cli import build_parser
from audit_trail.verify import Report
from audit_trail.verify_digests import (
    DEFAULT_ANCHOR_INTERVAL_SECONDS,
    DEFAULT_GRACE_SECONDS,
    FINGERPRINTS_ENV,
    DigestCheck,
    DigestRecord,
    DirectoryDigestSource,
    Freshness,
    KeyTrust,
    KmsPublicKeys,
    S3DigestSource,
    StoredKey,
    UsageError,
    check_digests,
    default_trust,
    normalise_fingerprint,
    parse_fingerprints,
    public_key_fingerprint,
)

CHAIN = "default"
KEY_ID = "arn:aws:kms:eu-west-1:111122223333:key/0000aaaa-bbbb-cccc-dddd-eeeeffff0000"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = Path(__file__).resolve().parents[2]


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def der(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return hashlib.sha256(der(key)).hexdigest()


def pinned(*keys: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> KeyTrust:
    """The operator published these keys' fingerprints."""
    return KeyTrust.create(fingerprints=[fingerprint(key) for key in keys])


def sign(body: bytes, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass
class MemorySource:
    """A DigestSource over records in memory; ``key`` is the PEM "beside the digests" (untrusted by itself)."""

    records_: list[DigestRecord]
    key: bytes | None
    description: str = "memory"
    key_later_versions: tuple[str, ...] = ()
    asked: list[str] = field(default_factory=list)

    def chain_ids(self) -> list[str]:
        return [CHAIN]

    def records(self, chain_id: str) -> list[DigestRecord]:
        return list(self.records_)

    def public_key(self, chain_id: str, signing_key_id: str) -> StoredKey | None:
        self.asked.append(signing_key_id)
        if self.key is None:
            return None
        return StoredKey(self.key, f"memory/public-keys/{signing_key_id[-8:]}.pem", self.key_later_versions)


def build_chain(
    count: int = 3, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = EC_KEY, **changes: dict[str, object]
) -> list[DigestRecord]:
    """``count`` digests, 10 events each, properly signed and chained; ``changes`` patch digest N before signing."""
    algorithm = "ECDSA_SHA_256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSASSA_PKCS1_V1_5_SHA_256"
    records: list[DigestRecord] = []
    previous: tuple[str, str, int, str] | None = None
    for number in range(1, count + 1):
        moment = T0 + timedelta(hours=number)
        fields: dict[str, object] = {
            "chain_id": CHAIN,
            "digest_seq": number,
            "tree_size": 10 * number,
            "root_hash": f"{number:02x}" * 32,
            "chain_hash": f"{number + 16:02x}" * 32,
            "previous_tree_size": 0 if previous is None else previous[2],
            "period_start": digest_timestamp(moment - timedelta(hours=1)) if previous is None else previous[3],
            "period_end": digest_timestamp(moment),
            "oldest_event_time": digest_timestamp(moment - timedelta(minutes=50)),
            "newest_event_time": digest_timestamp(moment - timedelta(minutes=5)),
            "created_at": digest_timestamp(moment),
            "previous_digest_key": None if previous is None else previous[0],
            "previous_digest_signature": None if previous is None else previous[1],
            "signing_key_id": KEY_ID,
            "signing_algorithm": algorithm,
        }
        fields.update(changes.get(f"d{number}", {}))
        body = digest_bytes(Digest.model_validate(fields))
        signature = sign(body, key)
        records.append(DigestRecord(number, digest_key(CHAIN, number), body, signature))
        previous = (digest_key(CHAIN, number), signature, int(str(fields["tree_size"])), str(fields["period_end"]))
    return records


def check(
    records: list[DigestRecord], key: bytes | None = None, trust: KeyTrust | None = None, **options: Any
) -> DigestCheck:
    """The digests with ``key`` beside them (default: the honest PEM) and the honest key pinned by default."""
    source = MemorySource(records, pem(EC_KEY) if key is None else key)
    return check_digests(source, CHAIN, trust=pinned(EC_KEY) if trust is None else trust, **options)


def assert_problem(result: DigestCheck, kind: FailureKind, digest_seq: int) -> None:
    assert result.problem is not None
    assert (result.problem.kind, result.problem.digest_seq) == (kind, digest_seq), result.problem
    assert [digest.digest_seq for digest in result.proven] == list(range(1, digest_seq))


# --- the digests' own checks ------------------------------------------------------------------------


def test_a_signed_chain_of_digests_is_proven() -> None:
    result = check(build_chain())
    assert result.problem is None
    assert [digest.tree_size for digest in result.proven] == [10, 20, 30]
    assert result.fingerprints == {KEY_ID: fingerprint(EC_KEY)}


def test_rsa_signed_digests_are_proven_too() -> None:
    assert check(build_chain(key=RSA_KEY), key=pem(RSA_KEY), trust=pinned(RSA_KEY)).problem is None


def test_signatures_missing_from_the_objects_are_taken_from_the_next_digest_and_the_database() -> None:
    records = build_chain()
    recorded = {3: records[2].signature}
    bare = [DigestRecord(r.digest_seq, r.location, r.body, None) for r in records]
    assert check(bare, recorded_signatures=recorded).problem is None
    # Without the database's copy, the newest digest has no signature at all.
    assert_problem(check(bare), FailureKind.SIGNATURE_INVALID, 3)


def test_a_gap_is_a_missing_digest() -> None:
    records = build_chain(4)
    assert_problem(check([records[0], records[1], records[3]]), FailureKind.DIGEST_MISSING, 3)


def test_a_missing_newest_digest_is_seen_through_the_database_count() -> None:
    assert_problem(check(build_chain(3), recorded_count=4), FailureKind.DIGEST_MISSING, 4)
    assert_problem(check(build_chain(3)[1:]), FailureKind.DIGEST_MISSING, 1)


def test_a_replaced_predecessor_is_altered_even_when_its_own_signature_holds() -> None:
    """Given digest 2 re-signed with another root by the same key, Then digest 3's pinned signature exposes it."""
    honest = build_chain()
    forged_body = digest_bytes(parse_digest(honest[1].body).model_copy(update={"root_hash": "ee" * 32}))
    forged = DigestRecord(2, honest[1].location, forged_body, sign(forged_body, EC_KEY))
    assert_problem(check([honest[0], forged, honest[2]]), FailureKind.DIGEST_ALTERED, 2)


@pytest.mark.parametrize(
    "change",
    [{"previous_tree_size": 11}, {"previous_digest_key": digest_key(CHAIN, 7)}],
    ids=["tree-size", "key"],
)
def test_a_broken_link_is_altered(change: dict[str, object]) -> None:
    assert_problem(check(build_chain(d2=change)), FailureKind.DIGEST_ALTERED, 2)


def test_a_digest_under_the_wrong_number_is_altered() -> None:
    records = build_chain()
    swapped = [records[0], DigestRecord(2, records[2].location, records[2].body, records[2].signature), records[1]]
    assert_problem(check(swapped), FailureKind.DIGEST_ALTERED, 2)


# --- which key is trusted ---------------------------------------------------------------------------


def test_without_any_trust_anchor_the_digests_are_refused() -> None:
    """Given digests and their PEM but nothing pinned, When checked, Then a usage error that says what to pass."""
    with pytest.raises(UsageError, match=r"--key-fingerprint.*AUDIT_SIGNING_KEY_FINGERPRINTS.*--public-key"):
        check(build_chain(), trust=KeyTrust())


def test_a_pem_beside_the_digests_is_used_only_when_its_fingerprint_is_pinned() -> None:
    """Given digests signed by the attacker's key with the attacker's PEM beside them, When the honest key is
    pinned, Then key_untrusted at digest 1, naming the key and the fingerprint found."""
    records = build_chain(key=OTHER_KEY)

    result = check(records, key=pem(OTHER_KEY))

    assert_problem(result, FailureKind.KEY_UNTRUSTED, 1)
    assert result.problem is not None
    assert KEY_ID in result.problem.message and fingerprint(OTHER_KEY) in result.problem.message
    assert result.fingerprints == {KEY_ID: fingerprint(OTHER_KEY)}
    # Pinned, the same PEM is fine (the operator rotated to it and published its fingerprint).
    assert check(records, key=pem(OTHER_KEY), trust=pinned(EC_KEY, OTHER_KEY)).problem is None


def test_a_brought_public_key_pins_itself_and_is_used_for_the_key_it_matches() -> None:
    records = build_chain()
    brought = KeyTrust.create(public_keys=[der(EC_KEY)])
    result = check(records, trust=brought)
    assert result.problem is None
    assert result.key_sources[KEY_ID].startswith("--public-key")
    # No key stored beside the digests: the brought key is all there is, and it verifies.
    assert check_digests(MemorySource(records, None), CHAIN, trust=brought).problem is None


def test_a_brought_key_does_not_bless_another_key_found_beside_the_digests() -> None:
    """Given the attacker's digests and PEM, When the auditor brings the honest key, Then key_untrusted (not a
    quiet pass, and not blamed on the signature: the key the digests name is simply not theirs)."""
    result = check(build_chain(key=OTHER_KEY), key=pem(OTHER_KEY), trust=KeyTrust.create(public_keys=[pem(EC_KEY)]))
    assert_problem(result, FailureKind.KEY_UNTRUSTED, 1)


def test_the_wrong_brought_key_is_an_invalid_signature_when_nothing_else_names_a_key() -> None:
    records = build_chain()
    result = check_digests(MemorySource(records, None), CHAIN, trust=KeyTrust.create(public_keys=[pem(OTHER_KEY)]))
    assert_problem(result, FailureKind.SIGNATURE_INVALID, 1)


def test_no_key_material_at_all_is_untrusted() -> None:
    result = check_digests(MemorySource(build_chain(), None), CHAIN, trust=pinned(EC_KEY))
    assert_problem(result, FailureKind.KEY_UNTRUSTED, 1)
    assert result.problem is not None and "--public-key" in result.problem.message


def test_kms_material_is_used_when_pinned_and_never_trusted_for_coming_from_kms() -> None:
    """Given KMS answering for the digests' key, Then its key is used when pinned; an unpinned KMS key (the
    attacker's own KMS key, say) is untrusted even though KMS gave it."""
    asked: list[str] = []

    def kms(key_id: str) -> bytes | None:
        asked.append(key_id)
        return der(EC_KEY)

    result = check_digests(MemorySource(build_chain(), None), CHAIN, trust=KeyTrust.create(
        fingerprints=[fingerprint(EC_KEY)], kms=kms))  # fmt: skip
    assert result.problem is None
    assert asked == [KEY_ID]
    assert result.key_sources[KEY_ID] == "KMS GetPublicKey, fingerprint pinned"

    untrusted = check_digests(
        MemorySource(build_chain(), None),
        CHAIN,
        trust=KeyTrust.create(fingerprints=[fingerprint(OTHER_KEY)], kms=kms),
    )
    assert_problem(untrusted, FailureKind.KEY_UNTRUSTED, 1)


def test_fingerprints_are_normalised_and_checked() -> None:
    value = fingerprint(EC_KEY)
    assert normalise_fingerprint(value.upper()) == value
    assert normalise_fingerprint("SHA256:" + ":".join(value[i : i + 2] for i in range(0, 64, 2))) == value
    assert parse_fingerprints(f" {value} ,{fingerprint(OTHER_KEY)},") == [value, fingerprint(OTHER_KEY)]
    assert parse_fingerprints("") == []
    with pytest.raises(ValueError, match="64 hex"):
        normalise_fingerprint(value[:-1])
    assert public_key_fingerprint(pem(EC_KEY)) == public_key_fingerprint(der(EC_KEY)) == value


def test_the_configured_fingerprints_come_from_the_environment() -> None:
    value = fingerprint(EC_KEY)
    trust = default_trust(None, {FINGERPRINTS_ENV: value})
    assert (trust.fingerprints, trust.kms) == (frozenset({value}), None)
    assert not default_trust(None, {}).anchored
    with pytest.raises(UsageError, match=FINGERPRINTS_ENV):
        default_trust(None, {FINGERPRINTS_ENV: "not-a-fingerprint"})


def test_kms_is_asked_only_by_full_key_arn_in_the_key_s_own_region() -> None:
    regions: list[str] = []

    class FakeKms:
        def get_public_key(self, KeyId: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
            if KeyId.endswith("missing"):
                raise RuntimeError("NotFoundException")
            return {"PublicKey": der(EC_KEY), "KeyUsage": "SIGN_VERIFY"}

    def factory(region: str) -> FakeKms:
        regions.append(region)
        return FakeKms()

    lookup = KmsPublicKeys(client_factory=factory)
    assert lookup(KEY_ID) == der(EC_KEY)
    assert regions == ["eu-west-1"]
    assert lookup("0000aaaa-bbbb-cccc-dddd-eeeeffff0000") is None
    assert lookup("alias/audit-trail-digest-signing") is None
    assert "not a full KMS key ARN" in lookup.errors["alias/audit-trail-digest-signing"]
    assert lookup(KEY_ID[:-7] + "missing") is None
    assert regions == ["eu-west-1"]  # one client per region


# --- object versions --------------------------------------------------------------------------------


def test_a_later_version_of_a_digest_is_overwritten_naming_the_version() -> None:
    records = build_chain()
    original = records[1]
    records[1] = DigestRecord(2, original.location, original.body, original.signature, "v-first", ("version v-2",))

    result = check(records)

    assert_problem(result, FailureKind.DIGEST_OVERWRITTEN, 2)
    assert result.problem is not None and "version v-2" in result.problem.message
    assert "v-first" in result.problem.message


def test_a_delete_marker_over_a_digest_is_overwritten() -> None:
    records = build_chain()
    newest = records[2]
    records[2] = DigestRecord(3, newest.location, newest.body, newest.signature, "v-1", ("delete marker dm-9",))
    assert_problem(check(records), FailureKind.DIGEST_OVERWRITTEN, 3)


def test_a_first_version_without_a_compliance_lock_proves_nothing() -> None:
    records = build_chain()
    first = records[0]
    records[0] = DigestRecord(
        1, first.location, first.body, first.signature, "v-1", (), False, "lock mode GOVERNANCE, retain until none"
    )
    result = check(records)
    assert_problem(result, FailureKind.DIGEST_ALTERED, 1)
    assert result.problem is not None and "Object Lock" in result.problem.message


def test_a_public_key_object_with_later_versions_is_overwritten() -> None:
    source = MemorySource(build_chain(), pem(EC_KEY), key_later_versions=("version k-2",))
    result = check_digests(source, CHAIN, trust=pinned(EC_KEY))
    assert_problem(result, FailureKind.DIGEST_OVERWRITTEN, 1)


ObjectVersions = dict[str, list[tuple[str, bytes, dict[str, str], str | None]]]
"""key -> [(version id, body, metadata, lock mode)], oldest first."""


class FakeS3:
    """list_object_versions pages and get_object by version, as S3 answers them (versions newest first)."""

    def __init__(self, objects: ObjectVersions, markers: dict[str, str]) -> None:
        """``markers``: key -> the id of a delete marker on it."""
        self.objects = objects
        self.markers = markers
        self.fetched: list[tuple[str, str]] = []

    def get_paginator(self, name: str) -> Any:
        assert name == "list_object_versions"
        fake = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                moment = datetime(2026, 12, 1, tzinfo=UTC)  # whole seconds: every version "at once"
                versions = [
                    {"Key": key, "VersionId": version[0], "LastModified": moment}
                    for key in sorted(fake.objects)
                    for version in reversed(fake.objects[key])
                    if key.startswith(kwargs["Prefix"])
                ]
                markers = [
                    {"Key": key, "VersionId": marker, "LastModified": moment} for key, marker in fake.markers.items()
                ]
                # two pages, split inside one key's versions
                return [{"Versions": versions[:2]}, {"Versions": versions[2:], "DeleteMarkers": markers}]

        return Paginator()

    def get_object(self, Bucket: str, Key: str, VersionId: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        self.fetched.append((Key, VersionId))
        version = next(v for v in self.objects[Key] if v[0] == VersionId)

        class Body:
            def read(self) -> bytes:
                return version[1]

        lock = {} if version[3] is None else {"ObjectLockMode": version[3], "ObjectLockRetainUntilDate": T0}
        return {"Body": Body(), "Metadata": version[2], **lock}


def test_the_bucket_source_reads_every_version_and_takes_the_first() -> None:
    """Given digest 1 overwritten twice and digest 2 hidden by a delete marker, When read from the bucket, Then
    each record is its first version (body, signature and lock of that version) with the later ones named."""
    honest = build_chain(2)
    forged = b'{"forged": true}'
    objects: ObjectVersions = {
        honest[0].location: [
            ("v1-a", honest[0].body, {"signature": honest[0].signature or ""}, "COMPLIANCE"),
            ("v1-b", forged, {"signature": "Zm9yZ2Vk"}, "COMPLIANCE"),
            ("v1-c", forged, {"signature": "Zm9yZ2Vk"}, None),
        ],
        honest[1].location: [("v2-a", honest[1].body, {"signature": honest[1].signature or ""}, None)],
    }
    s3 = FakeS3(objects, {honest[1].location: "dm-1"})

    records = S3DigestSource("audit-digests", client=s3).records(CHAIN)

    assert [(r.digest_seq, r.version_id, r.body, r.locked) for r in records] == [
        (1, "v1-a", honest[0].body, True),
        (2, "v2-a", honest[1].body, False),
    ]
    assert records[0].later_versions == ("version v1-b", "version v1-c")
    assert records[1].later_versions == ("delete marker dm-1",)
    assert records[0].signature == honest[0].signature
    assert sorted(s3.fetched) == [(honest[0].location, "v1-a"), (honest[1].location, "v2-a")]


# --- continuity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [timedelta(minutes=-10), timedelta(microseconds=1)], ids=["gap", "overlap"])
def test_a_period_that_does_not_start_where_the_previous_ended_is_discontinuous(shift: timedelta) -> None:
    start = digest_timestamp(T0 + timedelta(hours=2) + shift)
    result = check(build_chain(4, d3={"period_start": start}))
    assert_problem(result, FailureKind.DIGEST_DISCONTINUOUS, 3)
    assert result.problem is not None and start in result.problem.message


def test_the_first_digest_s_period_may_start_anywhere() -> None:
    assert check(build_chain(d1={"period_start": digest_timestamp(T0 - timedelta(days=3))})).problem is None


# --- freshness --------------------------------------------------------------------------------------


def _newest(period_end: datetime) -> Digest:
    return parse_digest(build_chain(1, d1={"period_end": digest_timestamp(period_end)})[0].body)


def test_the_newest_digest_may_be_as_old_as_the_interval_plus_the_grace_and_no_older() -> None:
    policy = Freshness()
    end = T0
    limit = timedelta(seconds=DEFAULT_ANCHOR_INTERVAL_SECONDS + DEFAULT_GRACE_SECONDS)
    assert not policy.evaluate(_newest(end), None, end + limit).stale
    late = policy.evaluate(_newest(end), None, end + limit + timedelta(seconds=1))
    assert late.stale
    assert (late.reference_source, late.age_seconds) == ("now", limit.total_seconds() + 1)


def test_as_of_judges_an_old_copy_and_the_newest_event_never_lets_the_reference_go_back() -> None:
    """Given digests last made a month ago, Then stale now, fresh as of then; but a copy "as of then" whose
    database holds an event received a day later is judged as of that event."""
    end = T0
    now = T0 + timedelta(days=30)
    assert Freshness().evaluate(_newest(end), None, now).stale
    then = Freshness(as_of=end + timedelta(minutes=20))
    fresh = then.evaluate(_newest(end), digest_timestamp(end - timedelta(minutes=5)), now)
    assert (fresh.stale, fresh.reference_source) == (False, "--as-of")
    moved = then.evaluate(_newest(end), digest_timestamp(end + timedelta(days=1)), now)
    assert (moved.stale, moved.reference_source) == (True, "the newest event's received_at")
    assert moved.as_dict()["reference_time"] == digest_timestamp(end + timedelta(days=1))


def test_freshness_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        Freshness(anchor_interval_seconds=0)
    with pytest.raises(ValueError, match="time zone"):
        Freshness(as_of=datetime(2026, 1, 1))


def test_the_default_anchor_interval_is_the_template_s_schedule() -> None:
    """The default interval is the anchor's ScheduleExpression in template.yaml, and the CLI's defaults are the
    library's (they are written out in the parser so that `--help` needs no imports)."""
    from cfnlint.decode import decode  # type: ignore[import-untyped]

    template, matches = decode(str(ROOT / "template.yaml"))
    assert not matches
    schedule = template["Resources"]["AnchorFunction"]["Properties"]["Events"]["HourlySchedule"]["Properties"]
    intervals = {"cron(0 * * * ? *)": 3600, "rate(1 hour)": 3600, "rate(60 minutes)": 3600}
    assert intervals[schedule["ScheduleExpression"]] == DEFAULT_ANCHOR_INTERVAL_SECONDS
    args = build_parser().parse_args(["verify"])
    assert (args.anchor_interval, args.grace, args.as_of) == (
        DEFAULT_ANCHOR_INTERVAL_SECONDS,
        DEFAULT_GRACE_SECONDS,
        None,
    )
    as_of = build_parser().parse_args(["verify", "--as-of", "2026-11-28T09:00:00+01:00"]).as_of
    assert as_of == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "--as-of", "2026-11-28T09:00:00"])


def test_the_report_says_how_much_no_digest_covers_yet() -> None:
    newest = _newest(T0)
    report = Report(chain_id="c-1", head_seq=52, events_checked=52, events_total=52, anchored_seq=40)
    report.digests_checked, report.digests_valid, report.digests_total = True, 1, 1
    report.newest_digest = {"digest_seq": 1, "tree_size": 40, "created_at": newest.created_at,
                            "period_end": newest.period_end, "root_hash": newest.root_hash}  # fmt: skip
    report.freshness = Freshness().evaluate(newest, None, T0 + timedelta(minutes=14))

    lines = report.lines()

    assert lines[2] == f"digests from None: newest valid is digest 1 (tree size 40, period ended {newest.period_end})"
    assert lines[3] == (
        "not covered by any digest yet: 12 event(s) (seq 41..52); the newest digest's period ended 14 min before"
        " 2026-11-27T08:14:00+00:00 (now): fresh (limit 75 min: anchor interval + grace)"
    )
    document = report.as_dict()
    assert document["events"]["unanchored"] == 12
    assert document["digests"]["freshness"]["newest_digest_age_seconds"] == 840
    assert document["digests"]["freshness"]["stale"] is False


# --- the verifier under fuzzing ---------------------------------------------------------------------


def _flip(value: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(value)
    changed[position % len(changed)] ^= mask
    return bytes(changed)


@settings(max_examples=150, deadline=None)
@given(target=st.integers(1, 3), position=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_one_byte_changed_in_a_body_never_verifies(target: int, position: int, mask: int) -> None:
    """Given any one byte of digest N's body changed (its signature kept), Then digest N fails: altered, since
    its signature is authentic (the next digest pinned it), or, for the newest, an invalid signature."""
    records = build_chain()
    original = records[target - 1]
    records[target - 1] = DigestRecord(
        target, original.location, _flip(original.body, position, mask), original.signature
    )

    result = check(records)

    assert result.problem is not None
    assert result.problem.digest_seq == target
    expected = (
        {FailureKind.DIGEST_ALTERED} if target < 3 else {FailureKind.DIGEST_ALTERED, FailureKind.SIGNATURE_INVALID}
    )
    assert result.problem.kind in expected


@settings(max_examples=150, deadline=None)
@given(target=st.integers(1, 3), position=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_one_byte_changed_in_a_signature_never_verifies(target: int, position: int, mask: int) -> None:
    """Given any one byte of digest N's signature changed, Then signature_invalid at digest N."""
    records = build_chain()
    original = records[target - 1]
    assert original.signature is not None
    raw = _flip(base64.b64decode(original.signature), position, mask)
    records[target - 1] = DigestRecord(target, original.location, original.body, base64.b64encode(raw).decode())

    assert_problem(check(records), FailureKind.SIGNATURE_INVALID, target)


def test_a_key_given_to_a_source_pins_itself_and_a_pem_inside_never_does(tmp_path: Path) -> None:
    (tmp_path / "public-keys").mkdir()
    (tmp_path / "public-keys" / "0000aaaa-bbbb-cccc-dddd-eeeeffff0000.pem").write_bytes(pem(EC_KEY))
    assert not default_trust(DirectoryDigestSource(tmp_path), {}).anchored
    brought = default_trust(DirectoryDigestSource(tmp_path, public_key=der(EC_KEY)), {})
    assert set(brought.public_keys) == {fingerprint(EC_KEY)}
