"""The hourly anchor and Merkle proofs on the real database, moto S3 (Object Lock) and moto KMS (ECC P-256)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchor.digest_store import DigestStore, StoredDigest
from anchor.handler import lambda_handler as anchor_handler
from anchor.service import AnchorConflict, AnchorResult, run_anchor
from anchor.signer import KmsSigner
from audit_common.db import PostgresTransport
from audit_common.errors import BadRequest, ConfigurationError, InvalidInput
from audit_common.integrity.digest import (
    EMPTY_ROOT_HEX,
    GENESIS_CHAIN_HASH_HEX,
    digest_bytes,
    digest_key,
    parse_digest,
    public_key_key,
    verify_signature,
)
from audit_common.integrity.merkle import (
    consistency_proof,
    inclusion_proof,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)
from audit_common.merkle_store import TILE_SIZE, MerkleStore, TreeNotStored
from ingest import proofs
from tests.support.apigw import invoke, proxy_event
from tests.support.aws import moto_account
from tests.support.events import one

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "audit-digests-test"
LOCK_DAYS = 30
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@dataclass
class AnchorKit:
    """Everything a run needs, wired to moto and the test database."""

    transport: PostgresTransport
    signer: KmsSigner
    store: DigestStore
    key_arn: str
    clock: list[datetime]

    def run(self, page_events: int = 100) -> AnchorResult:
        """One hourly run, an hour after the previous one."""
        self.clock[0] += timedelta(hours=1)
        moment = self.clock[0]
        return run_anchor(
            self.transport, self.signer, self.store, chain_id="default", page_events=page_events, now=lambda: moment
        )


@pytest.fixture
def kit(transport: PostgresTransport) -> Iterator[AnchorKit]:
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        key_arn = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        yield AnchorKit(transport, KmsSigner(key_arn), DigestStore(BUCKET, LOCK_DAYS), key_arn, [T0])


def add_events(db: psycopg.Connection[Any], count: int, tag: str = "e") -> None:
    """Append events straight through the chain trigger (the checksum is any SHA-256: the tree is over checksums)."""
    db.execute(
        """
        insert into audit.audit_events (event_id, "timestamp", event_type, user_id, action, status,
                                        security_level, checksum)
        select %(tag)s || '-' || g, %(t0)s::timestamptz + make_interval(secs => g), 'file_access', 'user-' || (g %% 7),
               'read', 'success', 'low', sha256(convert_to(%(tag)s || g, 'UTF8'))
          from generate_series(1, %(count)s) g
        """,
        {"tag": tag, "count": count, "t0": T0},
    )


def all_checksums(db: psycopg.Connection[Any]) -> list[bytes]:
    return [bytes(row[0]) for row in db.execute("select checksum from audit.audit_events order by seq").fetchall()]


def s3_object(key: str) -> StoredDigest:
    response = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)
    return StoredDigest(key, response["Body"].read(), response["Metadata"]["signature"])


# --- digests ------------------------------------------------------------------------------------


def test_first_digest_of_an_empty_chain_is_signed_locked_and_recorded(kit: AnchorKit) -> None:
    # Given an empty chain, When the anchor runs
    result = kit.run()
    # Then digest 1 covers nothing, with the empty root and the genesis chain hash
    assert (result.status, result.digest_seq, result.tree_size, result.recorded) == ("written", 1, 0, "recorded")
    stored = s3_object("digests/default/0000000001.json")
    digest = parse_digest(stored.body)
    assert digest.root_hash == EMPTY_ROOT_HEX == hashlib.sha256(b"").hexdigest()
    assert digest.chain_hash == GENESIS_CHAIN_HASH_HEX
    assert digest.previous_digest_key is None and digest.previous_digest_signature is None
    assert digest.oldest_event_time is None and digest.newest_event_time is None
    assert digest.signing_key_id == kit.key_arn and digest.signing_algorithm == "ECDSA_SHA_256"
    # And the signature in the metadata verifies with KMS's public key and with the PEM beside the digests
    public_der = boto3.client("kms").get_public_key(KeyId=kit.key_arn)["PublicKey"]
    assert verify_signature(stored.body, stored.signature, public_der, "ECDSA_SHA_256")
    pem = boto3.client("s3").get_object(Bucket=BUCKET, Key=public_key_key("default", kit.key_arn))["Body"].read()
    assert verify_signature(stored.body, stored.signature, pem, "ECDSA_SHA_256")
    # And the object is under Object Lock COMPLIANCE for the configured days
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key=stored.key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == T0 + timedelta(hours=1, days=LOCK_DAYS)
    # And the database holds the same digest, and latest_digest returns it
    latest = kit.transport.call("latest_digest")
    assert latest["digest_seq"] == 1 and latest["signature"] == stored.signature
    assert digest_bytes(parse_digest(json.dumps(latest["digest"]).encode(), require_canonical=False)) == stored.body
    assert latest["public_key_pem"] == pem.decode()


def test_an_rsa_2048_key_signs_digests_too(transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
    add_events(db, 3)
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        key_arn = boto3.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        result = run_anchor(transport, KmsSigner(key_arn), DigestStore(BUCKET, LOCK_DAYS), chain_id="default")
        stored = s3_object(result.s3_key)
        public_der = boto3.client("kms").get_public_key(KeyId=key_arn)["PublicKey"]
    digest = parse_digest(stored.body)
    assert digest.signing_algorithm == "RSASSA_PKCS1_V1_5_SHA_256"
    assert verify_signature(stored.body, stored.signature, public_der, digest.signing_algorithm)
    assert not verify_signature(stored.body, stored.signature, public_der, "RSASSA_PSS_SHA_256")


def test_latest_digest_is_null_before_the_first_run(transport: PostgresTransport) -> None:
    assert transport.call("latest_digest") is None
    assert transport.call("list_digests") == []


def test_digests_chain_and_roots_match_the_full_tree(kit: AnchorKit, db: psycopg.Connection[Any]) -> None:
    # Given events arriving between hourly runs, an hour with none among them
    sizes: list[int] = []
    for batch in (300, 0, 1000, 1, 255, 0, 769):
        add_events(db, batch, tag=f"b{len(sizes)}")
        sizes.append(kit.run().tree_size)
    # Then every digest's root is the Merkle root over all checksums up to its size
    checksums = all_checksums(db)
    assert sizes == [300, 300, 1300, 1301, 1556, 1556, 2325]
    digests = kit.transport.call("list_digests")
    assert [d["digest_seq"] for d in digests] == list(range(1, 8))
    previous: dict[str, Any] | None = None
    for row in digests:
        stored = s3_object(row["s3_key"])
        digest = parse_digest(stored.body)
        assert digest.root_hash == merkle_root(checksums[: digest.tree_size]).hex() == row["root_hash"]
        chain_hash = one(db, "select chain_hash from audit.audit_events where seq = %s", (digest.tree_size,))[0]
        assert digest.chain_hash == bytes(chain_hash).hex()
        assert verify_signature(stored.body, row["signature"], row["public_key_pem"], digest.signing_algorithm)
        # And each names the previous digest's key, signature and size
        if previous is None:
            assert digest.previous_digest_key is None
        else:
            assert digest.previous_digest_key == previous["s3_key"]
            assert digest.previous_digest_signature == previous["signature"]
            assert digest.previous_tree_size == previous["tree_size"]
            assert digest.period_start == previous["digest"]["period_end"]
        previous = row
    # And an hour without events still wrote a digest, with no event times
    empty = parse_digest(s3_object(digests[1]["s3_key"]).body)
    assert (empty.tree_size, empty.previous_tree_size, empty.oldest_event_time) == (300, 300, None)
    # And event times name the new events' range
    third = parse_digest(s3_object(digests[2]["s3_key"]).body)
    assert third.oldest_event_time == "2026-11-27T08:00:01.000000Z"
    assert third.newest_event_time == "2026-11-27T08:16:40.000000Z"


def test_a_run_reads_only_the_new_events_and_the_open_tile(kit: AnchorKit, db: psycopg.Connection[Any]) -> None:
    add_events(db, 5 * TILE_SIZE + 17, tag="history")
    first = kit.run()
    assert first.leaves_read == 5 * TILE_SIZE + 17
    add_events(db, 40, tag="new")
    second = kit.run()
    # 17 leaves of the open tile plus the 40 new ones, not the 1297 before them
    assert (second.new_events, second.leaves_read) == (40, 57)
    assert second.root_hash == merkle_root(all_checksums(db)).hex()
    # And every stored tile node is the root of its subtree over all checksums
    checksums = all_checksums(db)
    for level, index, node in db.execute("select level, node_index, hash from audit.merkle_nodes").fetchall():
        start = index << level
        assert bytes(node) == merkle_root(checksums[start : start + (1 << level)]), (level, index)


@pytest.mark.parametrize("page_events", [1, 7, 256, 1000])
def test_paging_does_not_change_the_root(kit: AnchorKit, db: psycopg.Connection[Any], page_events: int) -> None:
    add_events(db, 777)
    assert kit.run(page_events=page_events).root_hash == merkle_root(all_checksums(db)).hex()


# --- retry safety -------------------------------------------------------------------------------


class CrashOnRecord:
    """A transport that loses the connection exactly when the digest is being recorded."""

    def __init__(self, inner: PostgresTransport) -> None:
        self.inner = inner

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        if function == "record_digest":
            raise ConnectionError("lost the database after the S3 write")
        return self.inner.call(function, args)

    def close(self) -> None:
        self.inner.close()


def test_retry_after_a_crash_between_s3_and_db_adopts_the_written_digest(
    kit: AnchorKit, db: psycopg.Connection[Any]
) -> None:
    # Given digest 1, then a run that wrote digest 2 to S3 and died before recording it
    add_events(db, 100, tag="a")
    kit.run()
    add_events(db, 50, tag="b")
    with pytest.raises(ConnectionError):
        run_anchor(CrashOnRecord(kit.transport), kit.signer, kit.store, chain_id="default", now=lambda: T0)
    orphan = s3_object(digest_key("default", 2))
    assert kit.transport.call("latest_digest")["digest_seq"] == 1
    # When more events arrive and the retry runs
    add_events(db, 25, tag="c")
    retry = kit.run()
    # Then it records the digest already in S3 (same bytes, same signature) instead of signing another 2
    assert (retry.status, retry.digest_seq, retry.tree_size, retry.recorded) == ("adopted", 2, 150, "recorded")
    latest = kit.transport.call("latest_digest")
    assert latest["signature"] == orphan.signature
    assert digest_bytes(parse_digest(json.dumps(latest["digest"]).encode(), require_canonical=False)) == orphan.body
    versions = boto3.client("s3").list_object_versions(Bucket=BUCKET, Prefix=digest_key("default", 2))
    assert len(versions["Versions"]) == 1
    # And the next run continues the chain with the 25 newer events
    following = kit.run()
    assert (following.status, following.digest_seq, following.tree_size) == ("written", 3, 175)
    assert parse_digest(s3_object(following.s3_key).body).previous_digest_signature == orphan.signature


def test_a_run_that_loses_the_race_for_a_digest_adopts_the_winner(kit: AnchorKit, db: psycopg.Connection[Any]) -> None:
    add_events(db, 10)

    class RacingStore(DigestStore):
        """Lets a competing run write and record digest N between this run's look and its write."""

        raced = False

        def put_digest(self, key: str, body: bytes, signature: str, retain_until: datetime) -> bool:
            if not self.raced:
                self.raced = True
                add_events(db, 5, tag="late")
                competitor = run_anchor(kit.transport, kit.signer, kit.store, chain_id="default", now=lambda: T0)
                assert competitor.tree_size == 15
            return super().put_digest(key, body, signature, retain_until)

    result = run_anchor(kit.transport, kit.signer, RacingStore(BUCKET, LOCK_DAYS), chain_id="default", now=lambda: T0)
    # The loser's conditional write was refused; it adopted the winner's digest 1 (already recorded)
    assert (result.status, result.digest_seq, result.tree_size, result.recorded) == (
        "adopted",
        1,
        15,
        "already_recorded",
    )
    assert [d["tree_size"] for d in kit.transport.call("list_digests")] == [15]
    versions = boto3.client("s3").list_object_versions(Bucket=BUCKET, Prefix="digests/default/0")
    assert len(versions["Versions"]) == 1


