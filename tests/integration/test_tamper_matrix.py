"""The tamper matrix of issue 14: every class of tampering that once passed `audit-trail verify`, and what it is now.

One real trail is built per module (seal version 2 by ``event_store.store_events``, redactions by the
database's own functions, so the chain holds redaction records, and three digests by the real anchor in an
Object-Locked moto bucket, signed by a moto KMS key); every case gets a copy of that database, tampers with it
as a database superuser, and takes the verdict three ways: ``verify_offline`` with the bucket (the default),
``audit-trail verify --digest-bucket`` with the key fingerprint published in ``AUDIT_SIGNING_KEY_FINGERPRINTS``,
and ``audit-trail verify --digests-dir`` over a ``--save-digests`` copy with ``--public-key`` from KMS. Each must
name the same failure kind at the same first bad seq (or digest).

The trail (seq: what it is):

* 1-10 events; 2 has tags [gdpr, hipaa]; 5 was sealed with 198.51.100.7, 6 with 198.51.100.0; 7 holds the
  numbers 9007199254740992 and 0.1 in details. Digest 1 (tree size 10).
* 11 the redaction record of 3 and 4 (erasure).
* 12-21 events; 14 and 15 are subject-7's (tags [gdpr, iso_27001]). 22 the record of their erasure
  (``audit.erase_subject``). Digest 2 (tree size 22).
* 23-32 events; 33 the record of 24's redaction (retention). Digest 3 (tree size 33).
* 34-38 events, 39 the record of 8's and 35's redaction (retention): rows no digest covers yet. Head 39.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from audit_trail.postgres import create_database, drop_database
from tests.support.aws import moto_account
from tests.support.events import make_event
from tests.support.trail import (
    ANY,
    VALID,
    Anchorer,
    Evidence,
    Expected,
    Superuser,
    assert_verdicts,
    create_signing_key,
    database_copy,
    library_verify,
    public_key_der,
    published_fingerprint,
    save_digests,
    seal_event,
)

pytestmark = pytest.mark.xdist_group("tamper-matrix")

BUCKET = "audit-digests-tamper-matrix"
HEAD = 39
REDACTED = (3, 4, 8, 14, 15, 24, 35)
TAGS_SEQ, REDACTED_SEQ, IPV4_SEQ, NETWORK_SEQ, NUMBERS_SEQ, UNREDACTED_SEQ = 2, 3, 5, 6, 7, 9
PLAIN_SEQ, TAIL_SEQ = 17, 36
SUBJECT, SUBJECT_SEQS, SUBJECT_RECORD = "subject-7", (14, 15), 22
RETENTION_SEQ, RETENTION_RECORD = 24, 33
TAIL_RECORD = 39  # names seq 8 (anchored by digest 1) and 35 (not anchored)


def _event(n: int, **overrides: Any) -> AuditEventIn:
    return AuditEventIn.model_validate(make_event(n, **overrides))


def _event_id(n: int) -> str:
    return str(make_event(n)["event_id"])


def _overrides(n: int) -> dict[str, Any]:
    overrides: dict[int, dict[str, Any]] = {
        4: {"ip_address": "198.51.100.7"},
        5: {"ip_address": "198.51.100.0"},
        6: {"details": {"big": 9007199254740992, "ratio": 0.1, "department": "legal"}},
        12: {"user_id": SUBJECT, "compliance_tags": ["iso_27001", "gdpr"]},
        13: {"user_id": SUBJECT, "compliance_tags": ["gdpr", "iso_27001"]},
    }
    return overrides.get(n, {})


def _store(transport: PostgresTransport, numbers: range) -> None:
    event_store.store_events(transport, [_event(n, **_overrides(n)) for n in numbers])


def _redact(transport: PostgresTransport, numbers: list[int], reason: str, ref: str) -> None:
    transport.call(
        "redact_events",
        {"p_event_ids": [_event_id(n) for n in numbers], "p_reason": reason, "p_actor": "dpo", "p_ref": ref},
    )


def build_trail(transport: PostgresTransport, anchorer: Anchorer) -> None:
    """The trail of the module docstring, through the code paths production uses."""
    _store(transport, range(10))  # seq 1-10
    assert anchorer.anchor().tree_size == 10
    _redact(transport, [2, 3], "erasure", "ticket-1")  # seq 3 and 4; record 11
    _store(transport, range(10, 20))  # seq 12-21
    erased = transport.call("erase_subject", {"p_user_id": SUBJECT, "p_actor": "dpo", "p_request_id": "req-1"})
    assert erased["redacted"] == 2, erased  # record 22
    assert anchorer.anchor().tree_size == 22
    _store(transport, range(20, 30))  # seq 23-32
    _redact(transport, [21], "retention", "run-1")  # seq 24; record 33
    assert anchorer.anchor().tree_size == 33
    _store(transport, range(30, 35))  # seq 34-38
    _redact(transport, [7, 31], "retention", "run-2")  # seq 8 and 35; record 39


@dataclass(frozen=True)
class Built:
    template: str
    server_url: str
    evidence: Evidence


@pytest.fixture(scope="module")
def built(pg_server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The trail, anchored, in a database of its own (each case copies it), and the auditor's evidence."""
    stack = contextlib.ExitStack()
    name = f"audit_matrix_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name, template=template_db)
    try:
        with moto_account():
            boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
            key_arn = create_signing_key()
            stack.enter_context(published_fingerprint(key_arn))
            transport = PostgresTransport(url, role="service_role")
            try:
                build_trail(transport, Anchorer(transport, key_arn, BUCKET))
            finally:
                transport.close()
            directory = tmp_path_factory.mktemp("tamper-evidence")
            save_digests(url, BUCKET, directory / "saved")
            key_file = directory / "kms-public-key.der"  # fetched from KMS by the auditor, not found in the copy
            key_file.write_bytes(public_key_der(key_arn))
            yield Built(name, pg_server_url, Evidence(BUCKET, key_arn, directory / "saved", key_file))
    finally:
        stack.close()
        drop_database(pg_server_url, name)


