"""Retention run over a million events past retention, while an ingest stream keeps arriving.

A fresh database gets `--events` events past retention generated in SQL (8 to 9 years old, 2,000
users, untagged or tagged gdpr/iso_27001 only, so the 7-year default applies), the old events of
one user under a legal hold (stored through the event store between the SQL chunks: the run must
hold them back) and a few thousand young events. Another process then calls the real ingest handler
with 10 events every 100 ms (100 events/s) on a fixed schedule: first alone for 30 s, then while
this process runs the real retention run (`retention.runner.run_retention`: select, archive to an
Object-Locked bucket in moto in this process, read back, record, redact). Printed: the run's total
time and its phases, the stream's latency alone and during the run, the targets, and the checks
(counts, the archive's lines, chain links over sample ranges) without which no number is printed.

    .venv/bin/python bench/retention.py [--events N] [--batch N] [--redact N] [--keep-db] [--json]

`DATABASE_URL` names the server (an admin role: it creates and drops a database); without it an
embedded PostgreSQL is started with pgserver. See bench/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final
from unittest import mock

import boto3
import psycopg

# The bench runs outside pytest: bench._common puts the layer, the functions, the SDK and the
# repository root (for tests.support) on the path, and sets the Powertools environment.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    BenchError,
    base_environment,
    checkpoint,
    drop_databases,
    environment_line,
    format_table,
    percentile,
    point_handler_at,
    progress,
    server_facts,
    settle,
    unwind_on_sigterm,
    vacuum_analyze,
    zipf_rank,
)

# The imports below need the path bench._common sets up: keep them in a block of their own.
# isort: split
from audit_common.db import Transport, get_transport, reset_transport
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn
from audit_common.settings import get_settings
from audit_common.verification import verify_chain
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from retention import archive as archive_module
from retention.archive import ArchivedBatch, Archiver
from retention.runner import RunLimits, RunResult, run_retention
from tests.support.apigw import FakeLambdaContext, proxy_event
from tests.support.aws import archive_bucket
from tests.support.events import make_event, realistic_details

TARGET_RUN_SECONDS: Final = 300.0
TARGET_INGEST_P99_MS: Final = 250.0

# --------------------------------------------------------------------------------------------
# The data: events past retention generated in SQL, a held user's and young ones through the store
# --------------------------------------------------------------------------------------------

USERS: Final = 2_000
# The user under a legal hold appears only in events stored through the event store (real
# checksums), so that every generated event (synthetic checksum) is redacted by the run and the
# chain can be verified over any range afterwards.
HELD_USER: Final = f"user-{USERS + 1:04d}"
HELD_PER_CHUNK: Final = 100
YOUNG_EVENTS: Final = 5_000
YOUNG_DAYS: Final = 30
OLDEST_DAYS: Final = 9 * 365  # generated events are 9 to 8 years old; the default policy keeps 7 years
NEWEST_DAYS: Final = 8 * 365
CHUNK_ROWS: Final = 100_000
USER_AGENT: Final = "Mozilla/5.0 (X11; Linux x86_64) Files/3.2"
MIME_TYPES: Final = ("application/pdf", "image/png", "text/csv", "application/zip")
ROLES: Final = ("viewer", "editor", "commenter")
FAILURE_SHARE: Final = 0.02
# Event types of a file-sharing application: (type, share, action).
EVENT_MIX: Final = (
    ("file_access", 0.34, "view_file"),
    ("file_download", 0.18, "download_file"),
    ("file_upload", 0.12, "upload_file"),
    ("file_modify", 0.07, "edit_file"),
    ("file_share", 0.04, "share_file"),
    ("file_delete", 0.02, "delete_file"),
    ("folder_create", 0.02, "create_folder"),
    ("user_login", 0.10, "login"),
    ("user_logout", 0.06, "logout"),
    ("user_activity", 0.03, "update_profile"),
    ("permission_change", 0.01, "grant_role"),
    ("system_event", 0.005, "sync_client"),
    ("security_event", 0.005, "mfa_challenge"),
)
# Tags that set no longer retention than the default: 30% gdpr, 10% iso_27001, 5% both, the rest none.
TAG_MIX: Final = ((0.30, "{gdpr}"), (0.40, "{iso_27001}"), (0.45, "{gdpr,iso_27001}"))


def generation_sql() -> str:
    """One INSERT ... SELECT over generate_series(%(first)s, %(last)s): the chain trigger assigns seq.

    Every random draw is made once per row in the innermost subquery (volatile functions keep it
    from being flattened into the outer ones). Timestamps follow the row number (plus up to 30 s of
    jitter), so they rise with seq. The checksum is a SHA-256 of generated text, not of the canonical
    event: the links are real (the trigger computes them); the run redacts every generated event, and
    the verifier checks only the links of a redacted event.
    """
    bound, type_cases = 0.0, []
    for event_type, share, _ in EVENT_MIX[:-1]:
        bound += share
        type_cases.append(f"when r.r_type < {bound!r} then '{event_type}'")
    types = f"case {' '.join(type_cases)} else '{EVENT_MIX[-1][0]}' end"
    actions = " ".join(f"when '{event_type}' then '{action}'" for event_type, _, action in EVENT_MIX)
    tags = " ".join(f"when t.r_tag < {share!r} then '{value}'" for share, value in TAG_MIX)
    return f"""
