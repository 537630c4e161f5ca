"""After a GDPR erasure nothing stored tells which e-mail address or IP address was erased (issue 14).

A subject uses the product the way people do: uploads and downloads, a burst of failed sign-ins from their
address (detection raises alerts), a read of their own events through the API (the access log), a seven-year-old
event that the nightly retention run archives; the analytics rollups are refreshed and the chain anchored. Then
the subject is erased through the retention function's GDPR path (``retention.gdpr.erase_subject``) and the
chain anchored again.

The attacker knows every other field of each of the subject's events and holds candidate e-mail addresses
and IP addresses, the real ones among them. For every candidate they compute what could have survived an
erasure: the text itself, the seal-version-1 checksum (and its Merkle leaf and chain hash), plain hashes of
the value, and every payload commitment that needs no salt. Then they search everything stored: every row
of every table of every application schema in PostgreSQL, every version of every object in the archive and
the digest buckets. Nothing may match, for the real candidates or any other. The kept fields of the erased
events must still verify against the signed digests, and an edit to one must be caught.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import ipaddress
import itertools
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from audit_common import event_store
from audit_common.access_log import AccessRequest, record_access
from audit_common.auth import AuditRole, Principal
from audit_common.db import PostgresTransport
from audit_common.integrity import canonical_bytes, chain_hash, leaf_hash, sealed_object
from audit_common.integrity.seal import kept_object, private_object, sealed_object_v2
from audit_common.models import AuditEventIn
from audit_trail.postgres import create_database, drop_database
from detect.engine import analyse
from retention import gdpr, runner
from retention.archive import Archiver
from tests.support.aws import moto_account
from tests.support.events import make_event
from tests.support.trail import (
    Anchorer,
    Superuser,
    create_signing_key,
    database_copy,
    library_verify,
    published_fingerprint,
)

pytestmark = pytest.mark.xdist_group("erasure-privacy")

DIGEST_BUCKET = "audit-digests-erasure"
ARCHIVE_BUCKET = "audit-archive-erasure"

SUBJECT = "erin-42"
EMAIL = "erin.kowalski@example.org"
IPV4 = "198.51.100.23"
IPV6 = "2001:db8:4::23"
USER_AGENT = "ErinPhone/2.1 (personal build)"
SESSION = "sess-erin-7f3a"
CANDIDATE_EMAILS = (
    "erin.k@example.org",
    EMAIL,
    "e.kowalski@example.com",
    "erin.kowalski@example.com",
    "kowalski.erin@example.org",
    "erin@example.net",
)
CANDIDATE_IPS = ("198.51.100.77", IPV4, "203.0.113.23", IPV6, "2001:db8:4::24", "192.0.2.230")
# Values of the subject's that the attacker does not guess but that must be gone all the same.
ERASED_TEXTS = (USER_AGENT, SESSION, "cv-erin-kowalski.pdf", "erin-pixel-8", "erin's sick note")

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=8 * 365)  # past the 7-year default retention: the nightly run archives it


def subject_events() -> list[dict[str, Any]]:
    """What the subject did, as the client sent it (the attacker knows all of it but the e-mail and the IP)."""
    personal = {"user_id": SUBJECT, "user_email": EMAIL, "user_agent": USER_AGENT, "session_id": SESSION}
    events = [
        make_event(
            1000 + n,
            event_id=f"erin-{n}",
            timestamp=(NOW - timedelta(hours=3, minutes=n)).isoformat(),
            ip_address=IPV4 if n % 3 else IPV6,
            details={"file": "/home/erin/cv-erin-kowalski.pdf", "note": "erin's sick note", "pages": n},
            metadata={"device": "erin-pixel-8"},
            compliance_tags=["gdpr"] if n % 2 else [],
            **personal,
        )
        for n in range(6)
    ]
    # Failed sign-ins from one address in one window: brute_force (by IP) and multiple_failed_logins (by user).
    events += [
        make_event(
            1100 + n,
            event_id=f"erin-login-{n}",
            timestamp=(NOW - timedelta(minutes=30) + timedelta(seconds=10 * n)).isoformat(),
            event_type="user_login",
            action="login",
            status="failure",
            ip_address=IPV4,
            details={"reason": "bad_password"},
            metadata={"device": "erin-pixel-8"},
            compliance_tags=[],
            resource_path=None,
            resource_id=None,
            **personal,
        )
        for n in range(20)
    ]
    events.append(
        make_event(
            1200,
            event_id="erin-old",
            timestamp=OLD.isoformat(),
            ip_address=IPV4,
            details={"file": "/home/erin/cv-erin-kowalski.pdf"},
            metadata={"device": "erin-pixel-8"},
            compliance_tags=[],
            **personal,
        )
    )
    return events


def other_events() -> list[dict[str, Any]]:
    return [make_event(n, timestamp=(NOW - timedelta(hours=2, minutes=n)).isoformat()) for n in range(20)]


# ---------------------------------------------------------------------------------------------
# What the attacker computes
# ---------------------------------------------------------------------------------------------


@dataclass
class Needles:
    """Everything a candidate could have left behind: texts (searched case-insensitively) and 32-byte hashes."""

    texts: dict[str, str] = field(default_factory=dict)  # needle -> label
    hashes: dict[bytes, str] = field(default_factory=dict)

    def add_hash(self, digest: bytes, label: str) -> None:
        self.hashes.setdefault(digest, label)


def _ip_forms(ip: str) -> list[str]:
    address = ipaddress.ip_address(ip)
    forms = {str(address), address.exploded}
    if isinstance(address, ipaddress.IPv4Address):
        forms |= {f"::ffff:{address}", str(ipaddress.IPv6Address(f"::ffff:{address}"))}
    return sorted(forms)


def candidate_needles(sent: list[dict[str, Any]], prev_hashes: dict[str, bytes]) -> Needles:
    """For every candidate e-mail and IP, and every erased event filled with them, what could be stored."""
    needles = Needles()
    for email in CANDIDATE_EMAILS:
        needles.texts[email.lower()] = f"e-mail {email}"
        for variant in {email, email.lower(), email.upper()}:
            needles.add_hash(hashlib.sha256(variant.encode()).digest(), f"SHA-256 of e-mail {email}")
    for ip in CANDIDATE_IPS:
        for form in _ip_forms(ip):
            needles.texts[form.lower()] = f"IP {ip}"
            needles.add_hash(hashlib.sha256(form.encode()).digest(), f"SHA-256 of IP {ip}")
        needles.add_hash(hashlib.sha256(ipaddress.ip_address(ip).packed).digest(), f"SHA-256 of packed IP {ip}")
    for text in ERASED_TEXTS:
        needles.texts[text.lower()] = f"erased value {text!r}"
    for event in sent:
        model = AuditEventIn.model_validate(event).sealed_record()
        for email, ip in itertools.product(CANDIDATE_EMAILS, CANDIDATE_IPS):
            guess = {**model, "user_email": email, "ip_address": ip}
            label = f"event {event['event_id']} with {email} / {ip}"
            v1 = hashlib.sha256(canonical_bytes(sealed_object(guess))).digest()
            needles.add_hash(v1, f"seal-v1 checksum of {label}")
            needles.add_hash(leaf_hash(v1), f"seal-v1 Merkle leaf of {label}")
            if event["event_id"] in prev_hashes:
                needles.add_hash(chain_hash(prev_hashes[event["event_id"]], v1), f"seal-v1 chain hash of {label}")
            private = canonical_bytes(private_object(guess))
            for salt in (b"", bytes(16)):
                unsalted = hashlib.sha256(salt + private).digest()
                needles.add_hash(unsalted, f"unsalted payload commitment of {label}")
                sealed = sealed_object_v2(kept_object(guess), unsalted)
                needles.add_hash(hashlib.sha256(canonical_bytes(sealed)).digest(), f"seal-v2 checksum over {label}")
    return needles


# ---------------------------------------------------------------------------------------------
# Where the attacker looks
# ---------------------------------------------------------------------------------------------

_HEX_RUN = re.compile(r"[0-9a-f]{64,}")


def _hex_windows(text: str) -> set[str]:
    windows: set[str] = set()
    for run in _HEX_RUN.findall(text):
        windows.update(run[i : i + 64] for i in range(0, len(run) - 63, 2))
        windows.update(run[i : i + 64] for i in range(1, len(run) - 63, 2))
    return windows


def _text_hit(needle: str, haystack: str) -> bool:
    # An address must not match inside a longer one (198.51.100.23 in 198.51.100.230).
    if re.fullmatch(r"[0-9a-f.:]+", needle):
        return re.search(rf"(?<![0-9a-f.:]){re.escape(needle)}(?![0-9a-f:]|\.[0-9])", haystack) is not None
    return needle in haystack


def search_text(where: str, text: str, needles: Needles) -> list[str]:
    """Hits of the needles in one stored value (as text)."""
    lowered = text.lower()
    hits = [f"{where}: {label}" for needle, label in needles.texts.items() if _text_hit(needle, lowered)]
    windows = _hex_windows(lowered)
    hits += [f"{where}: {label}" for digest, label in needles.hashes.items() if digest.hex() in windows]
    return hits


def search_bytes(where: str, data: bytes, needles: Needles) -> list[str]:
    """Hits in one stored object: as raw bytes, and as text when it is text (gzip is opened first)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    hits = [f"{where}: raw {label}" for digest, label in needles.hashes.items() if digest in data]
    return hits + search_text(where, data.decode("utf-8", "replace"), needles)