@pytest.fixture
def case_url(built: Built) -> Iterator[str]:
    with database_copy(built.server_url, built.template) as url:
        yield url


# --- the control ----------------------------------------------------------------------------------


def test_the_built_trail_is_what_the_cases_assume(case_url: str) -> None:
    """Given the trail, When read as a superuser, Then redactions, records, seal versions and head are as laid out."""
    with Superuser(case_url) as su:
        assert su.scalar("select seq from audit.chain_head") == HEAD == su.max_seq()
        redacted = su.conn.execute("select seq from audit.audit_events where redacted_at is not null order by seq")
        assert tuple(seq for (seq,) in redacted) == REDACTED
        assert su.scalar("select count(*) from audit.audit_events where seal_version <> 2") == 0
        records = su.conn.execute(
            "select seq, details, compliance_tags from audit.audit_events"
            " where event_type = 'system_event' and action = 'events_redacted' order by seq"
        ).fetchall()
        assert records == [
            (11, {"count": 2, "reason": "erasure", "seqs": [[3, 4]], "v1_seqs": []}, ["gdpr"]),
            (SUBJECT_RECORD, {"count": 2, "reason": "erasure", "seqs": [[14, 15]], "v1_seqs": []}, ["gdpr"]),
            (RETENTION_RECORD, {"count": 1, "reason": "retention", "seqs": [[24, 24]], "v1_seqs": []}, []),
            (TAIL_RECORD, {"count": 2, "reason": "retention", "seqs": [[8, 8], [35, 35]], "v1_seqs": []}, []),
        ]
        assert su.scalar("select host(ip_address) from audit.audit_events where seq = %s", (IPV4_SEQ,)) == (
            "198.51.100.7"
        )
        assert su.scalar("select compliance_tags from audit.audit_events where seq = 14") == ["gdpr", "iso_27001"]


