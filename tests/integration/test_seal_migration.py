"""A database filled by the code before seal version 2, then migrated, still verifies (issue 14).

The database is migrated up to the last migration before seal version 2 (``20261208090000_seal_v2.sql``) and
filled the way that code did it: events sealed with version 1 (checksum = SHA-256 of the RFC 8785 bytes of the
17-field sealed object) through that ``audit.ingest_events``, some redacted by that ``audit.redact_events``
(which left no chained record), two digests by the anchor. Then the remaining migrations are applied, new
events are stored by today's ``event_store.store_events`` (version 2), old and new events are redacted by
today's functions, and the chain is anchored again. It must verify, both seal versions side by side, and
tampering with a version-1 row must still be caught.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3
import psycopg
import pytest

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.integrity import canonical_bytes
from audit_common.models import AuditEventIn
from audit_trail.migrations import discover, migrate, sql_root
from audit_trail.postgres import create_database, drop_database
from tests.support.aws import moto_account
from tests.support.events import make_event
from tests.support.trail import (
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
)

pytestmark = pytest.mark.xdist_group("seal-migration")

SEAL_V2_VERSION: Final = "20261208090000"
BUCKET = "audit-digests-migration"

# seq 1-12 v1 events (digest 1 after 8); 3 erased and 6 retained by the old redact_events.
# After the migration: its redaction records, then v2 events; v1 seq 5 and a v2 event redacted by today's code.
V1_EVENTS = 12
V1_REDACTED_BEFORE = {3: "erasure", 6: "retention"}
V1_REDACTED_AFTER = 5
V1_INTACT = 9


def _event_id(n: int) -> str:
    return str(make_event(n)["event_id"])


def seal_v1(event: AuditEventIn) -> dict[str, Any]:
    """What the ingest of seal version 1 sent to ``audit.ingest_events``: the sealed object and its checksum."""
    sealed = event.sealed_record()
    sealed["checksum"] = hashlib.sha256(canonical_bytes(sealed)).hexdigest()
    return sealed


def store_v1(transport: PostgresTransport, numbers: range) -> None:
    events = [AuditEventIn.model_validate(make_event(n)) for n in numbers]
    results = transport.call("ingest_events", {"p_events": [seal_v1(event) for event in events]})
    assert [r["status"] for r in results] == ["created"] * len(events), results


def redact(transport: PostgresTransport, numbers: list[int], reason: str) -> None:
    transport.call(
        "redact_events",
        {"p_event_ids": [_event_id(n) for n in numbers], "p_reason": reason, "p_actor": "dpo", "p_ref": "req-9"},
    )


def migrations_before_seal_v2(tmp: Path) -> Path:
    """A copy of the SQL root with only the migrations the code before seal version 2 had."""
    source = sql_root()
    root = tmp / "sql-before-seal-v2"
    shutil.copytree(source / "bootstrap", root / "bootstrap")
    (root / "migrations").mkdir(parents=True)
    kept = [m for m in discover(source) if m.version < SEAL_V2_VERSION]
    assert kept and len(kept) < len(discover(source)), "the seal-v2 migration is not where this test expects it"
    for migration in kept:
        shutil.copy(migration.path, root / "migrations" / migration.path.name)
    return root


@dataclass(frozen=True)
class Migrated:
    server_url: str
    database: str
    evidence: Evidence
    seqs: dict[str, int]  # event_id -> seq


@pytest.fixture(scope="module")
def migrated(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    tmp = tmp_path_factory.mktemp("seal-migration")
    name = f"audit_migration_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name)
    try:
        with moto_account(), contextlib.ExitStack() as stack:
            boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
            key_arn = create_signing_key()
            stack.enter_context(published_fingerprint(key_arn))
            migrate(url, root=migrations_before_seal_v2(tmp))
            with psycopg.connect(url, autocommit=True) as db:
                columns = {
                    c
                    for (c,) in db.execute(
                        "select attname from pg_attribute where attrelid = 'audit.audit_events'::regclass"
                    )
                }
            assert "seal_version" not in columns  # the old schema, really

            transport = PostgresTransport(url, role="service_role")
            try:
                anchorer = Anchorer(transport, key_arn, BUCKET)
                store_v1(transport, range(8))
                assert anchorer.anchor().tree_size == 8
                store_v1(transport, range(8, V1_EVENTS))
                for seq, reason in V1_REDACTED_BEFORE.items():
                    redact(transport, [seq - 1], reason)
                assert anchorer.anchor().tree_size == V1_EVENTS
            finally:
                transport.close()

            migrate(url)  # the rest: seal version 2 and whatever came after it

            transport = PostgresTransport(url, role="service_role")
            try:
                anchorer = Anchorer(transport, key_arn, BUCKET)
                stored = event_store.store_events(
                    transport, [AuditEventIn.model_validate(make_event(n)) for n in range(100, 108)]
                )
                redact(transport, [V1_REDACTED_AFTER - 1], "erasure")
                transport.call(
                    "redact_events",
                    {"p_event_ids": [make_event(102)["event_id"]], "p_reason": "retention", "p_actor": "retention"},
                )
                anchorer.anchor()
            finally:
                transport.close()
            with psycopg.connect(url, autocommit=True) as db:
                seqs = {str(e): int(s) for e, s in db.execute("select event_id, seq from audit.audit_events")}
            assert all(result.seq in seqs.values() for result in stored.results)

            saved = tmp / "saved"
            save_digests(url, BUCKET, saved)
            key_file = tmp / "kms-public-key.der"
            key_file.write_bytes(public_key_der(key_arn))
            yield Migrated(pg_server_url, name, Evidence(BUCKET, key_arn, saved, key_file), seqs)
    finally:
        drop_database(pg_server_url, name)


@pytest.fixture
def case_url(migrated: Migrated) -> Iterator[str]:
    with database_copy(migrated.server_url, migrated.database) as url:
        yield url


def test_a_database_filled_before_seal_v2_verifies_after_the_migration(migrated: Migrated, case_url: str) -> None:
    """Given version-1 events (some redacted before the migration, without a record), the migration, version-2
    events and redactions of both versions by today's code, When verified every default way, Then valid."""
    assert_verdicts(case_url, migrated.evidence, VALID)

    with Superuser(case_url) as su:
        versions = dict(su.conn.execute("select seal_version, count(*) from audit.audit_events group by 1").fetchall())
        redacted = dict(
            su.conn.execute(
                "select seq, seal_version from audit.audit_events where redacted_at is not null order by seq"
            ).fetchall()
        )
        records = su.conn.execute(
            "select user_id, details from audit.audit_events where action = 'events_redacted' order by seq"
        ).fetchall()
    assert versions[1] == V1_EVENTS and versions[2] >= 8, versions
    seq_102 = migrated.seqs[str(make_event(102)["event_id"])]
    assert redacted == {3: 1, 5: 1, 6: 1, seq_102: 2}
    named = {
        seq: details["reason"]
        for _, details in records
        for first, last in details["seqs"]
        for seq in range(first, last + 1)
    }
    assert named == {3: "erasure", 6: "retention", 5: "erasure", seq_102: "retention"}
    # The redactions made before the migration are recorded once, by the migration itself.
    assert {user_id for user_id, details in records if set(details["seqs"][0]) <= {3, 6}} == {"migration:seal_v2"}

    report = library_verify(case_url, BUCKET)
    assert (report.digests_valid, report.redacted) == (3, 4), report.lines()