def database_hits(url: str, needles: Needles) -> list[str]:
    """Every column of every row of every table in every application schema, as text."""
    hits: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema')"
            " and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%' order by 1, 2"
        ).fetchall()
        assert ("audit", "audit_events") in tables
        for schema, table in tables:
            columns = [
                name
                for (name,) in conn.execute(
                    "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
                    " and not attisdropped order by attnum",
                    (f'"{schema}"."{table}"',),
                )
            ]
            for column in columns:
                query = sql.SQL(
                    "select ctid::text, {col}::text, left(t::text, 160) from {tbl} t where {col} is not null"
                ).format(col=sql.Identifier(column), tbl=sql.Identifier(schema, table))
                for ctid, value, row in conn.execute(query):
                    hits += search_text(f"{schema}.{table}.{column} (row {ctid}: {row})", value, needles)
    return hits


def bucket_hits(bucket: str, needles: Needles) -> list[str]:
    """Every version of every object in the bucket, body and metadata."""
    s3 = boto3.client("s3")
    hits: list[str] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            key, version_id = version["Key"], version["VersionId"]
            response = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id)
            where = f"s3://{bucket}/{key} (version {version_id})"
            hits += search_bytes(where, response["Body"].read(), needles)
            hits += search_text(f"{where} metadata", repr(response.get("Metadata", {})), needles)
    return hits