def test_an_untouched_trail_with_redactions_and_records_passes(built: Built, case_url: str) -> None:
    """Given the untouched trail (7 redacted rows, 4 redaction records, 3 digests), When verified every way,
    Then valid and exit 0, with every row counted."""
    assert_verdicts(case_url, built.evidence, VALID)

    report = library_verify(case_url, BUCKET)
    assert report.summary() == f"3/3 digests valid, {HEAD}/{HEAD} events valid, {len(REDACTED)} redacted"
    assert report.anchored_seq == 33


# --- the cases --------------------------------------------------------------------------------------

Tamper = Callable[[Superuser], None]


def sql(*statements: str) -> Tamper:
    return lambda su: su.sql(*statements)


def update(seq: int, assignments: str) -> Tamper:
    return sql(f"update audit.audit_events set {assignments} where seq = {seq}")


def _forge_past_head(su: Superuser) -> None:
    """A forged event at head + 1: sealed, checksummed and linked to the head like a real one."""
    forged = make_event(99, event_id="forged-past-head", action="grant_role", event_type="permission_change")
    su.insert_sealed(HEAD + 1, AuditEventIn.model_validate(forged).sealed_record())


def _roll_back_to_last_digest_and_garble(su: Superuser) -> None:
    """The head set back to digest 3's tree size, and every row after it garbled (no longer a chain at all)."""
    su.set_head(33)
    su.sql(
        "update audit.audit_events set action = 'garbled', checksum = sha256(checksum), chain_hash = sha256(chain_hash)"
        " where seq > 33"
    )


def _insert_forged_event(su: Superuser) -> None:
    """Seqs 20.. shifted up by one and a forged, properly sealed and linked event put at seq 20."""
    su.sql(
        "update audit.audit_events set seq = -seq where seq >= 20",
        "update audit.audit_events set seq = 1 - seq where seq < 0",
        "update audit.chain_head set seq = seq + 1",
    )
    forged = make_event(98, event_id="forged-1", action="grant_role", event_type="permission_change")
    su.insert_sealed(20, AuditEventIn.model_validate(forged).sealed_record())


def _recompute_checksum_only(seq: int, assignments: str) -> Tamper:
    """A payload change with its checksum recomputed (salted seal included) but the chain hash left alone."""

    def tamper(su: Superuser) -> None:
        su.sql(f"update audit.audit_events set {assignments} where seq = {seq}")
        commitment, checksum = seal_event(su.event(seq))
        su.conn.execute(
            "update audit.audit_events set checksum = %s, payload_commitment = coalesce(%s, payload_commitment)"
            " where seq = %s",
            (checksum, commitment, seq),
        )

    return tamper


def _rewrite_and_reseal(seq: int, assignments: str) -> Tamper:
    """Rewrite a row and recompute every seal, checksum, link and the head from it on: a consistent rewrite."""

    def tamper(su: Superuser) -> None:
        su.sql(f"update audit.audit_events set {assignments} where seq = {seq}")
        su.reseal(seq)

    return tamper


def _rewrite_everything(su: Superuser) -> None:
    su.sql("update audit.audit_events set user_id = 'someone-else'")
    su.reseal(1)


def _truncate_consistently(su: Superuser) -> None:
    su.sql("delete from audit.audit_events where seq > 30")
    su.reseal(30)


def _delete_tail_record_and_head(su: Superuser) -> None:
    """The newest redaction record removed and the head set back onto the row before it (a consistent cut)."""
    su.sql(f"delete from audit.audit_events where seq = {TAIL_RECORD}")
    su.set_head(TAIL_RECORD - 1)


def _record_details(record: int, details: str) -> Tamper:
    """A redaction record rewritten to name other seqs, resealed (its salt is kept: records are never
    redacted) and the chain recomputed from it."""
    return _rewrite_and_reseal(record, f"details = '{details}'::jsonb")


