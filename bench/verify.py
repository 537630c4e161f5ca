"""Offline verification of a million events read from PostgreSQL, beside PostgreSQL's own COPY-out.

A fresh database gets `--events` events generated in SQL through the real chain trigger. Unlike the
other benchmarks' generated events, these are really sealed, with seal version 2: the SQL draws each
event's 16-byte salt, builds the RFC 8785 canonical text of its private object and of its sealed object
itself (keys in order, values that need no escaping) and stores the payload commitment and checksum
they hash to, so the verifier, which recomputes both from the stored columns, must agree byte for byte
or the run fails. The oldest tenth (`--redacted`) is then redacted through `audit.redact_seqs`, in the
retention run's batches, which appends the chained redaction records. Digests are then written for the
chain (signed with a local ECDSA P-256 key, laid out as the anchor writes them into the digest bucket)
and `audit-trail verify`'s engine (`audit_trail.verify`) checks everything, with the key pinned. Printed
beside it: PostgreSQL's own COPY-out of the table (the target's baseline), the verifier's COPY query
alone on the server, the physical limit (hashlib SHA-256 over the sealed bytes, no database), the SQL
API walk, the ratios and the targets.

    .venv/bin/python bench/verify.py [--events N] [--digests N] [--redacted SHARE] [--workers N] [--keep-db] [--json]

`DATABASE_URL` names the server (an admin role: it creates and drops a database); without it an
embedded PostgreSQL is started with pgserver. See bench/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

# The bench runs outside pytest: bench._common puts the layer, the functions, the SDK and the
# repository root on the path.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    BenchError,
    base_environment,
    checkpoint,
    drop_databases,
    environment_line,
    format_table,
    progress,
    server_facts,
    unwind_on_sigterm,
    vacuum_analyze,
)

# The imports below need the path bench._common sets up: keep them in a block of their own.
# isort: split
from audit_common.db import PostgresTransport
from audit_common.integrity import MerkleFrontier, canonical_bytes
from audit_common.integrity.digest import (
    EMPTY_ROOT_HEX,
    GENESIS_CHAIN_HASH_HEX,
    Digest,
    digest_bytes,
    digest_key,
    digest_timestamp,
    public_key_key,
)
from audit_common.integrity.seal import SEAL_SALT_BYTES, kept_object, private_object, sealed_object_v2
from audit_common.verification import verify_chain
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from audit_trail.verify import Report, verify_offline
from audit_trail.verify_digests import DirectoryDigestSource, KeyTrust
from audit_trail.verify_scan import (
    CHECKSUM,
    COMMITMENT,
    DEFAULT_CHUNK_BITS,
    REDACTED,
    ROW_JSON,
    SEAL_SALT,
    SEQ,
    close_connections,
    configure_session,
    read_rows,
    row_as_event,
)

TARGET_COPY_OUT_RATIO: Final = 0.8  # issue 14: verification at >= 0.8x PostgreSQL's own COPY-out rate
TARGET_EVENTS_PER_SECOND: Final = 100_000  # the earlier target, still printed
REDACTED_SHARE: Final = 0.10  # the oldest tenth of the history is redacted before the digests are signed
REDACTION_BATCH: Final = 500  # seqs per audit.redact_seqs call: the retention run's default batch
BASELINE_EVENTS: Final = 100_000  # the SQL API walk (GET /integrity/verify's path) runs on this many
CHAIN_ID: Final = "default"
SIGNING_KEY_ID: Final = "bench-local-p256"
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK_ROWS: Final = 100_000
USERS: Final = 2_000
USER_AGENT: Final = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Files/3.2"
MIME_TYPES: Final = ("application/pdf", "image/png", "text/csv", "application/zip")
EVENT_TYPES: Final = (
    ("file_access", "view_file"),
    ("file_download", "download_file"),
    ("file_upload", "upload_file"),
    ("file_modify", "edit_file"),
    ("user_login", "login"),
    ("user_logout", "logout"),
    ("permission_change", "grant_role"),
    ("security_event", "mfa_challenge"),
)
# (array literal, canonical JSON) of the compliance tags, already sorted as the sealed form wants them.
TAG_SETS: Final = (("{}", "[]"), ("{gdpr}", '["gdpr"]'), ("{gdpr,iso_27001}", '["gdpr","iso_27001"]'))
METADATA: Final = '{"app":"files","region":"eu-west-1","version":"3.2.1"}'


def generation_sql() -> str:
    """One INSERT ... SELECT over generate_series(%(first)s, %(last)s), sealed with seal version 2.

    Per row: a salt of 16 random bytes, ``payload_commitment = SHA-256(salt || JCS(private object))`` and
    ``checksum = SHA-256(JCS(sealed object v2))`` (docs/integrity.md, section 1.2); the chain trigger assigns
    seq. The canonical texts are concatenated from the same values that are stored: keys in RFC 8785 order
    (all ASCII, so UTF-16 and byte order agree), integers and ASCII strings that need no escaping,
    ``details`` stored as the jsonb parse of its own canonical text. Random draws (the salt too) happen once
    per row in the innermost subquery (volatile functions keep it from being flattened).
    """
    types = "array[" + ", ".join(f"'{event_type}'" for event_type, _ in EVENT_TYPES) + "]"
    actions = "array[" + ", ".join(f"'{action}'" for _, action in EVENT_TYPES) + "]"
    mimes = "array[" + ", ".join(f"'{mime}'" for mime in MIME_TYPES) + "]"
    tag_arrays = "array[" + ", ".join(f"'{array}'" for array, _ in TAG_SETS) + "]"
    tag_texts = "array[" + ", ".join(f"'{text}'" for _, text in TAG_SETS) + "]"
    return f"""