def _put_raw(key: str, body: bytes, signature: str) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body, Metadata={"signature": signature})


def test_a_foreign_object_at_the_next_key_stops_the_run(kit: AnchorKit, db: psycopg.Connection[Any]) -> None:
    kit.run()
    add_events(db, 20)
    # A digest 2 signed by another key (someone with write access to the bucket, not to KMS)
    other = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    first = kit.transport.call("latest_digest")
    forged_fields = {
        **first["digest"],
        "digest_seq": 2,
        "tree_size": 20,
        "previous_tree_size": 0,
        "root_hash": merkle_root(all_checksums(db)).hex(),
        "chain_hash": bytes(one(db, "select chain_hash from audit.chain_head")[0]).hex(),
        "oldest_event_time": "2026-11-27T08:00:01.000000Z",
        "newest_event_time": "2026-11-27T08:00:20.000000Z",
        "previous_digest_key": first["s3_key"],
        "previous_digest_signature": first["signature"],
    }
    forged = parse_digest(json.dumps(forged_fields).encode(), require_canonical=False)
    body = digest_bytes(forged)
    foreign_signature = base64.b64encode(
        boto3.client("kms").sign(KeyId=other, Message=body, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")[
            "Signature"
        ]
    ).decode()
    _put_raw(digest_key("default", 2), body, foreign_signature)
    with pytest.raises(AnchorConflict, match="does not verify"):
        kit.run()
    # Garbage is refused too, and nothing is recorded either way
    _put_raw(digest_key("default", 2), b"{}", foreign_signature)
    with pytest.raises(AnchorConflict, match="not a digest"):
        kit.run()
    assert kit.transport.call("latest_digest")["digest_seq"] == 1