def _unique(hits: Iterable[str]) -> list[str]:
    return sorted(set(hits))


# ---------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    server_url: str
    database: str
    url: str
    sent: list[dict[str, Any]]
    erased_seqs: dict[str, int]  # event_id -> seq
    needles: Needles
    hits_before_erasure: list[str]
    erasure: gdpr.ErasureResult
    archived_event_ids: set[str]


def _seqs(db: psycopg.Connection[Any], event_ids: list[str]) -> dict[str, int]:
    rows = db.execute("select event_id, seq from audit.audit_events where event_id = any(%s)", (event_ids,))
    return {str(event_id): int(seq) for event_id, seq in rows}


@pytest.fixture(scope="module")
def scenario(pg_server_url: str, template_db: str) -> Iterator[Scenario]:
    """The scenario of the module docstring; its moto account stays open for the module (the tests read it)."""
    name = f"audit_erasure_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name, template=template_db)
    try:
        with moto_account(), contextlib.ExitStack() as stack:
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=DIGEST_BUCKET, ObjectLockEnabledForBucket=True)
            s3.create_bucket(Bucket=ARCHIVE_BUCKET, ObjectLockEnabledForBucket=True)
            transport = PostgresTransport(url, role="service_role")
            try:
                played = _play(pg_server_url, name, url, transport, stack)
            finally:
                transport.close()  # nobody may be connected to a database that is copied
            yield played
    finally:
        drop_database(pg_server_url, name)