insert into audit.audit_events (
  event_id, "timestamp", event_type, user_id, user_email, session_id, ip_address, user_agent,
  resource_path, resource_id, action, status, details, security_level, compliance_tags, metadata, checksum)
select 'old-' || t.i, t.ts, t.event_type, t.user_id, t.user_id || '@example.com',
       'sess-' || t.u || '-' || (t.i / 40), '10.0.0.0'::inet + 4 * t.u + floor(t.r_ip * 3)::int, '{USER_AGENT}',
       case when t.event_type like 'file%%' then '/files/team-' || (t.u %% 50) || '/doc-' || t.doc || '.pdf' end,
       case when t.event_type like 'file%%' then 'doc-' || t.doc end,
       case t.event_type {actions} end,
       case when t.r_status < {FAILURE_SHARE!r} then 'failure' else 'success' end,
       case
         when t.event_type like 'file%%' then jsonb_build_object(
           'file_size', floor(t.r_misc * 50000000)::bigint,
           'mime', (array{list(MIME_TYPES)!r})[1 + floor(t.r_ip * {len(MIME_TYPES)})::int])
         when t.event_type in ('user_login', 'user_logout') then jsonb_build_object(
           'method', 'password', 'mfa', t.r_misc < 0.6)
         when t.event_type = 'permission_change' then jsonb_build_object(
           'role', (array{list(ROLES)!r})[1 + floor(t.r_misc * {len(ROLES)})::int],
           'target_user', 'user-' || lpad((1 + floor(t.r_ip * {USERS})::int)::text, 4, '0'))
         else '{{}}'::jsonb
       end,
       case
         when t.event_type in ('permission_change', 'security_event') then 'high'
         when t.r_status < {FAILURE_SHARE!r} or t.event_type in ('file_delete', 'file_share') then 'medium'
         else 'low'
       end,
       case {tags} else '{{}}' end::text[],
       '{{"app": "files", "version": "3.2.1"}}'::jsonb,
       sha256(convert_to('old-' || t.i || '|' || t.user_id || '|' || t.event_type, 'UTF8'))
  from (
    select r.*, 'user-' || lpad(r.u::text, 4, '0') as user_id, {types} as event_type,
           %(start)s::timestamptz + make_interval(secs => %(span)s * (r.i - 1) / %(total)s + r.r_jitter * 30) as ts
      from (
        select i, least({USERS}, floor(power({USERS + 1}, random()))::int) as u,
               random() as r_type, random() as r_status, random() as r_tag, random() as r_ip,
               random() as r_misc, random() as r_jitter, floor(random() * 100000)::int as doc
          from generate_series(%(first)s::bigint, %(last)s::bigint) i
      ) r
  ) t
