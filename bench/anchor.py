"""Hourly anchor run time for 100,000 new events on top of a long history, against a short one.

For each history size (default 100,000 and 1,000,000) a fresh database gets that many events generated in
SQL and a first anchor run (one-time: it builds the stored tiles for the whole history); then `--new` more
events arrive and the measured hourly run (`anchor.service.run_anchor`: read the new checksums, extend the
Merkle tree from the stored tiles, sign with KMS, write to Object-Locked S3, record) anchors them, followed
by an hour with no new events. KMS and S3 are moto, in this process. The point: the hourly run's time follows
the new events, not the history (RFC 6962 frontier + stored perfect-subtree hashes, as transparency logs'
tiles do). Printed: the table, the per-phase split, and the checks (each digest's root equals the Merkle root
over every checksum, read back independently; signatures verify) without which no number is printed.

    .venv/bin/python bench/anchor.py [--history N ...] [--new N] [--keep-db] [--json]

`DATABASE_URL` names the server (an admin role: it creates and drops a database); without it an
embedded PostgreSQL is started with pgserver.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import boto3
import psycopg

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
from anchor.digest_store import DigestStore, StoredDigest
from anchor.service import AnchorResult, run_anchor
from anchor.signer import KmsSigner
from audit_common.db import PostgresTransport
from audit_common.integrity.digest import parse_digest, verify_signature
from audit_common.integrity.merkle import merkle_root
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from tests.support.aws import moto_account

BUCKET: Final = "audit-digests-bench"
CHUNK_ROWS: Final = 100_000
GENERATION_SQL: Final = """
insert into audit.audit_events (event_id, "timestamp", event_type, user_id, user_email, ip_address, resource_path,
                                action, status, details, security_level, compliance_tags, checksum)
select %(tag)s || '-' || g,
       %(start)s::timestamptz + make_interval(secs => g * 0.036),
       (array['file_access', 'file_download', 'file_upload', 'user_login', 'permission_change'])[1 + g %% 5],
       'user-' || (g %% 2000), 'user-' || (g %% 2000) || '@example.com', '10.0.0.0'::inet + (g %% 4000),
       '/files/team-' || (g %% 50) || '/doc-' || (g %% 100000) || '.pdf',
       'view_file', case when g %% 50 = 0 then 'failure' else 'success' end,
       jsonb_build_object('file_size', g * 37 %% 50000000, 'mime', 'application/pdf'), 'low', '{gdpr}',
       sha256(convert_to(%(tag)s || g, 'UTF8'))
  from generate_series(%(first)s::bigint, %(last)s::bigint) g
"""


class TimedTransport:
    """The functions' transport, timing each SQL API call by function name."""

    def __init__(self, inner: PostgresTransport) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        started = time.perf_counter()
        try:
            return self.inner.call(function, args)
        finally:
            self.seconds[function] += time.perf_counter() - started
            self.calls[function] += 1

    def close(self) -> None:
        self.inner.close()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


class TimedSigner(KmsSigner):
    """KMS (moto) time of a run."""

    seconds = 0.0

    def sign(self, message: bytes) -> str:
        started = time.perf_counter()
        try:
            return super().sign(message)
        finally:
            TimedSigner.seconds += time.perf_counter() - started


class TimedStore(DigestStore):
    """S3 (moto) time of a run."""

    seconds = 0.0

    def get(self, key: str) -> StoredDigest | None:
        started = time.perf_counter()
        try:
            return super().get(key)
        finally:
            TimedStore.seconds += time.perf_counter() - started

    def put_digest(self, key: str, body: bytes, signature: str, retain_until: datetime) -> bool:
        started = time.perf_counter()
        try:
            return super().put_digest(key, body, signature, retain_until)
        finally:
            TimedStore.seconds += time.perf_counter() - started

    def put_public_key(self, key: str, pem: str, retain_until: datetime) -> bool:
        started = time.perf_counter()
        try:
            return super().put_public_key(key, pem, retain_until)
        finally:
            TimedStore.seconds += time.perf_counter() - started