CLASS_1 = [
    pytest.param(_forge_past_head, Expected("rows_past_head", HEAD + 1), id="1-forged-row-past-the-head"),
    pytest.param(
        _roll_back_to_last_digest_and_garble, Expected("rows_past_head", 34), id="1-head-at-last-digest-rest-garbled"
    ),
    pytest.param(lambda su: su.set_head(22), Expected("head_rolled_back", ANY, 3), id="1-head-below-the-newest-digest"),
    pytest.param(
        lambda su: su.conn.execute("update audit.chain_head set seq = %s", (HEAD + 3,)),
        Expected("truncated", HEAD + 1),
        id="1-head-ahead-of-the-rows",
    ),
    pytest.param(
        lambda su: su.conn.execute("update audit.chain_head set chain_hash = sha256(chain_hash)"),
        Expected("truncated", HEAD),
        id="1-head-hash-is-not-the-last-row",
    ),
]

KEPT_FIELD_EDITS = {
    "user_id": "user_id = 'mallory'",
    "action": "action = 'innocent'",
    "resource_path": "resource_path = '/elsewhere/report.pdf'",
    "timestamp": '"timestamp" = "timestamp" + interval \'1 second\'',
    "event_type": "event_type = 'user_logout'",
    "event_id": "event_id = 'forged-event-id'",
    "resource_id": "resource_id = 'doc-999'",
    "status": "status = 'failure'",
    "security_level": "security_level = 'low'",
    "compliance_tags": "compliance_tags = '{sox}'",
    "parent_event_id": "parent_event_id = 'parent-1'",
}

_FAKE_MARKER = "redacted_at = now(), redaction_reason = 'erasure', redacted_by = 'dpo', seal_salt = null"
_BLANKED = "user_email = null, session_id = null, ip_address = null, user_agent = null, details = '{}', metadata = '{}'"