"""


def held_events(chunk: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """HELD_PER_CHUNK old events of the held user, spread over [start, end] (the chunk's time range)."""
    step = (end - start) / HELD_PER_CHUNK
    return [
        make_event(
            n,
            event_id=f"held-{chunk}-{n}",
            timestamp=(start + step * n).isoformat(),
            user_id=HELD_USER,
            user_email=f"{HELD_USER}@example.com",
            compliance_tags=["gdpr"] if n % 3 == 0 else [],
        )
        for n in range(HELD_PER_CHUNK)
    ]


def young_events(now: datetime, seed: int = 20261127) -> list[dict[str, Any]]:
    """YOUNG_EVENTS events of the last YOUNG_DAYS days, in time order (one in 50 by the held user)."""
    rng = random.Random(seed)
    events = []
    for n in range(YOUNG_EVENTS):
        user = HELD_USER if n % 50 == 0 else f"user-{zipf_rank(rng.random(), USERS):04d}"
        at = now - timedelta(seconds=rng.random() * YOUNG_DAYS * 86_400)
        events.append(
            make_event(
                n, event_id=f"young-{n}", timestamp=at.isoformat(), user_id=user, user_email=f"{user}@example.com"
            )
        )
    events.sort(key=lambda event: str(event["timestamp"]))
    return events


def store(transport: Transport, events: Sequence[dict[str, Any]]) -> None:
    """Store as the ingest function does (validation, sealing, the chain), 1000 per call."""
    for first in range(0, len(events), 1000):
        batch = [AuditEventIn.model_validate(event) for event in events[first : first + 1000]]
        result = store_events(transport, batch)
        if result.created != len(batch):
            raise BenchError(f"the event store created {result.created} of {len(batch)} events")


def generate(url: str, events: int, now: datetime) -> tuple[float, float]:
    """The generated events in chunks of CHUNK_ROWS (one transaction each), the held user's after each
    chunk; returns the seconds spent in SQL and in the event store."""
    statement = generation_sql()  # built from this module's constants only
    start = now - timedelta(days=OLDEST_DAYS)
    span = timedelta(days=OLDEST_DAYS - NEWEST_DAYS)
    transport = get_transport()
    in_sql = in_store = 0.0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select setseed(0.2026)")  # the same data on every run
        for chunk, first in enumerate(range(1, events + 1, CHUNK_ROWS)):
            last = min(events, first + CHUNK_ROWS - 1)
            started = time.perf_counter()
            conn.execute(
                statement,
                {"first": first, "last": last, "total": events, "start": start, "span": span.total_seconds()},
            )
            in_sql += time.perf_counter() - started
            started = time.perf_counter()
            store(transport, held_events(chunk, start + span * (first - 1) / events, start + span * last / events))
            in_store += time.perf_counter() - started
            progress(f"generated {last:,} of {events:,} events past retention ({in_sql + in_store:.0f} s)")
    started = time.perf_counter()
    store(transport, young_events(now))
    in_store += time.perf_counter() - started
    return in_sql, in_store


def add_legal_hold(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into audit.legal_holds (user_id, reason, created_by) values (%s, %s, %s)",
            (HELD_USER, "litigation hold: case 2026-117 discovery", "legal@example.com"),
        )


def table_facts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*), pg_total_relation_size('audit.audit_events') from audit.audit_events"
        ).fetchone()
    assert row is not None
    return {"events": int(row[0]), "table_mib": int(row[1]) // (1024 * 1024)}


def server_counters(url: str) -> dict[str, int]:
    """WAL position and checkpoints so far, to report what the run wrote."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, checkpoints_timed + checkpoints_req,"
            " pg_total_relation_size('audit.audit_events') from pg_stat_bgwriter"
        ).fetchone()
    assert row is not None
    return {"wal_bytes": int(row[0]), "checkpoints": int(row[1]), "table_bytes": int(row[2])}


# --------------------------------------------------------------------------------------------
# The ingest stream: another process, the real handler, a fixed schedule
# --------------------------------------------------------------------------------------------

INGEST_PERIOD_SECONDS: Final = 0.1
INGEST_EVENTS_PER_REQUEST: Final = 10
BASELINE_SECONDS: Final = 30.0
WARMUP_REQUESTS: Final = 5
# A request that starts more than this after its slot waited for the previous one (or for a CPU).
LATE_SECONDS: Final = 0.01

# (scheduled send, actual send, response) on time.monotonic(), which is one clock for every process.
Sample = tuple[float, float, float]


def stream_request(rng: random.Random, k: int) -> dict[str, Any]:
    """`POST /events` with INGEST_EVENTS_PER_REQUEST new events (realistic ~600-byte details)."""
    now = datetime.now(UTC)
    events = []
    for i in range(INGEST_EVENTS_PER_REQUEST):
        n = k * INGEST_EVENTS_PER_REQUEST + i
        user = f"user-{zipf_rank(rng.random(), USERS):04d}"
        events.append(
            make_event(
                n,
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                timestamp=now.isoformat(),
                user_id=user,
                user_email=f"{user}@example.com",
                details=realistic_details(rng, n),
            )
        )
    return proxy_event("POST", "/events", body={"events": events})


def ingest_stream(url: str, ready: Event, stop: Event, out: Connection) -> None:
    """The child process: warm up, then one request every INGEST_PERIOD_SECONDS until `stop` is set.

    The schedule is fixed (slot k at start + k * period): a slow request does not move later slots,
    the next one is just sent late. Sends (samples, failures) or an error through `out`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops us
    try:
        point_handler_at(url)
        from ingest.handler import lambda_handler

        rng = random.Random(20261127)
        samples: list[Sample] = []
        failures: list[str] = []
        # Powertools prints one EMF metrics line per invocation to stdout (CloudWatch, in Lambda).
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            for n in range(WARMUP_REQUESTS):  # the connection, the first validation, the first plan
                lambda_handler(stream_request(rng, n), FakeLambdaContext())
            settle()
            ready.set()
            start = time.monotonic()
            k = 0
            request = stream_request(rng, WARMUP_REQUESTS)
            while not stop.is_set():
                scheduled = start + k * INGEST_PERIOD_SECONDS
                wait = scheduled - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sent = time.monotonic()
                response = lambda_handler(request, FakeLambdaContext())
                answered = time.monotonic()
                samples.append((scheduled, sent, answered))
                if response["statusCode"] != 201 and len(failures) < 10:
                    failures.append(f"request {k}: status {response['statusCode']}: {str(response.get('body'))[:300]}")
                k += 1
                request = stream_request(rng, WARMUP_REQUESTS + k)
        out.send(("done", samples, failures))
    except BaseException:
        out.send(("error", traceback.format_exc(), []))
        raise
    finally:
        reset_transport()


@dataclass
class StreamWindow:
    """The stream's requests whose slot fell in one window."""

    condition: str
    samples: list[Sample]

    @property
    def latencies(self) -> list[float]:
        """From the scheduled send to the response: includes waiting for a slow previous request."""
        return [answered - scheduled for scheduled, _, answered in self.samples]

    @property
    def service_times(self) -> list[float]:
        return [answered - sent for _, sent, answered in self.samples]

    @property
    def late(self) -> int:
        return sum(1 for scheduled, sent, _ in self.samples if sent - scheduled > LATE_SECONDS)

    def ms(self, q: int | None = None, *, service: bool = False) -> float:
        values = self.service_times if service else self.latencies
        return (max(values) if q is None else percentile(values, q)) * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.samples),
            "p50_ms": self.ms(50),
            "p99_ms": self.ms(99),
            "max_ms": self.ms(),
            "late_starts": self.late,
            "service_p50_ms": self.ms(50, service=True),
            "service_p99_ms": self.ms(99, service=True),
            "service_max_ms": self.ms(service=True),
        }