def _play(server_url: str, name: str, url: str, transport: PostgresTransport, stack: contextlib.ExitStack) -> Scenario:
    key_arn = create_signing_key()
    stack.enter_context(published_fingerprint(key_arn))
    anchorer = Anchorer(transport, key_arn, DIGEST_BUCKET)
    sent = subject_events()
    event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in other_events()])
    stored = event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in sent])
    # Detection as the webhook runs it, the analytics rollups as a dashboard refresh leaves them.
    detected = analyse(transport, [r.seq for r in stored.results], source="webhook", publisher=None)
    assert {alert.rule for alert in detected.alerts} >= {"brute_force", "multiple_failed_logins"}
    transport.call("analytics_refresh", {"p_max_events": 100000})
    # The subject reads their own events through the API: the read is recorded (the audit of the audit).
    record_access(
        transport,
        AccessRequest(
            request_id=str(uuid.uuid4()),
            method="GET",
            path="/events",
            resource="/events",
            query={"user_id": SUBJECT},
            source_ip=IPV4,
            user_agent=USER_AGENT,
        ),
        Principal(subject=SUBJECT, role=AuditRole.USER, email=EMAIL),
        facts={"returned": len(sent)},
    )
    gdpr.export_subject(transport, SUBJECT, actor="dpo")
    anchorer.anchor()
    retention = runner.run_retention(
        transport, Archiver(ARCHIVE_BUCKET, lock_days=30), triggered_by="nightly", limits=runner.RunLimits()
    )
    assert retention.archived == 1, retention  # the seven-year-old event
    transport.call("analytics_refresh", {"p_max_events": 100000})

    with psycopg.connect(url, autocommit=True) as db:
        seqs = _seqs(db, [e["event_id"] for e in sent])
        stored_seals = {
            str(event_id): (bytes(prev), None if salt is None else bytes(salt))
            for event_id, prev, salt in db.execute(
                "select event_id, prev_hash, seal_salt from audit.audit_events where event_id = any(%s)",
                ([e["event_id"] for e in sent],),
            )
        }
    needles = candidate_needles(sent, {event_id: prev for event_id, (prev, _) in stored_seals.items()})
    # The control: with the salt (readable before the erasure) the real values' commitment is computable,
    # and the search must find it where it is stored.
    salted = Needles()
    for event in sent:
        salt = stored_seals[event["event_id"]][1]
        if salt is not None:
            private = canonical_bytes(private_object(AuditEventIn.model_validate(event).sealed_record()))
            salted.add_hash(hashlib.sha256(salt + private).digest(), f"salted commitment of {event['event_id']}")
    hits_before = database_hits(url, needles) + database_hits(url, salted)

    erasure = gdpr.erase_subject(transport, SUBJECT, actor="dpo")
    # every event sent but the archived one (already redacted by retention), and the record of the subject's own
    # read (the access record names them as user:<id>)
    assert (erasure.redacted, erasure.already_redacted, erasure.kept) == (len(sent) - 1 + 1, 1, []), erasure
    transport.call("analytics_refresh", {"p_max_events": 100000})
    anchorer.anchor()
    return Scenario(server_url, name, url, sent, seqs, needles, hits_before, erasure, {"erin-old"})


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def test_before_the_erasure_the_search_finds_the_subject(scenario: Scenario) -> None:
    """Given the subject's events before the erasure, When searched for, Then the real e-mail and IP are found
    (the search can find what it looks for) and no decoy is."""
    hits = scenario.hits_before_erasure
    assert any(hit.startswith("audit.audit_events.user_email ") and hit.endswith(f": e-mail {EMAIL}") for hit in hits)
    assert any(hit.startswith("audit.audit_events.ip_address ") and hit.endswith(f": IP {IPV4}") for hit in hits)
    assert any(hit.startswith("audit.audit_events.ip_address ") and hit.endswith(f": IP {IPV6}") for hit in hits)
    commitments = {hit.rsplit(": ", 1)[1] for hit in hits if hit.startswith("audit.audit_events.payload_commitment ")}
    unarchived = [e["event_id"] for e in scenario.sent if e["event_id"] not in scenario.archived_event_ids]
    assert commitments == {f"salted commitment of {event_id}" for event_id in unarchived}
    decoys = [f": e-mail {e}" for e in CANDIDATE_EMAILS if e != EMAIL] + [
        f": IP {ip}" for ip in CANDIDATE_IPS if ip not in (IPV4, IPV6)
    ]
    assert [hit for hit in hits if hit.endswith(tuple(decoys))] == []


