"""Offline verification of a million events read from PostgreSQL, beside the physical limit.

A fresh database gets `--events` events generated in SQL through the real chain trigger. Unlike the
other benchmarks' generated events, these carry their real checksums: the SQL builds each event's RFC
8785 canonical text itself (keys in order, values that need no escaping) and stores SHA-256 of it, so
the verifier, which recomputes every checksum from the stored columns with audit_common's sealing code,
must agree byte for byte or the run fails. Digests are then written for the chain (signed with a local
ECDSA P-256 key, laid out as the anchor writes them into the digest bucket) and `audit-trail verify`'s
engine (`audit_trail.verify`) checks everything: every checksum, every link, every digest's signature,
chain and Merkle root. Printed beside it: the physical limit, hashlib SHA-256 over the same canonical
bytes in one process (no database, no parsing, no JSON), the ratio of the two, and the target.

    .venv/bin/python bench/verify.py [--events N] [--digests N] [--workers N] [--keep-db] [--json]

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
from audit_common.integrity import SEALED_FIELDS, MerkleFrontier, canonical_bytes, sealed_object
from audit_common.integrity.digest import (
    EMPTY_ROOT_HEX,
    GENESIS_CHAIN_HASH_HEX,
    Digest,
    digest_bytes,
    digest_key,
    digest_timestamp,
    public_key_key,
)
from audit_common.verification import verify_chain
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from audit_trail.verify import Report, verify_offline
from audit_trail.verify_digests import DirectoryDigestSource
from audit_trail.verify_scan import ROW_JSON, close_connections, read_rows

TARGET_EVENTS_PER_SECOND: Final = 100_000
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
    """One INSERT ... SELECT over generate_series(%(first)s, %(last)s); the chain trigger assigns seq.

    The canonical text is concatenated from the same values that are stored: keys in RFC 8785 order
    (all ASCII, so UTF-16 and byte order agree), integers and ASCII strings that need no escaping,
    ``details`` stored as the jsonb parse of its own canonical text. Random draws happen once per row
    in the innermost subquery (volatile functions keep it from being flattened).
    """
    types = "array[" + ", ".join(f"'{event_type}'" for event_type, _ in EVENT_TYPES) + "]"
    actions = "array[" + ", ".join(f"'{action}'" for _, action in EVENT_TYPES) + "]"
    mimes = "array[" + ", ".join(f"'{mime}'" for mime in MIME_TYPES) + "]"
    tag_arrays = "array[" + ", ".join(f"'{array}'" for array, _ in TAG_SETS) + "]"
    tag_texts = "array[" + ", ".join(f"'{text}'" for _, text in TAG_SETS) + "]"
    return f"""
insert into audit.audit_events (
  event_id, "timestamp", event_type, user_id, user_email, session_id, ip_address, user_agent,
  resource_path, resource_id, action, status, details, security_level, compliance_tags, metadata, checksum)
select c.event_id, c.ts, c.event_type, c.user_id, c.user_email, c.session_id, c.ip, '{USER_AGENT}',
       c.resource_path, c.resource_id, c.action, c.status, c.details_text::jsonb, c.security_level,
       ({tag_arrays})[c.tag]::text[], '{METADATA}'::jsonb,
       sha256(convert_to(
         '{{"action":"' || c.action || '","compliance_tags":' || ({tag_texts})[c.tag]
         || ',"details":' || c.details_text || ',"event_id":"' || c.event_id
         || '","event_type":"' || c.event_type || '","ip_address":"' || host(c.ip)
         || '","metadata":{METADATA},"parent_event_id":null,"resource_id":"' || c.resource_id
         || '","resource_path":"' || c.resource_path || '","security_level":"' || c.security_level
         || '","session_id":"' || c.session_id || '","status":"' || c.status
         || '","timestamp":"' || to_char(c.ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
         || '","user_agent":"{USER_AGENT}","user_email":"' || c.user_email || '","user_id":"' || c.user_id || '"}}',
         'UTF8'))
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
               floor(r.r_misc * 7)::int as shared
          from (
            select i, least({USERS}, floor(power({USERS + 1}, random()))::int) as u,
                   1 + floor(random() * {len(EVENT_TYPES)})::int as kind,
                   random() as r_status, random() as r_tag, random() as r_ip, random() as r_misc,
                   random() as r_jitter, floor(random() * 100000)::int as doc
              from generate_series(%(first)s::bigint, %(last)s::bigint) i
          ) r
      ) t
  ) c