class IngestStream:
    """The child process as a context manager: it is stopped (or terminated) however the block ends."""

    def __init__(self, url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._stop = context.Event()
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=ingest_stream, args=(url, self._ready, self._stop, sender), name="ingest-stream", daemon=True
        )

    def __enter__(self) -> IngestStream:
        self._process.start()
        deadline = time.monotonic() + 120
        while not self._ready.wait(0.5):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BenchError(f"the ingest stream did not start: {self._outcome(1)[1]}")
        return self

    def _outcome(self, timeout: float) -> tuple[str, Any, list[str]]:
        if not self._receiver.poll(timeout):
            return ("silent", "no answer from the ingest stream process", [])
        outcome: tuple[str, Any, list[str]] = self._receiver.recv()
        return outcome

    def stop(self) -> list[Sample]:
        """Stop the stream and return its samples; a failed request or a crash is a BenchError."""
        self._stop.set()
        kind, payload, failures = self._outcome(60)
        if kind != "done":
            raise BenchError(f"the ingest stream failed: {payload}")
        if failures:
            raise BenchError("the ingest stream was refused: " + "; ".join(failures))
        samples: list[Sample] = payload
        return samples

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        # An unread answer larger than the pipe's buffer would keep the child in send(): drain it.
        deadline = time.monotonic() + 10
        while self._process.is_alive() and time.monotonic() < deadline:
            if self._receiver.poll(0.1):
                with contextlib.suppress(EOFError, OSError):
                    self._receiver.recv()
        self._process.join(1)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


# --------------------------------------------------------------------------------------------
# The run, with its phases on their own clocks
# --------------------------------------------------------------------------------------------