CLASS_2 = [
    *(
        pytest.param(update(REDACTED_SEQ, edit), Expected("modified", REDACTED_SEQ), id=f"2-redacted-row-{field}")
        for field, edit in KEPT_FIELD_EDITS.items()
    ),
    # seal_version is not sealed: relabelled version 1, a redacted row would be checked for its links only.
    pytest.param(
        update(REDACTED_SEQ, "seal_version = 1, action = 'innocent', user_id = 'mallory'"),
        Expected("not_canonical", REDACTED_SEQ),
        id="2-redacted-row-relabelled-v1-then-edited",
    ),
    pytest.param(
        update(REDACTED_SEQ, "seal_version = 1, payload_commitment = null, action = 'innocent'"),
        Expected("not_canonical", REDACTED_SEQ),  # its version differs from its neighbours' with no marker
        id="2-redacted-row-relabelled-v1-commitment-dropped-then-edited",
    ),
    pytest.param(
        update(UNREDACTED_SEQ, f"{_FAKE_MARKER}, {_BLANKED}"),
        Expected("redaction_unrecorded", UNREDACTED_SEQ),
        id="2-fake-marker-payload-blanked",
    ),
    pytest.param(
        update(UNREDACTED_SEQ, f"{_FAKE_MARKER}, {_BLANKED}, action = 'innocent'"),
        Expected("modified", UNREDACTED_SEQ),
        id="2-fake-marker-then-a-kept-field-edited",
    ),
    pytest.param(
        update(UNREDACTED_SEQ, f"{_FAKE_MARKER}, user_email = 'someone@else.example'"),
        Expected("redaction_incomplete", UNREDACTED_SEQ),
        id="2-fake-marker-then-private-fields-edited",
    ),
    pytest.param(
        update(REDACTED_SEQ, "user_email = 'user2@example.com'"),
        Expected("redaction_incomplete", REDACTED_SEQ),
        id="2-redacted-row-email-put-back",
    ),
    pytest.param(
        update(REDACTED_SEQ, "ip_address = '10.0.2.15'"),
        Expected("redaction_incomplete", REDACTED_SEQ),
        id="2-redacted-row-ip-put-back",
    ),
    pytest.param(
        update(REDACTED_SEQ, 'details = \'{"department": "engineering"}\''),
        Expected("redaction_incomplete", REDACTED_SEQ),
        id="2-redacted-row-details-put-back",
    ),
    pytest.param(
        update(REDACTED_SEQ, "seal_salt = '\\x000102030405060708090a0b0c0d0e0f'"),
        Expected("redaction_incomplete", REDACTED_SEQ),
        id="2-redacted-row-keeps-a-salt",
    ),
    pytest.param(
        update(RETENTION_SEQ, "redaction_reason = 'erasure'"),
        Expected("redaction_unrecorded", RETENTION_SEQ),
        id="2-redaction-reason-changed",
    ),
    pytest.param(
        update(SUBJECT_RECORD, "details = jsonb_set(details, '{reason}', '\"retention\"')"),
        Expected("modified", SUBJECT_RECORD),
        id="2-record-garbled",
    ),
    pytest.param(
        update(SUBJECT_RECORD, "user_id = 'someone-else'"),
        Expected("modified", SUBJECT_RECORD),
        id="2-record-actor-changed",
    ),
    pytest.param(
        sql(f"delete from audit.audit_events where seq = {SUBJECT_RECORD}"),
        Expected("missing", SUBJECT_RECORD),
        id="2-record-deleted",
    ),
    # Resealed from the record on, the chain is flawless and digest 2 no longer matches (root_mismatch). The
    # events are judged before the digests against them (docs/integrity.md: digest chain, events, digests
    # against events), so the first failure is the erased row that no record names any more.
    pytest.param(
        _record_details(SUBJECT_RECORD, '{"count": 1, "reason": "erasure", "seqs": [[14, 14]], "v1_seqs": []}'),
        Expected("redaction_unrecorded", 15),
        id="2-record-rewritten-without-a-seq-before-the-last-digest",
    ),
    # After the last digest nothing but the rule itself can tell: seq 8's links are signed, its record is not.
    pytest.param(
        _record_details(TAIL_RECORD, '{"count": 1, "reason": "retention", "seqs": [[35, 35]], "v1_seqs": []}'),
        Expected("redaction_unrecorded", 8),
        id="2-record-rewritten-without-a-seq-after-the-last-digest",
    ),
    pytest.param(_delete_tail_record_and_head, Expected("redaction_unrecorded", 8), id="2-record-cut-off-the-tail"),
    pytest.param(
        _record_details(TAIL_RECORD, '{"count": 3, "reason": "retention", "seqs": [[8, 8], [35, 36]], "v1_seqs": []}'),
        Expected("redaction_unrecorded", 36),
        id="2-record-names-an-unredacted-row",
    ),
]

CLASS_3 = [
    pytest.param(
        update(IPV4_SEQ, "ip_address = '::ffff:198.51.100.7'"),
        Expected("not_canonical", IPV4_SEQ),
        id="3-ipv4-as-ipv4-mapped-ipv6",
    ),
    pytest.param(
        update(NETWORK_SEQ, "ip_address = '198.51.100.0/24'"),
        Expected("not_canonical", NETWORK_SEQ),
        id="3-network-where-its-first-address-was-sealed",
    ),
    pytest.param(
        update(IPV4_SEQ, "ip_address = '198.51.100.7/24'"),
        Expected("not_canonical", IPV4_SEQ),
        id="3-address-with-a-mask",
    ),
    pytest.param(
        update(TAGS_SEQ, "compliance_tags = '{hipaa,gdpr}'"), Expected("not_canonical", TAGS_SEQ), id="3-tags-reordered"
    ),
    pytest.param(
        update(TAGS_SEQ, "compliance_tags = '{gdpr,gdpr,hipaa}'"),
        Expected("not_canonical", TAGS_SEQ),
        id="3-tags-duplicated",
    ),
    pytest.param(
        update(14, "compliance_tags = '{iso_27001,gdpr}'"),
        Expected("not_canonical", 14),
        id="3-tags-reordered-on-a-redacted-row",
    ),
    pytest.param(
        update(NUMBERS_SEQ, "details = jsonb_set(details, '{big}', '9007199254740993'::jsonb)"),
        Expected("not_canonical", NUMBERS_SEQ),
        id="3-integer-that-rounds-to-the-sealed-double",
    ),
    pytest.param(
        update(NUMBERS_SEQ, "details = jsonb_set(details, '{ratio}', '0.10000000000000001'::jsonb)"),
        Expected("not_canonical", NUMBERS_SEQ),
        id="3-decimal-with-extra-digits",
    ),
]