def test_nothing_in_the_database_tells_which_email_or_ip_was_erased(scenario: Scenario) -> None:
    """Given the subject erased, When every row of every table is searched for every candidate's text, seal-v1
    checksum, plain hashes and unsalted commitments, Then nothing matches."""
    hits = _unique(database_hits(scenario.url, scenario.needles))

    assert hits == [], "the database still tells what was erased:\n" + "\n".join(hits)


def test_nothing_in_the_archive_tells_which_email_or_ip_was_erased(scenario: Scenario) -> None:
    """Given the subject erased after the nightly run archived one of their events, When every version of every
    archive object is searched, Then nothing matches."""
    listed = boto3.client("s3").list_object_versions(Bucket=ARCHIVE_BUCKET).get("Versions", [])
    assert listed, "the retention run archived nothing: the scenario is not what this test needs"
    hits = _unique(bucket_hits(ARCHIVE_BUCKET, scenario.needles))

    assert hits == [], "the archive still tells what was erased:\n" + "\n".join(hits)


def test_nothing_in_the_digests_tells_which_email_or_ip_was_erased(scenario: Scenario) -> None:
    """Given the subject erased and the chain anchored before and after, When every digest object version and
    public key is searched, Then nothing matches."""
    hits = _unique(bucket_hits(DIGEST_BUCKET, scenario.needles))

    assert hits == [], "the digests still tell what was erased:\n" + "\n".join(hits)


def test_the_kept_fields_of_erased_events_still_verify(scenario: Scenario) -> None:
    """Given the erased events, When verified against the signed digests, Then valid; every erased event is
    redacted and named by a chained redaction record, its kept fields exactly as sent."""
    report = library_verify(scenario.url, DIGEST_BUCKET)
    assert report.valid, report.lines()
    assert report.digests_valid == 2

    with psycopg.connect(scenario.url, autocommit=True) as db:
        rows = {
            event["event_id"]: event
            for (event,) in db.execute(
                "select audit.event_json(e) from audit.audit_events e"
                " where e.user_id = %s and e.event_id like 'erin-%%'",
                (SUBJECT,),
            )
        }
        records = db.execute(
            "select details from audit.audit_events where action = 'events_redacted' and details ->> 'reason' = %s",
            ("erasure",),
        ).fetchall()
    assert set(rows) == {e["event_id"] for e in scenario.sent}
    named = {seq for (details,) in records for first, last in details["seqs"] for seq in range(first, last + 1)}
    for sent in scenario.sent:
        stored = rows[sent["event_id"]]
        assert stored["redacted_at"] is not None and stored["seal_salt"] is None, stored
        assert kept_object(stored) == kept_object(AuditEventIn.model_validate(sent).sealed_record())
        if sent["event_id"] not in scenario.archived_event_ids:
            assert stored["redaction_reason"] == "erasure"
            assert stored["seq"] in named


@pytest.mark.parametrize(
    ("field_name", "assignment"),
    [
        ("user_id", "user_id = 'someone-else'"),
        ("action", "action = 'innocent'"),
        ("timestamp", '"timestamp" = "timestamp" + interval \'1 hour\''),
        ("resource_path", "resource_path = '/nothing/to/see.pdf'"),
    ],
)
def test_an_edit_to_a_kept_field_of_an_erased_event_is_caught(
    scenario: Scenario, field_name: str, assignment: str
) -> None:
    """Given an erased event's kept field edited by a database superuser, When verified, Then modified at it."""
    seq = scenario.erased_seqs["erin-3"]
    with database_copy(scenario.server_url, scenario.database) as url:
        with Superuser(url) as su:
            assert su.event(seq)["redaction_reason"] == "erasure"
            su.sql(f"update audit.audit_events set {assignment} where seq = {seq}")
        report = library_verify(url, DIGEST_BUCKET)

    assert report.failure is not None, (field_name, report.lines())
    assert (report.failure.kind, report.failure.seq, report.failure.digest_seq) == ("modified", seq, None)