@dataclass
class Clock:
    """Seconds and call durations per phase, added up inside the run."""

    seconds: dict[str, float] = field(default_factory=dict)
    durations: dict[str, list[float]] = field(default_factory=dict)

    def add(self, phase: str, elapsed: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed
        self.durations.setdefault(phase, []).append(elapsed)

    def calls(self, phase: str) -> int:
        return len(self.durations.get(phase, []))

    @property
    def calls_in_run(self) -> int:
        """SQL API calls and archive uploads (encoding happens inside the uploads)."""
        return sum(len(durations) for phase, durations in self.durations.items() if phase != "encode")


class TimedArchiver(Archiver):
    """The real Archiver, with its put_batch on the clock (and a progress line now and then)."""

    def __init__(self, bucket: str, lock_days: int, clock: Clock, total: int) -> None:
        super().__init__(bucket, lock_days)
        self.clock = clock
        self.total = total
        self.archived = 0
        self.started = 0.0  # set when the run starts

    def put_batch(self, run_id: str, as_of: datetime, rows: list[dict[str, Any]]) -> ArchivedBatch:
        started = time.perf_counter()
        try:
            return super().put_batch(run_id, as_of, rows)
        finally:
            self.clock.add("archive", time.perf_counter() - started)
            before, self.archived = self.archived, self.archived + len(rows)
            if self.archived // 100_000 > before // 100_000:
                progress(f"run: {self.archived:,} of {self.total:,} archived ({time.monotonic() - self.started:.0f} s)")


# moto's S3 has bare `except:` clauses (event notifications, access logging) that swallow a
# KeyboardInterrupt or SystemExit raised while an upload is in moto's code: the signal is
# remembered here too, and raised again at the next SQL API call of the run.
_pending_signal: list[int] = []


def remember_signals() -> None:
    """Ctrl-C and SIGTERM (already turned into SystemExit by unwind_on_sigterm) are also remembered."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def handler(number: int, frame: FrameType | None, previous: Any = previous) -> None:
            _pending_signal.append(number)
            if callable(previous):
                previous(number, frame)
            raise KeyboardInterrupt

        signal.signal(signum, handler)


def raise_pending_signal() -> None:
    if _pending_signal:
        if _pending_signal[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + _pending_signal[0])


@contextlib.contextmanager
def phase_clock(transport: Transport, clock: Clock) -> Iterator[None]:
    """Time every SQL API call by function, and the archive's encoding, inside the run itself."""
    call, encode = transport.call, archive_module.encode_lines

    def timed_call(function: str, args: Mapping[str, Any] | None = None) -> Any:
        raise_pending_signal()
        started = time.perf_counter()
        try:
            return call(function, args)
        finally:
            clock.add(function, time.perf_counter() - started)

    def timed_encode(rows: list[dict[str, Any]]) -> bytes:
        started = time.perf_counter()
        try:
            return encode(rows)
        finally:
            clock.add("encode", time.perf_counter() - started)

    with (
        mock.patch.object(transport, "call", new=timed_call),
        mock.patch.object(archive_module, "encode_lines", new=timed_encode),
    ):
        yield


@dataclass
class Phase:
    """One line of the phase table."""

    name: str
    calls: int
    seconds: float
    events: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 and self.events else 0.0


def phases(clock: Clock, result: RunResult, total: float) -> list[Phase]:
    scanned = result.archived + result.held_back

    def timed(name: str, key: str, events: int) -> Phase:
        return Phase(name, clock.calls(key), clock.seconds.get(key, 0.0), events)

    rows = [
        timed("select candidates (audit.retention_candidates)", "retention_candidates", scanned),
        timed("archive (Archiver.put_batch: encode, upload, read back)", "archive", result.archived),
        timed("  of which encoding (orjson lines + gzip)", "encode", result.archived),
        timed("record batch (audit.retention_record_batch)", "retention_record_batch", result.archived),
        timed("redact (audit.retention_redact_batch)", "retention_redact_batch", result.redacted),
    ]
    accounted = sum(phase.seconds for phase in rows if not phase.name.startswith(" "))
    others = sum(clock.calls(name) for name in ("retention_start", "retention_advance", "retention_finish"))
    # No rate for the rest: it handles no events of its own.
    rows.append(Phase("rest: start, advance, finish, the runner's loop", others, total - accounted, 0))
    rows.append(Phase("retention run, total (archived and redacted)", clock.calls_in_run, total, result.archived))
    return rows


# --------------------------------------------------------------------------------------------
# Checks: no number is printed for a run that did not do its job
# --------------------------------------------------------------------------------------------


@dataclass
class ArchiveFacts:
    objects: int = 0
    object_bytes: int = 0
    manifests: int = 0
    manifest_bytes: int = 0
    lines: int = 0


def archive_facts(bucket: str) -> ArchiveFacts:
    """List the bucket, and count the lines of every archive object (gunzipped)."""
    s3 = boto3.client("s3")
    facts = ArchiveFacts()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key, size = item["Key"], item["Size"]
            if key.endswith(".jsonl.gz"):
                facts.objects += 1
                facts.object_bytes += size
                facts.lines += gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).count(b"\n")
            elif key.endswith(".manifest.json"):
                facts.manifests += 1
                facts.manifest_bytes += size
    return facts


VERIFY_FIRST_ROWS: Final = CHUNK_ROWS + HELD_PER_CHUNK + 10_000  # the first chunk, its held events and on
VERIFY_LAST_ROWS: Final = 50_000  # the last generated events, the held and young ones, the stream's, the head