# --- the database refuses digests that do not continue the chain -----------------------------------


def _record(transport: PostgresTransport, digest: dict[str, Any], key: str, signature: str = "c2ln") -> Any:
    return transport.call(
        "record_digest",
        {
            "p_digest": digest,
            "p_s3_key": key,
            "p_signature": signature,
            "p_public_key_pem": "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n",
            "p_public_key_s3_key": "digests/default/public-keys/k.pem",
        },
    )


def test_record_digest_refuses_gaps_shrinking_trees_broken_links_and_wrong_chain_hashes(
    kit: AnchorKit, db: psycopg.Connection[Any]
) -> None:
    add_events(db, 30)
    kit.run()
    last = kit.transport.call("latest_digest")
    chain_hash_20 = bytes(one(db, "select chain_hash from audit.audit_events where seq = 20")[0]).hex()
    good = {
        **last["digest"],
        "digest_seq": 2,
        "previous_tree_size": 30,
        "oldest_event_time": None,
        "newest_event_time": None,
        "previous_digest_key": last["s3_key"],
        "previous_digest_signature": last["signature"],
    }
    cases = {
        "does not follow": {**good, "digest_seq": 3},
        "goes backwards": {**good, "tree_size": 20, "chain_hash": chain_hash_20},
        "does not link": {**good, "previous_digest_signature": "b3RoZXI="},
        "beyond the chain head": {**good, "tree_size": 31},
        "chain_hash": {**good, "chain_hash": "00" * 32},
    }
    for message, digest in cases.items():
        with pytest.raises(InvalidInput, match=message):
            _record(kit.transport, digest, "digests/default/0000000002.json")
    # The same digest recorded twice is harmless; another digest 1 is a fork and refused
    again = _record(kit.transport, last["digest"], last["s3_key"], last["signature"])
    assert again == {"status": "already_recorded", "digest_seq": 1}
    with pytest.raises(InvalidInput, match="fork"):
        _record(kit.transport, last["digest"], last["s3_key"], "b3RoZXI=")
    assert _record(kit.transport, good, "digests/default/0000000002.json")["status"] == "recorded"