"""


# --------------------------------------------------------------------------------------------
# Setup (not timed): the events, and digests signed with a local key
# --------------------------------------------------------------------------------------------


def generate(url: str, events: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for first in range(1, events + 1, CHUNK_ROWS):
            last = min(events, first + CHUNK_ROWS - 1)
            conn.execute(generation_sql(), {"first": first, "last": last, "start": START})
            progress(f"generated {last:,} events")
    return time.perf_counter() - started


def write_digests(url: str, events: int, digests: int, directory: Path) -> float:
    """Sign ``digests`` digests over the chain (tree sizes evenly spread, the last at the head) into ``directory``.

    Laid out as the anchor writes the bucket (``digests/<chain>/<seq>.json``, the public key beside them), with
    each signature in a ``.sig`` file, as ``audit-trail verify --save-digests`` leaves them. The key is a local
    ECDSA P-256 key (KMS's ECC_NIST_P256 signs the same DER-encoded ECDSA): the bench needs no AWS.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    started = time.perf_counter()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    target = directory / "digests" / CHAIN_ID
    (target / "public-keys").mkdir(parents=True)
    (directory / public_key_key(CHAIN_ID, SIGNING_KEY_ID)).write_bytes(pem)
    sizes = sorted({events * n // digests for n in range(1, digests + 1)})
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
    previous: tuple[str, str, int] | None = None
    for number, size in enumerate(sizes, start=1):
        moment = START + timedelta(hours=number)
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
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    events: int
    seconds: float
    # CPU seconds of this process and its finished children (the verifier's workers); not PostgreSQL's.
    cpu_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class Results:
    environment: dict[str, Any]
    setup_seconds: dict[str, float] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    canonical_bytes_per_event: float = 0.0
    reports: list[dict[str, Any]] = field(default_factory=list)


def physical_limit(url: str, events: int) -> tuple[Row, float]:
    """hashlib SHA-256 over every event's canonical bytes, one process; only the hashing is timed.

    The bytes are built (untimed) with the project's sealing code, a chunk at a time, and every hash is
    compared with the stored checksum afterwards: the limit is measured on exactly the bytes that were sealed.
    """
    hashing = hashing_cpu = 0.0
    total_bytes = 0
    done = 0
    sha256 = hashlib.sha256
    step = 65_536
    for first in range(1, events + 1, step):
        rows = list(read_rows(url, first, min(events, first + step - 1)))
        sealed = [canonical_bytes(sealed_object(dict(zip(SEALED_FIELDS, row[5:], strict=True)))) for row in rows]
        started, cpu = time.perf_counter(), time.process_time()
        digests = [sha256(data).digest() for data in sealed]
        hashing += time.perf_counter() - started
        hashing_cpu += time.process_time() - cpu
        for row, digest in zip(rows, digests, strict=True):
            if digest.hex() != row[1]:
                raise BenchError(f"seq {row[0]}: the generated checksum is not SHA-256 of the canonical bytes")
        total_bytes += sum(map(len, sealed))
        done += len(rows)
    close_connections()
    limit = Row("physical limit: hashlib.sha256(canonical bytes), 1 process", done, hashing, hashing_cpu)
    return limit, total_bytes / done


def offline(url: str, directory: Path, workers: int, events: int, digests: int) -> tuple[Row, Report]:
    checkpoint(url)
    cpu = _cpu_seconds()
    started = time.perf_counter()
    report = verify_offline(url, DirectoryDigestSource(directory), workers=workers)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    if not report.valid or report.events_checked != events or report.digests_valid != digests:
        raise BenchError(f"verification did not pass: {report.lines()}")
    name = f"audit-trail verify: every checksum, link, digest; {workers} worker{'s' if workers > 1 else ''}"
    return Row(name, report.events_checked, seconds, cpu), report


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have exited (the verifier's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def server_side(url: str, events: int) -> Row | None:
    """PostgreSQL's share alone: the verifier's COPY query written to /dev/null by the server (no client).

    Needs a role allowed to write server files (a superuser); skipped otherwise.
    """
    query = sql.SQL(
        "copy (select {row} from audit.audit_events e where e.seq between 1 and {last} order by e.seq) to '/dev/null'"
    ).format(row=ROW_JSON, last=sql.Literal(events))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(query)
            seconds = time.perf_counter() - started
    except psycopg.errors.InsufficientPrivilege:
        return None
    return Row("PostgreSQL's side alone: the verifier's COPY, server to /dev/null", events, seconds)


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
    return Row("GET /integrity/verify's walk (SQL API pages, ChainVerifier)", events, seconds, cpu)


def run(args: argparse.Namespace, admin_url: str, dbname: str, directory: Path) -> Results:
    load_average = os.getloadavg()[0]
    url = create_database(admin_url, dbname)
    migrate(url)
    results = Results({**base_environment(server_facts(url)), "load_average_at_start": round(load_average, 2)})
    progress(f"generating {args.events:,} events in SQL (real checksums, through the chain trigger)")
    results.setup_seconds["generate"] = generate(url, args.events)
    results.setup_seconds["vacuum"] = vacuum_analyze(url)
    progress(f"signing {args.digests} digests")
    results.setup_seconds["digests"] = write_digests(url, args.events, args.digests, directory)
    progress("physical limit: SHA-256 over the canonical bytes")
    limit, results.canonical_bytes_per_event = physical_limit(url, args.events)
    results.rows.append(limit)
    for workers in sorted({args.workers, 1}, reverse=True):
        progress(f"audit-trail verify with {workers} worker(s)")
        row, report = offline(url, directory, workers, args.events, args.digests)
        results.rows.append(row)
        results.reports.append(report.as_dict())
    progress("PostgreSQL's side of the verifier's COPY")
    postgres = server_side(url, args.events)
    if postgres is not None:
        results.rows.append(postgres)
    baseline = min(args.events, BASELINE_EVENTS)
    progress(f"GET /integrity/verify's walk over {baseline:,} events")
    results.rows.append(sql_api_walk(url, baseline))
    results.environment["events"] = args.events
    results.environment["digests"] = args.digests
    return results


def _best(results: Results) -> Row:
    """The fastest audit-trail verify row."""
    return max(
        (row for row in results.rows if row.name.startswith("audit-trail verify")), key=lambda row: row.per_second
    )


def report(results: Results) -> str:
    env = results.environment
    limit = results.rows[0]
    best = _best(results)
    baseline = results.rows[-1]
    met = best.per_second >= TARGET_EVENTS_PER_SECOND
    out = [
        f"Offline verification benchmark, {env['date']}",
        environment_line(env),
        f"{env['events']:,} events generated in SQL with their real checksums (canonical event"
        f" {results.canonical_bytes_per_event:,.0f} bytes on average), {env['digests']} digests signed with a local"
        " ECDSA P-256 key, read from a directory",
        "setup, not part of the result: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.setup_seconds.items()),
        "",
        format_table(
            ["what", "events", "seconds", "events/s", "of the limit", "Python CPU µs/event"],
            [
                [
                    row.name,
                    f"{row.events:,}",
                    f"{row.seconds:.2f}",
                    f"{row.per_second:,.0f}",
                    f"{row.per_second / limit.per_second:.1%}",
                    f"{row.cpu_seconds / row.events * 1e6:.2f}" if row.cpu_seconds else "",
                ]
                for row in results.rows
            ],
            [False, True, True, True, True, True],
        ),
        "Python CPU: this process and its worker processes, user + system; PostgreSQL's own CPU is not in it.",
        "",
        f"verification / physical limit: {best.per_second / limit.per_second:.3f}"
        f" ({best.per_second:,.0f} / {limit.per_second:,.0f} events/s)",
        f"verification / GET /integrity/verify's walk: {best.per_second / baseline.per_second:.1f}x",
        f"target: at least {TARGET_EVENTS_PER_SECOND:,} events/s with every checksum recomputed:"
        f" {'met' if met else 'NOT met'} ({best.per_second:,.0f} events/s)",
    ]
    return "\n".join(out)


def as_json(results: Results) -> str:
    data = {
        "environment": results.environment,
        "setup_seconds": results.setup_seconds,
        "canonical_bytes_per_event": results.canonical_bytes_per_event,
        "rows": [{**asdict(row), "events_per_second": row.per_second} for row in results.rows],
        "target_events_per_second": TARGET_EVENTS_PER_SECOND,
        "ratio_to_limit": _best(results).per_second / results.rows[0].per_second,
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
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="verifier processes (CPUs)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database (its name is printed)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON (CI artefact)")
    args = parser.parse_args(argv)
    if args.events < 1 or args.digests < 1 or args.workers < 1:
        parser.error("--events, --digests and --workers must be positive")
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