def check(results: Results, url: str, generated: int, held: int) -> None:
    """Counts, archive and chain links; appends a line per check, raises BenchError on the first failure."""
    run = results.run
    assert run is not None
    lines = results.checks

    def expect(ok: bool, line: str) -> None:
        lines.append(f"{line}: {'yes' if ok else 'NO'}")
        if not ok:
            raise BenchError(f"check failed: {line}")

    expect(run.status == "completed", f"run status {run.status}")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) filter (where redaction_reason = 'retention'),"
            " count(*) filter (where redacted_at is not null and redaction_reason is distinct from 'retention'),"
            " count(*) filter (where user_id = %s and \"timestamp\" < now() - interval '7 years'"
            "                    and redacted_at is null),"
            " count(*) filter (where \"timestamp\" >= now() - interval '7 years' and redacted_at is not null),"
            " (select count(*) from audit.retention_batches where run_id = %s),"
            " (select coalesce(sum(cardinality(seqs)), 0) from audit.retention_batches where run_id = %s)"
            " from audit.audit_events",
            (HELD_USER, run.run_id, run.run_id),
        ).fetchone()
    assert row is not None
    redacted_rows, other_redactions, held_intact, young_redacted, batches, batch_seqs = (int(v) for v in row)
    expect(
        redacted_rows == run.redacted == run.archived,
        f"redacted rows in the table = redacted = archived ({redacted_rows:,}, {run.redacted:,}, {run.archived:,};"
        " held events are never archived)",
    )
    expect(
        run.archived + run.held_back == generated + held and run.held_back == held,
        f"archived + held back = events past retention ({run.archived:,} + {run.held_back:,} = {generated + held:,})",
    )
    expect(
        held_intact == held and other_redactions == 0 and young_redacted == 0,
        f"held events intact {held_intact:,} of {held:,}; events not past retention redacted {young_redacted}",
    )
    archive = results.archive
    expect(
        archive.objects == archive.manifests == batches and archive.lines == batch_seqs == run.archived,
        f"archive: {archive.objects:,} objects and {archive.manifests:,} manifests for {batches:,} batches;"
        f" {archive.lines:,} lines = archived",
    )
    transport = get_transport()
    head = int(transport.call("chain_state", {})["head_seq"])
    if head <= VERIFY_FIRST_ROWS + VERIFY_LAST_ROWS:
        ranges = [(1, head)]
    else:
        ranges = [(1, VERIFY_FIRST_ROWS), (head - VERIFY_LAST_ROWS + 1, head)]
    checked = redacted = 0
    failures = []
    for first, last in ranges:
        verified = verify_chain(transport, from_seq=first, to_seq=last, max_rows=last - first + 1)
        checked += verified.checked
        redacted += verified.redacted
        if not verified.valid or not verified.complete:
            failures.append(f"{verified.reason} at seq {verified.first_invalid_seq}: {verified.message}")
    expect(
        not failures,
        "chain verifies over seq "
        + " and ".join(f"{first:,}-{last:,}" for first, last in ranges)
        + f" (verify_chain: {checked:,} events, {redacted:,} of them redacted: links only; the others re-sealed)"
        + "".join(f"; {failure}" for failure in failures),
    )