insert into audit.audit_events (
  event_id, "timestamp", event_type, user_id, user_email, session_id, ip_address, user_agent,
  resource_path, resource_id, action, status, details, security_level, compliance_tags, metadata,
  seal_version, seal_salt, payload_commitment, checksum)
select d.event_id, d.ts, d.event_type, d.user_id, d.user_email, d.session_id, d.ip, '{USER_AGENT}',
       d.resource_path, d.resource_id, d.action, d.status, d.details_text::jsonb, d.security_level,
       ({tag_arrays})[d.tag]::text[], '{METADATA}'::jsonb, 2, d.salt, d.commitment,
       sha256(convert_to(
         '{{"action":"' || d.action || '","compliance_tags":' || ({tag_texts})[d.tag]
         || ',"event_id":"' || d.event_id || '","event_type":"' || d.event_type
         || '","parent_event_id":null,"payload_commitment":"' || encode(d.commitment, 'hex')
         || '","resource_id":"' || d.resource_id || '","resource_path":"' || d.resource_path
         || '","seal":2,"security_level":"' || d.security_level || '","status":"' || d.status
         || '","timestamp":"' || to_char(d.ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
         || '","user_id":"' || d.user_id || '"}}',
         'UTF8'))
  from (
    select c.*,
           sha256(c.salt || convert_to(
             '{{"details":' || c.details_text || ',"ip_address":"' || host(c.ip)
             || '","metadata":{METADATA},"session_id":"' || c.session_id
             || '","user_agent":"{USER_AGENT}","user_email":"' || c.user_email || '"}}',
             'UTF8')) as commitment
      from (
        select t.*,
               '{{"bytes":' || t.bytes || ',"client":"web","mime":"' || ({mimes})[t.mime]
               || '","sha256":"' || t.content_hash || '","shared_with":' || t.shared || '}}' as details_text
          from (
            select 'ev-' || r.i as event_id,
                   %(start)s::timestamptz + make_interval(secs => r.i * 0.25 + r.r_jitter * 0.2) as ts,
                   ({types})[r.kind] as event_type, ({actions})[r.kind] as action,
                   'user-' || lpad(r.u::text, 4, '0') as user_id,
                   'user-' || lpad(r.u::text, 4, '0') || '@example.com' as user_email,
                   'sess-' || r.u || '-' || (r.i / 40) as session_id,
                   '10.0.0.0'::inet + (4 * r.u + floor(r.r_ip * 3)::int) as ip,
                   '/files/team-' || (r.u %% 50) || '/doc-' || r.doc || '.pdf' as resource_path,
                   'doc-' || r.doc as resource_id,
                   case when r.r_status < 0.02 then 'failure' else 'success' end as status,
                   case when r.kind >= 7 then 'high' when r.r_status < 0.02 then 'medium' else 'low' end
                     as security_level,
                   1 + floor(r.r_tag * {len(TAG_SETS)})::int as tag,
                   floor(r.r_misc * 50000000)::bigint as bytes,
                   1 + floor(r.r_ip * {len(MIME_TYPES)})::int as mime,
                   encode(sha256(convert_to('doc-' || r.doc, 'UTF8')), 'hex') as content_hash,
                   floor(r.r_misc * 7)::int as shared,
                   r.salt
              from (
                select i, least({USERS}, floor(power({USERS + 1}, random()))::int) as u,
                       1 + floor(random() * {len(EVENT_TYPES)})::int as kind,
                       random() as r_status, random() as r_tag, random() as r_ip, random() as r_misc,
                       random() as r_jitter, floor(random() * 100000)::int as doc,
                       uuid_send(gen_random_uuid()) as salt
                  from generate_series(%(first)s::bigint, %(last)s::bigint) i
              ) r
          ) t
      ) c
  ) d
"""


# --------------------------------------------------------------------------------------------
# Setup (not timed): the events, a redacted tenth of them, and digests signed with a local key
# --------------------------------------------------------------------------------------------


def generate(url: str, events: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for first in range(1, events + 1, CHUNK_ROWS):
            last = min(events, first + CHUNK_ROWS - 1)
            conn.execute(generation_sql(), {"first": first, "last": last, "start": START})
            progress(f"generated {last:,} events")
    return time.perf_counter() - started


@dataclass
class Redaction:
    """What the setup redacted: seqs 1..``redacted`` (the oldest), recorded by ``records`` chained records."""

    redacted: int = 0
    records: int = 0
    seconds: float = 0.0


def redact_oldest(url: str, events: int, share: float) -> Redaction:
    """Redact the oldest ``share`` of the events as the nightly retention run does, through the real SQL function.

    ``audit.redact_seqs`` in transactions of ``REDACTION_BATCH`` seqs (the retention run's default batch), reason
    ``retention``, actor ``retention``, one run id as the reference: each call blanks the private columns and the
    salt and appends its chained redaction record, so the verifier meets redacted rows, records and the rule.
    """
    oldest = int(events * share)
    outcome = Redaction()
    run_id = str(uuid.uuid4())
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for first in range(1, oldest + 1, REDACTION_BATCH):
            last = min(oldest, first + REDACTION_BATCH - 1)
            row = conn.execute(
                "select audit.redact_seqs(array(select pg_catalog.generate_series(%s::bigint, %s::bigint)),"
                " 'retention', 'retention', %s)",
                (first, last, run_id),
            ).fetchone()
            if row is None or row[0] != last - first + 1:
                raise BenchError(f"audit.redact_seqs redacted {row} of seqs {first}..{last}")
            outcome.redacted += int(row[0])
            outcome.records += 1
        if oldest:
            progress(f"redacted seqs 1..{oldest:,} in {outcome.records} transactions")
    outcome.seconds = time.perf_counter() - started
    return outcome


def stored_rows(url: str) -> int:
    """Rows in the table (events and redaction records), which must be seqs 1..n."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*), coalesce(max(seq), 0), (select seq from audit.chain_head) from audit.audit_events"
        ).fetchone()
    if row is None or not row[0] == row[1] == row[2]:
        raise BenchError(f"the generated chain is not seqs 1..n up to the head: count, max seq, head = {row}")
    return int(row[0])


def write_digests(url: str, rows: int, digests: int, directory: Path) -> tuple[float, bytes]:
    """Sign ``digests`` digests over the chain (tree sizes evenly spread, the last at the head) into ``directory``.

    Laid out as the anchor writes the bucket (``digests/<chain>/<seq>.json``, the public key beside them), with
    each signature in a ``.sig`` file, as ``audit-trail verify --save-digests`` leaves them. The key is a local
    ECDSA P-256 key (KMS's ECC_NIST_P256 signs the same DER-encoded ECDSA): the bench needs no AWS. Hourly
    periods, each starting where the previous ended, the newest ending now (so the digests are fresh).
    Returns the seconds it took and the public key (PEM), which the verifier is given as the pinned key.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    started = time.perf_counter()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    target = directory / "digests" / CHAIN_ID
    (target / "public-keys").mkdir(parents=True)
    (directory / public_key_key(CHAIN_ID, SIGNING_KEY_ID)).write_bytes(pem)
    sizes = sorted({rows * n // digests for n in range(1, digests + 1)})
    cuts: dict[int, tuple[str, str]] = {}
    frontier = MerkleFrontier()
    wanted = iter(sizes)
    cut = next(wanted)
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(
            "copy (select checksum, chain_hash from audit.audit_events order by seq) to stdout (format binary)"
        ) as copy,
    ):
        copy.set_types(["bytea", "bytea"])
        for checksum, linked in copy.rows():
            frontier.append(bytes(checksum))
            if frontier.size == cut:
                cuts[cut] = (frontier.root().hex(), bytes(linked).hex())
                cut = next(wanted, -1)
    now = datetime.now(UTC).replace(microsecond=0)
    previous: tuple[str, str, int] | None = None
    for number, size in enumerate(sizes, start=1):
        moment = now - timedelta(hours=len(sizes) - number)
        root, linked = cuts.get(size, (EMPTY_ROOT_HEX, GENESIS_CHAIN_HASH_HEX))
        digest = Digest(
            chain_id=CHAIN_ID,
            digest_seq=number,
            tree_size=size,
            root_hash=root,
            chain_hash=linked,
            previous_tree_size=0 if previous is None else previous[2],
            period_start=digest_timestamp(moment - timedelta(hours=1)),
            period_end=digest_timestamp(moment),
            oldest_event_time=digest_timestamp(START),
            newest_event_time=digest_timestamp(moment),
            created_at=digest_timestamp(moment),
            previous_digest_key=None if previous is None else previous[0],
            previous_digest_signature=None if previous is None else previous[1],
            signing_key_id=SIGNING_KEY_ID,
            signing_algorithm="ECDSA_SHA_256",
        )
        body = digest_bytes(digest)
        signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
        name = directory / digest_key(CHAIN_ID, number)
        name.write_bytes(body)
        name.with_name(name.name + ".sig").write_text(signature + "\n")
        previous = (digest_key(CHAIN_ID, number), signature, size)
    return time.perf_counter() - started, pem


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------

# What a row of the table is: the verifier, or one of its baselines.
LIMIT, VERIFY, VERIFIER_COPY, COPY_OUT, WALK = "limit", "verify", "verifier_copy", "copy_out", "walk"


@dataclass
class Row:
    name: str
    kind: str
    events: int
    seconds: float
    # CPU seconds of this process and its finished children (the verifier's workers); not PostgreSQL's.
    cpu_seconds: float = 0.0
    # CPU seconds of the PostgreSQL backend that ran the statement (server rows, when its /proc entry is readable).
    server_cpu_seconds: float | None = None
    # 1-minute load average when the row's measurement ended (the machine is shared: it says how noisy the row is).
    load: float = 0.0

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class Results:
    environment: dict[str, Any]
    setup_seconds: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    sealed_bytes_per_event: float = 0.0
    private_bytes_per_event: float = 0.0
    redaction: Redaction = field(default_factory=Redaction)
    reports: list[dict[str, Any]] = field(default_factory=list)

    def first(self, kind: str) -> Row | None:
        return next((row for row in self.rows if row.kind == kind), None)

    def best_verify(self) -> Row:
        """The fastest audit-trail verify row."""
        return max((row for row in self.rows if row.kind == VERIFY), key=lambda row: row.per_second)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def physical_limit(url: str, rows: int) -> tuple[Row, float, float]:
    """hashlib SHA-256 over every event's seal v2 canonical bytes, one process; only the hashing is timed.

    Per unredacted event two hashes, as the seal has them: ``salt || JCS(private object)`` (the payload
    commitment) and ``JCS(sealed object v2)`` (the checksum); a redacted event has only the second. The bytes are
    built (untimed) with the project's sealing code, a chunk at a time, and every hash is compared with the
    stored commitment and checksum afterwards: the limit is measured on exactly the bytes that were sealed.
    Returns the row and the mean sealed and private canonical sizes (bytes per event).
    """
    hashing = hashing_cpu = 0.0
    sealed_bytes = private_bytes = 0
    done = private_done = 0
    sha256 = hashlib.sha256
    step = 65_536
    for first in range(1, rows + 1, step):
        chunk = list(read_rows(url, first, min(rows, first + step - 1)))
        privates: list[bytes] = []  # salt || JCS(private object) of each unredacted row, in order
        unredacted: list[list[Any]] = []
        sealed: list[bytes] = []
        for row in chunk:
            event = row_as_event(row)
            if not row[REDACTED]:
                privates.append(bytes.fromhex(row[SEAL_SALT]) + canonical_bytes(private_object(event)))
                unredacted.append(row)
            sealed.append(canonical_bytes(sealed_object_v2(kept_object(event), bytes.fromhex(row[COMMITMENT]))))
        started, cpu = time.perf_counter(), time.process_time()
        commitments = [sha256(data).digest() for data in privates]
        checksums = [sha256(data).digest() for data in sealed]
        hashing += time.perf_counter() - started
        hashing_cpu += time.process_time() - cpu
        for row, checksum in zip(chunk, checksums, strict=True):
            if checksum.hex() != row[CHECKSUM]:
                raise BenchError(f"seq {row[SEQ]}: the stored checksum is not SHA-256 of the sealed object v2")
        for row, commitment in zip(unredacted, commitments, strict=True):
            if commitment.hex() != row[COMMITMENT]:
                raise BenchError(f"seq {row[SEQ]}: the stored payload_commitment is not SHA-256(salt || private)")
        sealed_bytes += sum(map(len, sealed))
        private_bytes += sum(map(len, privates)) - SEAL_SALT_BYTES * len(privates)
        private_done += len(privates)
        done += len(chunk)
    close_connections()
    name = "physical limit: hashlib.sha256 of the seal v2 bytes (commitment + checksum), 1 process"
    limit = Row(name, LIMIT, done, hashing, hashing_cpu, load=_load())
    return limit, sealed_bytes / done, private_bytes / max(private_done, 1)


def offline(
    url: str, directory: Path, public_key: bytes, workers: int, rows: int, redacted: int, digests: int
) -> tuple[Row, Report]:
    checkpoint(url)
    cpu = _cpu_seconds()
    started = time.perf_counter()
    trust = KeyTrust.create(public_keys=[public_key])  # as --public-key pins it
    report = verify_offline(url, DirectoryDigestSource(directory), workers=workers, trust=trust)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    if (
        not report.valid
        or report.events_checked != rows
        or report.redacted != redacted
        or report.digests_valid != digests
    ):
        raise BenchError(f"verification did not pass (or not over every row): {report.lines()}")
    name = f"audit-trail verify, every check on, {workers} worker{'s' if workers > 1 else ''}"
    return Row(name, VERIFY, report.events_checked, seconds, cpu, load=_load()), report


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have exited (the verifier's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _backend_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a PostgreSQL backend on this machine, from /proc; None when not readable."""
    try:
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None  # a remote server (or another pid namespace): that pid is not the backend
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_copy(url: str, query: sql.Composed | sql.SQL, name: str, kind: str, rows: int) -> Row | None:
    """Time one COPY the server writes to /dev/null itself (no client, no network), with its backend's CPU.

    Parallel query and sorts are off for it, as on the verifier's connections: one backend does all the work (as
    in each of the verifier's chunk reads), so its CPU is PostgreSQL's whole share. A Gather over parallel
    workers would hide their CPU from the backend's and make the one statement over every row unlike the
    verifier's reads. Needs a role allowed to write server files (a superuser); None otherwise.
    """
    checkpoint(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            # The verifier's own session settings: the same plan (an index scan in seq order, not a sort) for the
            # same rows. They only read, as COPY TO a file does.
            configure_session(conn)
            pid = conn.info.backend_pid
            before = _backend_cpu(pid)
            started = time.perf_counter()
            conn.execute(query)
            seconds = time.perf_counter() - started
            after = _backend_cpu(pid)
    except psycopg.errors.InsufficientPrivilege:
        return None
    server_cpu = None if before is None or after is None else after - before
    return Row(name, kind, rows, seconds, server_cpu_seconds=server_cpu, load=_load())


def verifier_copy(url: str, rows: int) -> Row | None:
    """PostgreSQL's share of verification: the verifier's COPY query, over every row, server to /dev/null."""
    query = sql.SQL(
        "copy (select {row} from audit.audit_events e where e.seq between 1 and {last} order by e.seq) to '/dev/null'"
    ).format(row=ROW_JSON, last=sql.Literal(rows))
    name = "PostgreSQL's side alone: the verifier's COPY, server to /dev/null"
    return server_copy(url, query, name, VERIFIER_COPY, rows)


def copy_out(url: str, rows: int) -> Row | None:
    """PostgreSQL's own COPY-out rate for the same rows: every stored column, text format, nothing computed."""
    query = sql.SQL("copy audit.audit_events to '/dev/null'")
    name = "PostgreSQL's own COPY-out: COPY audit.audit_events TO '/dev/null'"
    return server_copy(url, query, name, COPY_OUT, rows)


def chunk_plan(url: str, rows: int) -> str:
    """The plan PostgreSQL picks for one of the verifier's chunk reads (the second chunk, or the only one).

    Said because it decides whether a read streams: an index scan sends rows in seq order as it finds them, so
    the verifier and its PostgreSQL process work side by side; a sort over a heap scan (chosen when seq order is
    no longer heap order, e.g. after redactions moved the oldest rows) sends nothing until the chunk is built.
    """
    size = 1 << DEFAULT_CHUNK_BITS
    first = size + 1 if rows > size else 1
    query = sql.SQL(
        "explain (format json) select {row} from audit.audit_events e"
        " where e.seq between {first} and {last} order by e.seq"
    ).format(row=ROW_JSON, first=sql.Literal(first), last=sql.Literal(min(rows, first + size - 1)))
    with psycopg.connect(url, autocommit=True) as conn:
        configure_session(conn)
        row = conn.execute(query).fetchone()
    names = []
    node = row[0][0]["Plan"] if row else {}
    while node:
        names.append(str(node.get("Node Type")))
        node = (node.get("Plans") or [{}])[0]
    return " <- ".join(names)


def sql_api_walk(url: str, events: int) -> Row:
    """The path GET /integrity/verify takes (SQL API pages + ChainVerifier), on the first events."""
    transport = PostgresTransport(url)
    try:
        cpu = _cpu_seconds()
        started = time.perf_counter()
        result = verify_chain(transport, from_seq=1, to_seq=events, max_rows=events)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
    finally:
        transport.close()
    if not result.valid or result.checked != events:
        raise BenchError(f"the SQL API walk did not pass: {result}")
    return Row("GET /integrity/verify's walk (SQL API pages, ChainVerifier)", WALK, events, seconds, cpu, load=_load())


def run(args: argparse.Namespace, admin_url: str, dbname: str, directory: Path) -> Results:
    load_average = os.getloadavg()[0]
    url = create_database(admin_url, dbname)
    migrate(url)
    results = Results({**base_environment(server_facts(url)), "load_average_at_start": round(load_average, 2)})
    progress(f"generating {args.events:,} events in SQL (sealed with seal v2, through the chain trigger)")
    results.setup_seconds["generate"] = generate(url, args.events)
    progress(f"redacting the oldest {args.redacted:.0%} through audit.redact_seqs")
    results.redaction = redact_oldest(url, args.events, args.redacted)
    results.setup_seconds["redact"] = results.redaction.seconds
    rows = stored_rows(url)
    results.setup_seconds["vacuum"] = vacuum_analyze(url)
    results.environment["chunk_plan"] = chunk_plan(url, rows)
    progress(f"signing {args.digests} digests")
    results.setup_seconds["digests"], public_key = write_digests(url, rows, args.digests, directory)
    progress("physical limit: SHA-256 over the canonical bytes")
    limit, results.sealed_bytes_per_event, results.private_bytes_per_event = physical_limit(url, rows)
    results.rows.append(limit)
    for workers in sorted({args.workers, 1}, reverse=True):
        progress(f"audit-trail verify with {workers} worker(s)")
        row, verdict = offline(url, directory, public_key, workers, rows, results.redaction.redacted, args.digests)
        results.rows.append(row)
        results.reports.append(verdict.as_dict())
    progress("PostgreSQL's side of the verifier's COPY, and PostgreSQL's own COPY-out")
    for baseline in (verifier_copy(url, rows), copy_out(url, rows)):
        if baseline is not None:
            results.rows.append(baseline)
    walked = min(rows, BASELINE_EVENTS)
    progress(f"GET /integrity/verify's walk over {walked:,} events")
    results.rows.append(sql_api_walk(url, walked))
    results.environment["events"] = args.events
    results.environment["rows"] = rows
    results.environment["digests"] = args.digests
    results.environment["load_average_at_end"] = _load()
    return results


def ratios(results: Results) -> dict[str, float | None]:
    """The best verification row's rate divided by each baseline's (None for a baseline not measured)."""
    best = results.best_verify().per_second
    out: dict[str, float | None] = {}
    for kind in (COPY_OUT, VERIFIER_COPY, LIMIT, WALK):
        row = results.first(kind)
        out[kind] = best / row.per_second if row is not None and row.per_second else None
    return out


def report(results: Results) -> str:
    env = results.environment
    best = results.best_verify()
    plain = results.first(COPY_OUT)
    ratio = ratios(results)
    redaction = results.redaction

    def cpu(seconds: float | None, row: Row) -> str:
        return f"{seconds / row.events * 1e6:.2f}" if seconds else ""

    lines = [
        [
            row.name,
            f"{row.events:,}",
            f"{row.seconds:.2f}",
            f"{row.per_second:,.0f}",
            f"{row.per_second / plain.per_second:.2f}x" if plain is not None else "",
            f"{row.load:.2f}",
            cpu(row.cpu_seconds, row),
            cpu(row.server_cpu_seconds, row),
        ]
        for row in results.rows
    ]
    table = format_table(
        ["what", "events", "seconds", "events/s", "of COPY-out", "load", "Python CPU µs/ev", "PG CPU µs/ev"],
        lines,
        [False, True, True, True, True, True, True, True],
    )

    def against(kind: str, label: str) -> str:
        value = ratio[kind]
        return f"  {label}: " + (
            "not measured (needs a role that may write server files)" if value is None else f"{value:.2f}x"
        )

    target = ratio[COPY_OUT]
    if target is None or plain is None:
        verdict = "not measured (PostgreSQL's own COPY-out needs a role that may write server files)"
    else:
        verdict = (
            f"{'met' if target >= TARGET_COPY_OUT_RATIO else 'NOT met'} ({target:.2f}x:"
            f" {best.per_second:,.0f} against {plain.per_second:,.0f} events/s)"
        )
    met = best.per_second >= TARGET_EVENTS_PER_SECOND
    out = [
        f"Offline verification benchmark, {env['date']}",
        environment_line(env) + f", at the end {env['load_average_at_end']}",
        f"{env['events']:,} events generated in SQL and sealed with seal version 2 (salt, payload commitment,"
        f" checksum); the oldest {redaction.redacted:,} ({redaction.redacted / env['events']:.0%}) redacted through"
        f" audit.redact_seqs in {redaction.records} transactions, which appended {redaction.records} chained redaction"
        f" records: {env['rows']:,} rows in all, every one read and checked. Canonical bytes per event: sealed object"
        f" {results.sealed_bytes_per_event:,.0f}, private object {results.private_bytes_per_event:,.0f}."
        f" {env['digests']} digests signed with a local ECDSA P-256 key, read from a directory, the key pinned.",
        "setup, not part of the result: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.setup_seconds.items()),
        f"PostgreSQL's plan for a chunk read of the verifier: {env['chunk_plan']}"
        + (
            " (streams in seq order)"
            if env["chunk_plan"].startswith("Index")
            else " (the chunk is sorted before its first row is sent: no overlap with the verifier's Python)"
        ),
        "",
        table,
        "",
        "physical limit: SHA-256 alone over the bytes the seal hashes (no database, no parsing), one process.",
        "audit-trail verify: every checksum and payload commitment recomputed, every link, stored forms exact,"
        " redacted rows blank and recorded, rows past the head, every digest's signature, chain and Merkle root.",
        "the verifier's COPY: its query (json_build_array of 26 values a row, seq order) over every row in one"
        " statement, written to /dev/null by the server: PostgreSQL's share of verification, no client.",
        "PostgreSQL's own COPY-out: the plain table, every stored column in COPY's text format, nothing computed:"
        " the target's baseline. Both server rows run in one backend (parallel query off).",
        "of COPY-out: the row's events/s / PostgreSQL's own COPY-out's. load: 1-minute load average as the row ended"
        f" ({env['cpus']} CPUs).",
        "Python CPU: this process and its worker processes, user + system. PG CPU: the PostgreSQL backend that ran"
        " the COPY (server rows only).",
        "",
        f"best verification ({best.name.split(', ')[-1]}, {best.per_second:,.0f} events/s) against:",
        against(COPY_OUT, "PostgreSQL's own COPY-out"),
        against(VERIFIER_COPY, "the verifier's COPY alone"),
        against(LIMIT, "the physical limit (SHA-256 alone)"),
        against(WALK, "GET /integrity/verify's walk"),
        f"target: verification with every check on at >= {TARGET_COPY_OUT_RATIO}x PostgreSQL's own COPY-out rate for"
        f" the same rows: {verdict}",
        f"earlier target: at least {TARGET_EVENTS_PER_SECOND:,} events/s with every checksum recomputed:"
        f" {'met' if met else 'NOT met'} ({best.per_second:,.0f} events/s)",
    ]
    return "\n".join(out)


def as_json(results: Results) -> str:
    ratio = ratios(results)
    copy_out_ratio = ratio[COPY_OUT]
    data = {
        "environment": results.environment,
        "setup_seconds": results.setup_seconds,
        "sealed_bytes_per_event": results.sealed_bytes_per_event,
        "private_bytes_per_event": results.private_bytes_per_event,
        "redaction": asdict(results.redaction),
        "rows": [{**asdict(row), "events_per_second": row.per_second} for row in results.rows],
        "ratios": {f"verify_vs_{kind}": value for kind, value in ratio.items()},
        "ratio_to_limit": ratio[LIMIT],
        "target_copy_out_ratio": TARGET_COPY_OUT_RATIO,
        "target_copy_out_ratio_met": None if copy_out_ratio is None else copy_out_ratio >= TARGET_COPY_OUT_RATIO,
        "target_events_per_second": TARGET_EVENTS_PER_SECOND,
        "reports": results.reports,
    }
    return json.dumps(data, indent=2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Offline verification (audit-trail verify) of events read from PostgreSQL, beside SHA-256 alone.",
        epilog="The server is DATABASE_URL (an admin role) or an embedded pgserver. See bench/README.md.",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events generated in SQL (1000000)")
    parser.add_argument("--digests", type=int, default=24, help="signed digests over the chain (24)")
    parser.add_argument(
        "--redacted",
        type=float,
        default=REDACTED_SHARE,
        help="share of the oldest events redacted through audit.redact_seqs before signing (0.1)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="verifier processes (CPUs)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database (its name is printed)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON (CI artefact)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.digests < 1 or args.workers < 1:
        parser.error("--events, --digests and --workers must be positive")
    if not 0 <= args.redacted < 1:
        parser.error("--redacted must be a share in [0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    admin_url = server_url()
    dbname = f"audit_bench_verify_{uuid.uuid4().hex[:10]}"
    try:
        with tempfile.TemporaryDirectory(prefix="audit-bench-digests-") as directory:
            results = run(args, admin_url, dbname, Path(directory))
    except BenchError as exc:
        print(f"benchmark failed, no numbers: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, no numbers", file=sys.stderr)
        return 130
    finally:
        close_connections()
        drop_databases(admin_url, (dbname,), keep=args.keep_db)
    print(report(results))
    if args.json:
        print(as_json(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
