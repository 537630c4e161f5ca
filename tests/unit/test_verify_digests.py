"""The digest checks of `audit-trail verify` (audit_trail.verify_digests), with local keys: no AWS, no database.

Includes a hypothesis fuzz of the verifier (not only of the signer): any one byte changed in a digest's body
or signature makes it fail, at that digest, as ``digest_altered`` or ``signature_invalid``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_common.integrity import FailureKind
from audit_common.integrity.digest import Digest, digest_bytes, digest_key, digest_timestamp, parse_digest
from audit_trail.verify_digests import DigestCheck, DigestRecord, check_digests

CHAIN = "default"
KEY_ID = "arn:aws:kms:eu-west-1:111122223333:key/0000aaaa-bbbb-cccc-dddd-eeeeffff0000"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(body: bytes, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass
class MemorySource:
    """A DigestSource over records in memory."""

    records_: list[DigestRecord]
    key: bytes | None
    description: str = "memory"
    asked: list[str] = field(default_factory=list)

    def chain_ids(self) -> list[str]:
        return [CHAIN]

    def records(self, chain_id: str) -> list[DigestRecord]:
        return list(self.records_)

    def public_key(self, chain_id: str, signing_key_id: str) -> bytes | None:
        self.asked.append(signing_key_id)
        return self.key


def build_chain(
    count: int = 3, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = EC_KEY, **changes: dict[str, object]
) -> list[DigestRecord]:
    """``count`` digests, 10 events each, properly signed and chained; ``changes`` patch digest N before signing."""
    algorithm = "ECDSA_SHA_256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSASSA_PKCS1_V1_5_SHA_256"
    records: list[DigestRecord] = []
    previous: tuple[str, str, int] | None = None
    for number in range(1, count + 1):
        moment = T0 + timedelta(hours=number)
        fields: dict[str, object] = {
            "chain_id": CHAIN,
            "digest_seq": number,
            "tree_size": 10 * number,
            "root_hash": f"{number:02x}" * 32,
            "chain_hash": f"{number + 16:02x}" * 32,
            "previous_tree_size": 0 if previous is None else previous[2],
            "period_start": digest_timestamp(moment - timedelta(hours=1)),
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
        previous = (digest_key(CHAIN, number), signature, int(str(fields["tree_size"])))
    return records


def check(records: list[DigestRecord], key: bytes | None = None, **options: object) -> DigestCheck:
    return check_digests(MemorySource(records, pem(EC_KEY) if key is None else key), CHAIN, **options)  # type: ignore[arg-type]


def assert_problem(result: DigestCheck, kind: FailureKind, digest_seq: int) -> None:
    assert result.problem is not None
    assert (result.problem.kind, result.problem.digest_seq) == (kind, digest_seq), result.problem
    assert [digest.digest_seq for digest in result.proven] == list(range(1, digest_seq))


def test_a_signed_chain_of_digests_is_proven() -> None:
    result = check(build_chain())
    assert result.problem is None
    assert [digest.tree_size for digest in result.proven] == [10, 20, 30]
    assert list(result.fingerprints) == [KEY_ID]


def test_rsa_signed_digests_are_proven_too() -> None:
    assert check(build_chain(key=RSA_KEY), key=pem(RSA_KEY)).problem is None


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


def test_without_a_public_key_nothing_is_proven() -> None:
    result = check_digests(MemorySource(build_chain(), None), CHAIN)
    assert_problem(result, FailureKind.SIGNATURE_INVALID, 1)


def test_the_wrong_public_key_is_an_invalid_signature_not_an_altered_digest() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assert_problem(check(build_chain(), key=pem(other)), FailureKind.SIGNATURE_INVALID, 1)


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