# --------------------------------------------------------------------------------------------
# Results and output
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything the bench measured, printed as tables and optionally as JSON."""

    environment: dict[str, Any]
    setup_seconds: dict[str, float] = field(default_factory=dict)
    run: RunResult | None = None
    run_seconds: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    redact_ms: list[float] = field(default_factory=list)
    archive: ArchiveFacts = field(default_factory=ArchiveFacts)
    server: dict[str, int] = field(default_factory=dict)
    streams: list[StreamWindow] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def mib(size: float) -> str:
    return f"{size / (1024 * 1024):,.1f} MiB"


def report(results: Results) -> str:
    env, setup, run = results.environment, results.setup_seconds, results.run
    assert run is not None
    alone, during = results.streams
    out = [
        f"Retention benchmark, {env['date']}",
        environment_line(env),
        f"{env['events_before']:,} events in audit.audit_events ({env['table_mib']:,} MiB with indexes) before the"
        f" run: {env['generated']:,} generated in SQL, 8-9 years old ({USERS:,} users, Zipf-like; untagged or"
        f" gdpr/iso_27001: the 7-year default applies) + {env['held']:,} old events of {HELD_USER} (legal hold)"
        f" + {YOUNG_EVENTS:,} of the last {YOUNG_DAYS} days, both through the event store",
        f"setup, not part of the result: generation in SQL {setup['sql']:.1f} s, event store {setup['store']:.1f} s,"
        f" vacuum analyze {setup['vacuum']:.1f} s",
        f"run_retention(batch_events={env['batch']}, redact_events={env['redact']}); S3 = moto in this process"
        f" (Object Lock COMPLIANCE, {env['lock_days']} day); ingest: {INGEST_EVENTS_PER_REQUEST} events every"
        f" {INGEST_PERIOD_SECONDS * 1000:.0f} ms through ingest.handler in another process",
        "",
        format_table(
            ["phase", "calls", "seconds", "share", "events/s"],
            [
                [
                    phase.name,
                    f"{phase.calls:,}",
                    f"{phase.seconds:.1f}",
                    f"{phase.seconds / results.run_seconds:.0%}",
                    f"{phase.events_per_second:,.0f}" if phase.events else "",
                ]
                for phase in results.phases
            ],
            [False, True, True, True, True],
        ),
        "",
        f"run: archived {run.archived:,}, redacted {run.redacted:,}, held back {run.held_back:,};"
        f" {results.archive.objects:,} archive objects ({mib(results.archive.object_bytes)} gzip JSON lines)"
        f" + {results.archive.manifests:,} manifests ({mib(results.archive.manifest_bytes)})",
        f"redaction transactions: {len(results.redact_ms):,}, median {statistics.median(results.redact_ms):.1f} ms,"
        f" p99 {percentile(results.redact_ms, 99):.1f} ms, max {max(results.redact_ms):.1f} ms",
        f"server during the run: {mib(results.server['wal_bytes'])} of WAL, {results.server['checkpoints']}"
        f" checkpoints; audit.audit_events {env['table_mib']:,} -> {results.server['table_bytes'] // 2**20:,} MiB",
        "",
        "Ingest stream (latency from the request's scheduled send to its response)",
        format_table(
            ["condition", "requests", "p50 ms", "p99 ms", "max ms"],
            [
                [w.condition, f"{len(w.samples):,}", f"{w.ms(50):.1f}", f"{w.ms(99):.1f}", f"{w.ms():.1f}"]
                for w in results.streams
            ],
            [False, True, True, True, True],
        ),
        f"requests sent more than {LATE_SECONDS * 1000:.0f} ms after their slot: alone {alone.late},"
        f" during retention {during.late}; p99 from the actual send (no wait for a late slot): alone"
        f" {alone.ms(99, service=True):.1f} ms, during retention {during.ms(99, service=True):.1f} ms",
        "",
    ]
    run_met = results.run_seconds < TARGET_RUN_SECONDS
    p99 = during.ms(99)
    out += [
        f"retention run < {TARGET_RUN_SECONDS:.0f} s: {'met' if run_met else 'NOT met'} ({results.run_seconds:.1f} s,"
        f" {run.archived / results.run_seconds:,.0f} events/s archived and redacted)",
        f"ingest p99 during the run < {TARGET_INGEST_P99_MS:.0f} ms:"
        f" {'met' if p99 < TARGET_INGEST_P99_MS else 'NOT met'}"
        f" ({p99:.1f} ms; {alone.ms(99):.1f} ms with no retention running)",
        "",
        "Checks (no numbers without them)",
        *results.checks,
        "generated events carry synthetic checksums (SHA-256 of generated text): they are all redacted by the run,"
        " and the verifier checks a redacted event's links, not its checksum",
    ]
    return "\n".join(out)


def as_json(results: Results) -> str:
    run = results.run
    assert run is not None
    alone, during = results.streams
    data = {
        "environment": results.environment,
        "setup_seconds": results.setup_seconds,
        "run": asdict(run),
        "run_seconds": results.run_seconds,
        "phases": [{**asdict(phase), "events_per_second": phase.events_per_second} for phase in results.phases],
        "redaction_transactions_ms": {
            "count": len(results.redact_ms),
            "median": statistics.median(results.redact_ms),
            "p99": percentile(results.redact_ms, 99),
            "max": max(results.redact_ms),
        },
        "archive": asdict(results.archive),
        "server_during_run": results.server,
        "ingest": {window.condition: window.summary() for window in results.streams},
        "targets": {
            "run_seconds": TARGET_RUN_SECONDS,
            "run_met": results.run_seconds < TARGET_RUN_SECONDS,
            "ingest_p99_ms": TARGET_INGEST_P99_MS,
            "ingest_p99_met": during.ms(99) < TARGET_INGEST_P99_MS,
            "ingest_p99_alone_ms": alone.ms(99),
        },
        "checks": results.checks,
    }
    return json.dumps(data, indent=2)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

BUCKET: Final = "audit-archive-bench"
LOCK_DAYS: Final = 1


def window(samples: Sequence[Sample], condition: str, start: float, end: float) -> StreamWindow:
    picked = [sample for sample in samples if start <= sample[0] < end]
    if not picked:
        raise BenchError(f"no ingest request in the window {condition!r}")
    return StreamWindow(condition, picked)


def run(args: argparse.Namespace, admin_url: str, dbname: str) -> Results:
    load_average = os.getloadavg()[0]
    url = create_database(admin_url, dbname)
    migrate(url)
    # Before the handler is configured: point_handler_at sets DATABASE_URL, which the header reports on.
    environment = {**base_environment(server_facts(url)), "load_average_at_start": round(load_average, 2)}
    point_handler_at(url)
    now = datetime.now(UTC)
    progress(f"generating {args.events:,} events past retention in SQL")
    in_sql, in_store = generate(url, args.events, now)
    add_legal_hold(url)
    progress("vacuum analyze")
    vacuum = vacuum_analyze(url)
    held = HELD_PER_CHUNK * math.ceil(args.events / CHUNK_ROWS)
    facts = table_facts(url)
    results = Results(
        environment={
            **environment,
            "events_before": facts["events"],
            "table_mib": facts["table_mib"],
            "generated": args.events,
            "held": held,
            "batch": args.batch,
            "redact": args.redact,
            "lock_days": LOCK_DAYS,
        },
        setup_seconds={"sql": in_sql, "store": in_store, "vacuum": vacuum},
    )
    checkpoint(url)
    transport = get_transport()
    with archive_bucket(BUCKET) as bucket, IngestStream(url) as stream:
        clock = Clock()
        archiver = TimedArchiver(bucket, LOCK_DAYS, clock, args.events)
        settle()
        progress(f"ingest stream alone for {BASELINE_SECONDS:.0f} s")
        alone_start = time.monotonic()
        time.sleep(BASELINE_SECONDS)
        alone_end = time.monotonic()
        before = server_counters(url)
        progress("retention run, with the ingest stream")
        limits = RunLimits(batch_events=args.batch, redact_events=args.redact)
        with phase_clock(transport, clock):
            run_start = archiver.started = time.monotonic()
            result = run_retention(transport, archiver, triggered_by="bench", limits=limits)
            run_end = time.monotonic()
        raise_pending_signal()
        samples = stream.stop()
        after = server_counters(url)
        results.run, results.run_seconds = result, run_end - run_start
        results.phases = phases(clock, result, results.run_seconds)
        results.redact_ms = [seconds * 1000 for seconds in clock.durations.get("retention_redact_batch", [0.0])]
        results.server = {
            "wal_bytes": after["wal_bytes"] - before["wal_bytes"],
            "checkpoints": after["checkpoints"] - before["checkpoints"],
            "table_bytes": after["table_bytes"],
        }
        results.streams = [
            window(samples, f"alone ({BASELINE_SECONDS:.0f} s)", alone_start, alone_end),
            window(samples, f"during retention ({results.run_seconds:.0f} s)", run_start, run_end),
        ]
        progress("checking the result: counts, the archive, chain links")
        results.archive = archive_facts(bucket)
        check(results, url, args.events, held)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        description="Retention run (archive + redaction) over events past retention, and the latency of a"
        " concurrent ingest stream (100 events/s) with and without it.",
        epilog="The server is DATABASE_URL (an admin role) or an embedded pgserver. See bench/README.md.",
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events past retention, generated in SQL (1000000)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=settings.retention_batch_events,
        help="events per archive object, at most 10000"
        f" (AUDIT_RETENTION_BATCH_EVENTS: {settings.retention_batch_events})",
    )
    parser.add_argument(
        "--redact",
        type=int,
        default=settings.retention_redact_events,
        help="events per redaction transaction, at most 5000"
        f" (AUDIT_RETENTION_REDACT_EVENTS: {settings.retention_redact_events})",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database (its name is printed)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON (CI artefact)")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be positive")
    if not 1 <= args.batch <= 10_000 or not 1 <= args.redact <= 5_000:
        parser.error("--batch must be between 1 and 10000 and --redact between 1 and 5000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    remember_signals()
    admin_url = server_url()
    dbname = f"audit_bench_retention_{uuid.uuid4().hex[:10]}"
    try:
        results = run(args, admin_url, dbname)
    except BenchError as exc:
        print(f"benchmark failed, no numbers: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, no numbers", file=sys.stderr)
        return 130
    finally:
        reset_transport()
        get_settings.cache_clear()
        drop_databases(admin_url, (dbname,), keep=args.keep_db)
    print(report(results))
    if args.json:
        print(as_json(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