@dataclass
class Measured:
    """One anchor run."""

    label: str
    scenario: int
    history: int
    new_events: int
    seconds: float
    leaves_read: int
    nodes_stored: int
    sql_seconds: float
    aws_seconds: float
    sql_calls: dict[str, int] = field(default_factory=dict)

    @property
    def python_seconds(self) -> float:
        return max(0.0, self.seconds - self.sql_seconds - self.aws_seconds)


@dataclass
class Results:
    environment: dict[str, Any]
    runs: list[Measured] = field(default_factory=list)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)


def generate(url: str, first: int, count: int, tag: str) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for low in range(first, first + count, CHUNK_ROWS):
            high = min(first + count - 1, low + CHUNK_ROWS - 1)
            conn.execute(
                GENERATION_SQL, {"tag": tag, "first": low, "last": high, "start": datetime(2026, 1, 1, tzinfo=UTC)}
            )
    return time.perf_counter() - started


def measure(
    label: str, scenario: int, history: int, transport: TimedTransport, signer: KmsSigner, store: DigestStore
) -> Measured:
    transport.reset()
    TimedSigner.seconds = TimedStore.seconds = 0.0
    started = time.perf_counter()
    result: AnchorResult = run_anchor(transport, signer, store, chain_id="bench", page_events=50_000)
    seconds = time.perf_counter() - started
    return Measured(
        label=label,
        scenario=scenario,
        history=history,
        new_events=result.new_events,
        seconds=seconds,
        leaves_read=result.leaves_read,
        nodes_stored=result.nodes_stored,
        sql_seconds=sum(transport.seconds.values()),
        aws_seconds=TimedSigner.seconds + TimedStore.seconds,
        sql_calls=dict(transport.calls),
    )


def check(url: str, transport: TimedTransport, results: Results, history: int) -> None:
    """Every digest's root is the Merkle root over the stored checksums, read independently; signatures verify."""
    with psycopg.connect(url) as conn:
        checksums = [bytes(row[0]) for row in conn.execute("select checksum from audit.audit_events order by seq")]
    digests = transport.call("list_digests")
    s3 = boto3.client("s3")
    for row in digests:
        obj = s3.get_object(Bucket=BUCKET, Key=row["s3_key"])
        body = obj["Body"].read()
        digest = parse_digest(body)
        expected = merkle_root(checksums[: digest.tree_size]).hex()
        if digest.root_hash != expected:
            raise BenchError(f"digest {digest.digest_seq}: root {digest.root_hash} != {expected}")
        if not verify_signature(body, obj["Metadata"]["signature"], row["public_key_pem"], digest.signing_algorithm):
            raise BenchError(f"digest {digest.digest_seq}: signature does not verify")
    results.checks.append(
        f"history {history:,}: {len(digests)} digests; each root == merkle_root over all {len(checksums):,} stored"
        " checksums read back with psycopg; each signature verifies with the stored public key"
    )


def scenario(admin_url: str, history: int, new: int, repeats: int, results: Results, keep: bool) -> None:
    dbname = f"audit_bench_anchor_{uuid.uuid4().hex[:10]}"
    url = create_database(admin_url, dbname)
    try:
        migrate(url)
        if not results.environment:
            results.environment = {
                **base_environment(server_facts(url)),
                "load_average_at_start": round(os.getloadavg()[0], 2),
            }
        progress(f"history {history:,}: generating events in SQL")
        results.setup_seconds[f"generate {history:,}"] = generate(url, 1, history, "old")
        results.setup_seconds[f"vacuum {history:,}"] = vacuum_analyze(url)
        transport = TimedTransport(PostgresTransport(url, role="service_role"))
        with moto_account():
            boto3.client("s3").create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
            key = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
            signer, store = TimedSigner(key), TimedStore(BUCKET, 1)
            progress(f"history {history:,}: first anchor (one-time, builds the tiles)")
            checkpoint(url)
            results.runs.append(measure("first anchor of the history (one-time)", history, 0, transport, signer, store))
            for repeat in range(repeats):
                progress(f"history {history:,}: {new:,} new events, then the hourly run ({repeat + 1}/{repeats})")
                generate(url, 1, new, f"new{repeat}")
                vacuum_analyze(url)
                checkpoint(url)
                results.runs.append(measure("hourly run", history, history + repeat * new, transport, signer, store))
            end = history + repeats * new
            results.runs.append(measure("hourly run, no new events", history, end, transport, signer, store))
            check(url, transport, results, history)
        transport.close()
    finally:
        drop_databases(admin_url, (dbname,), keep=keep)