def test_digests_and_tiles_are_append_only_even_for_the_owner(kit: AnchorKit, db: psycopg.Connection[Any]) -> None:
    add_events(db, TILE_SIZE)
    kit.run()
    for statement in (
        "update audit.digests set tree_size = 0",
        "delete from audit.digests",
        "truncate audit.digests",
        "update audit.merkle_nodes set hash = sha256('x')",
        "delete from audit.merkle_nodes",
        "delete from audit.signing_keys",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(statement)
    # And a tile cannot be stored again with another hash (the chain would have changed under it)
    with pytest.raises(InvalidInput, match="different hash"):
        kit.transport.call("merkle_store_nodes", {"p_nodes": [{"level": 8, "index": 0, "hash": "11" * 32}]})


def test_only_service_role_runs_the_anchor_api(db: psycopg.Connection[Any]) -> None:
    for role in ("anon", "authenticated"):
        for call in ("audit.latest_digest()", "audit.record_digest('{}', 'k', 's', 'p', 'k')", "audit.anchor_state()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
                db.execute(f"set local role {role}")
                db.execute(f"select {call}")


# --- proofs -------------------------------------------------------------------------------------


def test_inclusion_and_consistency_proofs_from_the_store_match_the_full_tree(
    kit: AnchorKit, db: psycopg.Connection[Any]
) -> None:
    rng = random.Random(6)
    for batch in (0, 3, 254, 1, 1030, 513, 0, 2048, 77):
        add_events(db, batch, tag=f"p{batch}-{rng.random()}")
        kit.run()
    checksums = all_checksums(db)
    digests = kit.transport.call("list_digests")
    store = MerkleStore(kit.transport)
    for row in digests:
        size = row["tree_size"]
        assert store.root(size).hex() == row["root_hash"]
        for index in {0, size - 1, *(rng.randrange(size) for _ in range(5))} if size else ():
            proof = store.inclusion_proof(index, size)
            assert proof == inclusion_proof(index, checksums[:size])
            assert verify_inclusion(index, size, checksums[index], proof, bytes.fromhex(row["root_hash"]))
    for _ in range(25):
        old, new = sorted(rng.sample(digests, 2), key=lambda d: d["digest_seq"])
        proof = store.consistency_proof(old["tree_size"], new["tree_size"])
        assert proof == consistency_proof(old["tree_size"], checksums[: new["tree_size"]])
        assert verify_consistency(
            old["tree_size"],
            new["tree_size"],
            bytes.fromhex(old["root_hash"]),
            bytes.fromhex(new["root_hash"]),
            proof,
        )
    # Beyond the stored tiles (no digest covers it) the store says so instead of guessing
    add_events(db, 3 * TILE_SIZE, tag="unanchored")
    with pytest.raises(TreeNotStored):
        store.inclusion_proof(0, len(checksums) + 3 * TILE_SIZE)


def test_proof_route_serves_a_proof_that_verifies_offline(
    kit: AnchorKit, db: psycopg.Connection[Any], configured: str
) -> None:
    from ingest.handler import lambda_handler as ingest_handler

    def get(path: str) -> Any:
        return invoke(ingest_handler, proxy_event("GET", path))

    # Before any digest: 409; unknown event: 404
    add_events(db, 600, tag="r")
    before = get("/events/r-17/proof")
    assert before.status == 409 and "no digest" in before.body["error"]["message"]
    assert get("/events/nope/proof").status == 404
    kit.run()
    add_events(db, 5, tag="late")
    # After the anchor: a proof that verifies with nothing but the response
    response = get("/events/r-417/proof")
    assert response.status == 200
    body = response.body
    assert (body["seq"], body["leaf_index"], body["tree_size"]) == (417, 416, 600)
    signed = body["digest"]
    digest_body = digest_bytes(parse_digest(json.dumps(signed["digest"]).encode(), require_canonical=False))
    assert digest_body == s3_object(signed["s3_key"]).body
    assert verify_signature(
        digest_body, signed["signature"], signed["public_key_pem"], signed["digest"]["signing_algorithm"]
    )
    proof = [bytes.fromhex(node) for node in body["inclusion_proof"]]
    root = bytes.fromhex(signed["digest"]["root_hash"])
    assert verify_inclusion(416, 600, bytes.fromhex(body["checksum"]), proof, root)
    # One byte changed anywhere in the served proof, and it no longer verifies
    for which in range(len(proof)):
        altered = [*proof[:which], bytes([proof[which][0] ^ 1]) + proof[which][1:], *proof[which + 1 :]]
        assert not verify_inclusion(416, 600, bytes.fromhex(body["checksum"]), altered, root)
    # An event newer than the digest: 409, the next anchor run covers it
    late = get("/events/late-1/proof")
    assert late.status == 409 and "not covered" in late.body["error"]["message"]
    kit.run()
    assert get("/events/late-1/proof").status == 200
    # Against an explicit older digest, and consistency between the two
    assert get("/events/r-417/proof?digest_seq=1").body["digest"]["digest"]["digest_seq"] == 1
    consistency = get("/integrity/consistency?from=1&to=2").body
    # 600 + 5 late events + the record of the first successful proof read (the audit of the audit)
    assert (consistency["old_size"], consistency["new_size"]) == (600, 606)
    assert verify_consistency(
        600,
        606,
        bytes.fromhex(consistency["old_root"]),
        bytes.fromhex(consistency["new_root"]),
        [bytes.fromhex(node) for node in consistency["consistency_proof"]],
    )
    assert get("/integrity/consistency?from=2&to=1").status == 400
    assert get("/events/r-1/proof?digest_seq=9").status == 404


def test_a_rewritten_chain_no_longer_proves_against_the_signed_root(
    kit: AnchorKit, db: psycopg.Connection[Any]
) -> None:
    add_events(db, 300)
    kit.run()
    # A superuser rewrites an event's checksum (bypassing the append-only trigger)
    db.execute("alter table audit.audit_events disable trigger audit_events_append_only")
    db.execute("update audit.audit_events set checksum = sha256('forged') where seq = 290")
    with pytest.raises(proofs.ProofMismatch):
        proofs.inclusion(kit.transport, "e-290")


# --- the handler -------------------------------------------------------------------------------


def test_handler_runs_from_the_sample_schedule_event(
    kit: AnchorKit, db: psycopg.Connection[Any], configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit_common.settings import get_settings

    class Context:
        function_name = "AnchorFunction"
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:AnchorFunction"
        aws_request_id = "req-1"

    event = json.loads((ROOT / "events" / "anchor" / "hourly_schedule.json").read_text())
    # Without a bucket the run refuses to start
    with pytest.raises(ConfigurationError, match="AUDIT_DIGEST_BUCKET"):
        anchor_handler(event, Context())
    monkeypatch.setenv("AUDIT_DIGEST_BUCKET", BUCKET)
    monkeypatch.setenv("AUDIT_SIGNING_KEY_ID", kit.key_arn)
    get_settings.cache_clear()
    add_events(db, 12)
    result = anchor_handler(event, Context())
    assert (result["status"], result["digest_seq"], result["tree_size"]) == ("written", 1, 12)
    with pytest.raises(BadRequest, match="action"):
        anchor_handler({"action": "retention"}, Context())


# --- the verifier side, fuzzed: altered proofs, indexes, sizes and roots are refused -----------------

_FUZZ_CHECKSUMS = [hashlib.sha256(f"fuzz-{i}".encode()).digest() for i in range(300)]


def _flip(value: bytes, position: int, mask: int) -> bytes:
    altered = bytearray(value)
    altered[position % len(altered)] ^= mask
    return bytes(altered)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(min_value=1, max_value=300),
    data=st.data(),
    mask=st.integers(min_value=1, max_value=255),
)
def test_verify_inclusion_rejects_every_alteration(size: int, data: st.DataObject, mask: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = _FUZZ_CHECKSUMS[:size]
    root = merkle_root(leaves)
    proof = inclusion_proof(index, leaves)
    assert verify_inclusion(index, size, leaves[index], proof, root)
    position = data.draw(st.integers(min_value=0, max_value=10_000))
    assert not verify_inclusion(index, size, _flip(leaves[index], position, mask), proof, root)
    assert not verify_inclusion(index, size, leaves[index], proof, _flip(root, position, mask))
    if proof:
        which = position % len(proof)
        altered = [*proof[:which], _flip(proof[which], position // 7, mask), *proof[which + 1 :]]
        assert not verify_inclusion(index, size, leaves[index], altered, root)
        assert not verify_inclusion(index, size, leaves[index], proof[:-1], root)
    assert not verify_inclusion(index, size, leaves[index], [*proof, proof[0] if proof else root], root)
    other_index = data.draw(st.integers(min_value=0, max_value=size))
    if other_index != index:
        assert not verify_inclusion(other_index, size, leaves[index], proof, root)
    # Another size: the proof does not lead to that tree's root. (The size itself is bound by the signed
    # digest, not by the proof: see test_tree_size_is_bound_by_the_signature_not_by_the_proof.)
    other_size = data.draw(st.integers(min_value=index + 1, max_value=300))
    if other_size != size:
        assert not verify_inclusion(index, other_size, leaves[index], proof, merkle_root(_FUZZ_CHECKSUMS[:other_size]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    new_size=st.integers(min_value=1, max_value=300),
    data=st.data(),
    mask=st.integers(min_value=1, max_value=255),
)
def test_verify_consistency_rejects_every_alteration(new_size: int, data: st.DataObject, mask: int) -> None:
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    leaves = _FUZZ_CHECKSUMS[:new_size]
    old_root, new_root = merkle_root(leaves[:old_size]), merkle_root(leaves)
    proof = consistency_proof(old_size, leaves)
    assert verify_consistency(old_size, new_size, old_root, new_root, proof)
    position = data.draw(st.integers(min_value=0, max_value=10_000))
    assert not verify_consistency(old_size, new_size, _flip(old_root, position, mask), new_root, proof)
    assert not verify_consistency(old_size, new_size, old_root, _flip(new_root, position, mask), proof)
    if proof:
        which = position % len(proof)
        altered = [*proof[:which], _flip(proof[which], position // 7, mask), *proof[which + 1 :]]
        assert not verify_consistency(old_size, new_size, old_root, new_root, altered)
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, proof[0]])
    shifted_old = data.draw(st.integers(min_value=0, max_value=new_size))
    if shifted_old != old_size:
        assert not verify_consistency(shifted_old, new_size, old_root, new_root, proof)
    shifted_new = data.draw(st.integers(min_value=old_size, max_value=300))
    if shifted_new != new_size:
        shifted_root = merkle_root(_FUZZ_CHECKSUMS[:shifted_new])
        assert not verify_consistency(old_size, shifted_new, old_root, shifted_root, proof)


def test_tree_size_is_bound_by_the_signature_not_by_the_proof() -> None:
    """RFC 9162's algorithms read only the shape of the path from the size: trees of 129 and 130 leaves share it
    for leaf 0, so a proof against the 130-leaf root also "verifies" for a claimed size of 129. That is why a
    verifier takes tree_size and root_hash together from the signed digest, never the size from elsewhere."""
    leaves = _FUZZ_CHECKSUMS[:130]
    root = merkle_root(leaves)
    assert verify_inclusion(0, 129, leaves[0], inclusion_proof(0, leaves), root)
    assert verify_consistency(1, 129, merkle_root(leaves[:1]), root, consistency_proof(1, leaves))
    assert not verify_inclusion(0, 129, leaves[0], inclusion_proof(0, leaves), merkle_root(leaves[:129]))


# --- docs/integrity.md section 8: the third party's own code works on what the anchor writes ------------


def _doc_python_blocks(section: str) -> list[str]:
    text = (ROOT / "docs" / "integrity.md").read_text()
    start = text.index(section)
    end = text.find("\n### ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return [block.split("\n", 1)[1] for block in body.split("```python")[1:] for block in [block.split("```")[0]]]


def test_the_documented_offline_checks_pass_on_real_digests_and_catch_a_rewrite(
    kit: AnchorKit, db: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for batch in (0, 700, 0, 300):
        add_events(db, batch, tag=f"d{batch}")
        kit.run()
    (tmp_path / "digests").mkdir()
    for row in kit.transport.call("list_digests"):
        (tmp_path / "digests" / row["s3_key"].rsplit("/", 1)[1]).write_bytes(s3_object(row["s3_key"]).body)
    (tmp_path / "checksums.txt").write_text("\n".join(c.hex() for c in all_checksums(db)))
    monkeypatch.chdir(tmp_path)
    (chain_check,) = _doc_python_blocks("### 8.5")
    exec(compile(chain_check, "integrity.md 8.5", "exec"), {})  # noqa: S102 - the documented snippet itself

    (inclusion_check,) = _doc_python_blocks("### 8.6")
    namespace: dict[str, Any] = {}
    exec(compile(inclusion_check, "integrity.md 8.6", "exec"), namespace)  # noqa: S102
    checksums = all_checksums(db)
    proof = MerkleStore(kit.transport).inclusion_proof(411, 1000)
    root = merkle_root(checksums)
    assert namespace["verify_inclusion"](411, 1000, checksums[411], proof, root)
    assert not namespace["verify_inclusion"](411, 1000, checksums[412], proof, root)

    # A superuser's consistent rewrite of one checksum fails the documented root check
    (tmp_path / "checksums.txt").write_text(
        "\n".join(("00" * 32 if i == 5 else c.hex()) for i, c in enumerate(checksums))
    )
    with pytest.raises(AssertionError):
        exec(compile(chain_check, "integrity.md 8.5", "exec"), {})  # noqa: S102