CAUGHT_BEFORE = [
    pytest.param(update(PLAIN_SEQ, "action = 'innocent'"), Expected("modified", PLAIN_SEQ), id="modified-kept-field"),
    pytest.param(
        update(PLAIN_SEQ, "user_email = 'user0@example.com'"),
        Expected("modified", PLAIN_SEQ),
        id="modified-private-field",
    ),
    pytest.param(
        update(PLAIN_SEQ, "details = details || '{\"x\": 1}'"), Expected("modified", PLAIN_SEQ), id="modified-details"
    ),
    pytest.param(
        update(21, '"timestamp" = "timestamp" - interval \'4051 years\''), Expected("modified", 21), id="modified-era"
    ),
    pytest.param(
        update(TAIL_SEQ, "action = 'innocent'"), Expected("modified", TAIL_SEQ), id="modified-after-the-last-digest"
    ),
    pytest.param(sql("delete from audit.audit_events where seq = 12"), Expected("missing", 12), id="missing"),
    pytest.param(_insert_forged_event, Expected("inserted", 20), id="inserted"),
    pytest.param(
        sql(
            "update audit.audit_events set seq = -20 where seq = 20",
            "update audit.audit_events set seq = 20 where seq = 21",
            "update audit.audit_events set seq = 21 where seq = -20",
        ),
        Expected("reordered", 20),
        id="reordered",
    ),
    pytest.param(
        _recompute_checksum_only(PLAIN_SEQ, "action = 'innocent'"),
        Expected("chain_hash_mismatch", PLAIN_SEQ),
        id="chain-hash-mismatch",
    ),
    pytest.param(
        update(UNREDACTED_SEQ, _BLANKED),
        Expected("redacted_without_record", UNREDACTED_SEQ),
        id="redacted-without-record",
    ),
    pytest.param(
        _rewrite_and_reseal(PLAIN_SEQ, "action = 'innocent'"),
        Expected("root_mismatch", None, 2),
        id="root-mismatch-consistent-rewrite",
    ),
    pytest.param(_rewrite_everything, Expected("root_mismatch", None, 1), id="root-mismatch-whole-chain"),
    # Digest 3 covers seqs up to 33, now gone (missing 31); but the cut also took the record of seq 8's
    # redaction (seq 39), and the events are judged first: seq 8 is the first bad seq.
    # The cut took a redaction record with it (so seq 8 lost its record too), but the finding is the cut itself:
    # digest 3 signed rows that are gone.
    pytest.param(_truncate_consistently, Expected("missing", 31), id="truncated-consistently"),
]


@pytest.mark.parametrize(("tamper", "expected"), [*CLASS_1, *CLASS_2, *CLASS_3, *CAUGHT_BEFORE])
def test_tampering_is_caught_by_every_default_verify(
    built: Built, case_url: str, tamper: Tamper, expected: Expected
) -> None:
    """Given one kind of tampering by a database superuser, When verified by default from the bucket (library and
    CLI, key pinned by its published fingerprint) and from a saved copy with a pinned key, Then each names that
    failure kind at that seq or digest, and the CLI exits 1."""
    with Superuser(case_url) as su:
        tamper(su)

    assert_verdicts(case_url, built.evidence, expected)