@pytest.mark.parametrize(
    ("assignments", "seq", "expected"),
    [
        pytest.param("action = 'innocent'", V1_INTACT, Expected("modified", V1_INTACT), id="v1-kept-field-edited"),
        pytest.param(
            "details = details || '{\"x\": 1}'", V1_INTACT, Expected("modified", V1_INTACT), id="v1-payload-edited"
        ),
        pytest.param(
            "user_email = 'someone@else.example'", V1_INTACT, Expected("modified", V1_INTACT), id="v1-email-edited"
        ),
        pytest.param(
            "redacted_at = now(), redaction_reason = 'erasure', user_email = null, session_id = null,"
            " ip_address = null, user_agent = null, details = '{}', metadata = '{}'",
            V1_INTACT,
            Expected("redaction_unrecorded", V1_INTACT),
            id="v1-fake-redaction-without-record",
        ),
        pytest.param(
            "user_email = 'user2@example.com'",
            3,
            Expected("redaction_incomplete", 3),
            id="v1-redacted-before-the-migration-email-put-back",
        ),
        pytest.param(
            "redaction_reason = 'retention'",
            3,
            Expected("redaction_unrecorded", 3),
            id="v1-redacted-before-the-migration-reason-changed",
        ),
    ],
)
def test_tampering_with_a_v1_row_is_still_caught(
    migrated: Migrated, case_url: str, assignments: str, seq: int, expected: Expected
) -> None:
    """Given a version-1 row tampered with by a database superuser after the migration, When verified, Then the
    failure is named at that seq, by the library and both CLI paths."""
    with Superuser(case_url) as su:
        assert su.event(seq)["seal_version"] == 1
        su.sql(f"update audit.audit_events set {assignments} where seq = {seq}")

    assert_verdicts(case_url, migrated.evidence, expected)