def report(results: Results) -> str:
    env = results.environment
    hourly = [run for run in results.runs if run.label == "hourly run"]
    lines = [
        f"Anchor benchmark, {env['date']}",
        environment_line(env),
        "run_anchor(page_events=50000): SQL API over psycopg (service_role), KMS ECC_NIST_P256 and S3 Object Lock in"
        " moto (in process); events generated in SQL (synthetic checksums: the tree is over checksums)",
        "setup, not part of the result: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.setup_seconds.items()),
        "",
        format_table(
            [
                "run",
                "history",
                "new events",
                "seconds",
                "leaves read",
                "tiles stored",
                "SQL s",
                "KMS+S3 s",
                "Python s",
                "new events/s",
            ],
            [
                [
                    run.label,
                    f"{run.history:,}",
                    f"{run.new_events:,}",
                    f"{run.seconds:.2f}",
                    f"{run.leaves_read:,}",
                    f"{run.nodes_stored:,}",
                    f"{run.sql_seconds:.2f}",
                    f"{run.aws_seconds:.2f}",
                    f"{run.python_seconds:.2f}",
                    f"{run.new_events / run.seconds:,.0f}" if run.new_events else "",
                ]
                for run in results.runs
            ],
            [False, True, True, True, True, True, True, True, True, True],
        ),
        "",
    ]
    by_history: dict[int, list[float]] = defaultdict(list)
    for run in hourly:
        by_history[run.scenario].append(run.seconds)
    medians = {history: statistics.median(seconds) for history, seconds in by_history.items()}
    for history, median in sorted(medians.items()):
        lines.append(
            f"hourly run of {hourly[0].new_events:,} new events on {history:,} events of history:"
            f" median {median:.2f} s, fastest {min(by_history[history]):.2f} s over {len(by_history[history])} runs"
            f" ({hourly[0].new_events / median:,.0f} events/s at the median)"
        )
    if len(medians) >= 2:
        shortest, longest = min(medians), max(medians)
        lines.append(
            f"ratio {longest:,} / {shortest:,} events of history: {medians[longest] / medians[shortest]:.2f}x"
            f" (history grew {longest / shortest:.0f}x; leaves read = new events + the open 256-leaf tile,"
            " whatever the history)"
        )
    lines += ["", "Checks (no numbers without them)", *results.checks]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Hourly anchor run time against history size.")
    parser.add_argument(
        "--history", type=int, nargs="+", default=[100_000, 1_000_000], help="history sizes (100000 1000000)"
    )
    parser.add_argument("--new", type=int, default=100_000, help="new events anchored by the hourly run (100000)")
    parser.add_argument("--repeat", type=int, default=3, help="hourly runs per history size, each on --new events (3)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases (names are printed)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if args.new < 1 or args.repeat < 1 or any(size < 1 for size in args.history):
        parser.error("--history, --new and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    admin_url = server_url()
    results = Results(environment={})
    try:
        for history in args.history:
            scenario(admin_url, history, args.new, args.repeat, results, args.keep_db)
    except BenchError as exc:
        print(f"benchmark failed, no numbers: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, no numbers", file=sys.stderr)
        return 130
    print(report(results))
    if args.json:
        data = {
            **asdict(results),
            "runs": [{**asdict(run), "python_seconds": run.python_seconds} for run in results.runs],
        }
        print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
