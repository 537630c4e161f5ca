"""Ingest throughput: the real handler beside the seed's per-event INSERT and a trigger-less COPY.

Every throughput number comes from this one process, on the same events, against fresh
databases (dropped at the end): the ingest handler fed API Gateway proxy events of `--batch`
events each (hash chain on), then the same rows through the seed's approach (one INSERT per
event, autocommit) and through COPY into a copy of the event table without its triggers (the
physical limit of the server). Then the handler path is split into stages, each timed alone
(its SQL API call into a second fresh database), to show where the time goes. Only the
cold-start import runs elsewhere, in fresh interpreters.

    .venv/bin/python bench/ingest.py [--events N] [--batch N] [--seed-events N] [--keep-db] [--json]

`DATABASE_URL` names the server (an admin role: it creates and drops databases); without it an
embedded PostgreSQL is started with pgserver. See bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

# The bench runs outside pytest: bench._common puts the layer, the functions, the SDK and the
# repository root (for tests.support) on the path, and sets the Powertools environment.
if str(Path(__file__).resolve().parents[1]) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    POWERTOOLS_ENV,
    ROOT,
    SOURCE_DIRS,
    BenchError,
    base_environment,
    checkpoint,
    drop_databases,
    environment_line,
    format_table,
    point_handler_at,
    progress,
    server_facts,
    settle,
    unwind_on_sigterm,
)

# The imports below need the path bench._common sets up: keep them in a block of their own.
# isort: split
from audit_common.api import EventResult, IngestResponse, request_events, validate_events
from audit_common.db import PostgresTransport, reset_transport
from audit_common.event_store import seal_for_storage
from audit_common.integrity import SEALED_FIELDS
from audit_common.integrity.seal import SEAL_SALT_BYTES
from audit_common.settings import get_settings
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from ingest.handler import lambda_handler
from tests.support.apigw import FakeLambdaContext, proxy_event
from tests.support.events import make_event, realistic_details

TARGET_EVENTS_PER_SECOND: Final = 10_000
COLD_START_RUNS: Final = 3
MIB: Final = 1024 * 1024

# The seed's table and indexes (seed/000_48a3f80907478020.txt, "Database Schema"), in a schema of its own.
SEED_DDL: Final = """
create schema bench_seed;
create table bench_seed.audit_events (
    id uuid primary key default gen_random_uuid(),
    event_id varchar(255) unique not null,
    timestamp timestamptz not null,
    event_type varchar(100) not null,
    user_id varchar(255) not null,
    user_email varchar(255),
    session_id varchar(255) not null,
    ip_address inet not null,
    user_agent text,
    resource_path text not null,
    resource_id varchar(255),
    action varchar(255) not null,
    status varchar(50) not null,
    details jsonb not null,
    security_level varchar(50) not null,
    compliance_tags text[] not null,
    checksum varchar(64) not null,
    parent_event_id uuid,
    metadata jsonb,
    created_at timestamptz default now()
);
create index idx_audit_events_user_id on bench_seed.audit_events(user_id);
create index idx_audit_events_timestamp on bench_seed.audit_events(timestamp);
create index idx_audit_events_event_type on bench_seed.audit_events(event_type);
create index idx_audit_events_security_level on bench_seed.audit_events(security_level);
"""
SEED_INSERT: Final = """
insert into bench_seed.audit_events (
    event_id, timestamp, event_type, user_id, user_email, session_id, ip_address, user_agent,
    resource_path, resource_id, action, status, details, security_level, compliance_tags,
    checksum, parent_event_id, metadata)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
# LIKE ... INCLUDING ALL keeps columns, defaults, checks and indexes, but never triggers: no chain.
COPY_DDL: Final = """
create schema bench_copy;
create table bench_copy.audit_events (like audit.audit_events including all);
"""
COPY_COLUMNS: Final = (
    "seq",
    *SEALED_FIELDS,
    "seal_version",
    "seal_salt",
    "payload_commitment",
    "checksum",
    "prev_hash",
    "chain_hash",
)
GENESIS: Final = bytes(32)

ProxyEvent = dict[str, Any]
Sealed = dict[str, Any]


@dataclass
class Row:
    """One line of the comparison table."""

    approach: str
    events: int
    seconds: float
    note: str = ""
    # 1-minute load average when the row's measurement ended (the machine is shared: it says how noisy the row is).
    load: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Stage:
    """One step of the handler path, timed alone over all events."""

    name: str
    seconds: float
    events: int

    @property
    def micros_per_event(self) -> float:
        return self.seconds / self.events * 1e6


@dataclass
class Results:
    """Everything the bench measured, printed as a table and optionally as JSON."""

    environment: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    verification: Row | None = None
    stages: list[Stage] = field(default_factory=list)
    # The SQL API stage seen from the server (track_functions): where its time goes inside PostgreSQL.
    sql_split: list[Stage] = field(default_factory=list)
    handler_seconds_per_event: float = 0.0
    cold_start_ms: list[float] = field(default_factory=list)
    rss_before_handler_mib: float = 0.0
    peak_rss_mib: float = 0.0
    request_peak_traced_mib: float = 0.0
    chain_cross_check: bool = False


# --------------------------------------------------------------------------------------------
# Inputs (built before any timing)
# --------------------------------------------------------------------------------------------


def build_events(count: int, *, first: int = 0, seed: int = 20261127) -> list[dict[str, Any]]:
    """`count` client events with realistic ~600-byte details and random UUID event ids."""
    rng = random.Random(seed + first)
    # Timestamps in the recent past: the API refuses events more than 5 minutes in the future.
    start = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for n in range(first, first + count):
        events.append(
            make_event(
                n,
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                timestamp=(start + timedelta(milliseconds=n)).isoformat(),
                details=realistic_details(rng, n),
            )
        )
    return events


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def build_requests(events: Sequence[dict[str, Any]], batch: int) -> list[ProxyEvent]:
    """API Gateway proxy events for `POST /events`, `batch` events each, bodies serialised now."""
    return [proxy_event("POST", "/events", body={"events": list(chunk)}) for chunk in chunks(events, batch)]


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Row 1: the real handler, then chain verification through it
# --------------------------------------------------------------------------------------------


def invoke_all(requests: Sequence[ProxyEvent], sink: TextIO) -> tuple[float, list[dict[str, Any]]]:
    """Send every request through the handler in order; return the elapsed time and the responses."""
    responses = []
    # Powertools prints one EMF metrics line per invocation to stdout (CloudWatch, in Lambda).
    with contextlib.redirect_stdout(sink):
        started = time.perf_counter()
        for request in requests:
            responses.append(lambda_handler(request, FakeLambdaContext()))
        elapsed = time.perf_counter() - started
    return elapsed, responses


def check_created(requests: Sequence[ProxyEvent], responses: Sequence[dict[str, Any]]) -> None:
    """Every request must have answered 201 with all of its events created."""
    for index, (request, response) in enumerate(zip(requests, responses, strict=True)):
        sent = len(orjson.loads(request["body"])["events"])
        body = orjson.loads(response.get("body") or "null")
        created = body.get("created") if isinstance(body, dict) else None
        if response["statusCode"] != 201 or created != sent:
            raise BenchError(
                f"request {index}: status {response['statusCode']}, created {created} of {sent}: "
                f"{str(response.get('body'))[:500]}"
            )


def verify_through_handler(expected: int, sink: TextIO) -> Row:
    """`GET /integrity/verify` from seq 1 until complete; every event must verify."""
    checked = 0
    from_seq: int | None = 1
    started = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        while from_seq is not None:
            response = lambda_handler(
                proxy_event("GET", f"/integrity/verify?from_seq={from_seq}&to_seq={expected}"),
                FakeLambdaContext(),
            )
            body = orjson.loads(response["body"])
            if response["statusCode"] != 200 or not body.get("valid"):
                raise BenchError(f"chain verification failed: {response['statusCode']} {response['body'][:500]}")
            checked += body["checked"]
            from_seq = body["next_from_seq"]
    elapsed = time.perf_counter() - started
    if checked != expected:
        raise BenchError(f"chain verification checked {checked} events, expected {expected}")
    return Row("chain verification (GET /integrity/verify)", checked, elapsed, "valid")


def request_peak_memory(request: ProxyEvent, sink: TextIO) -> float:
    """Peak Python heap (tracemalloc) while the handler serves one batch, in MiB."""
    tracemalloc.start()
    try:
        _, responses = invoke_all([request], sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check_created([request], responses)
    return peak / MIB


# --------------------------------------------------------------------------------------------
# Where the time goes: the handler path's stages, each over all events
# --------------------------------------------------------------------------------------------


STAGE_NAMES: Final = (
    "JSON parse of the body (orjson.loads)",
    "pydantic validation (request_events + validate_events)",
    "sealing, seal v2: salts, commitment, checksum (seal_for_storage)",
    'SQL API call alone (transport.call("ingest_events"))',
    "response model (EventResult.model_validate)",
    "response serialisation (model_dump + orjson)",
)


def measure_stages(requests: Sequence[ProxyEvent], transport: PostgresTransport, events: int) -> list[Stage]:
    """The handler's steps without the handler: request by request, each step on its own clock.

    Requests are processed one at a time, as the handler does, so each request's objects are freed
    before the next (timing each step over all events at once would mostly time the garbage collector
    walking millions of live objects). The SQL API call stores into another fresh database.
    """
    totals = [0.0] * len(STAGE_NAMES)
    created = 0
    for request in requests:
        t0 = time.perf_counter()
        parsed = orjson.loads(request["body"])
        t1 = time.perf_counter()
        validated = validate_events(request_events(parsed))
        t2 = time.perf_counter()
        # As store_events seals: one read of the random source per request, a 16-byte slice per event.
        salts = os.urandom(SEAL_SALT_BYTES * len(validated))
        sealed = [
            seal_for_storage(event, salts[index * SEAL_SALT_BYTES : (index + 1) * SEAL_SALT_BYTES])
            for index, event in enumerate(validated)
        ]
        t3 = time.perf_counter()
        outcome = transport.call("ingest_events", {"p_events": sealed})
        t4 = time.perf_counter()
        results = [EventResult.model_validate(result) for result in outcome]
        done = sum(1 for result in results if result.status == "created")
        response = IngestResponse(results=results, created=done, duplicates=len(results) - done)
        t5 = time.perf_counter()
        orjson.dumps(response.model_dump(mode="json")).decode()
        t6 = time.perf_counter()
        for index, seconds in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            totals[index] += seconds
        created += done
    if created != events:
        raise BenchError(f"the SQL API stage created {created} of {events} events")
    return [Stage(name, seconds, events) for name, seconds in zip(STAGE_NAMES, totals, strict=True)]


SERVER_FUNCTIONS: Final = ("ingest_events", "tg_chain_link", "tg_chain_head_advance")


def enable_function_timing(url: str, dbname: str) -> bool:
    """Time PL/pgSQL functions in `dbname` (track_functions, superuser only); False when not allowed."""
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("alter database {} set track_functions = 'pl'").format(sql.Identifier(dbname)))
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def server_split(url: str, calls: int, events: int, sql_stage: Stage) -> list[Stage]:
    """Split the SQL API stage by the server's function timings (flushed when the session ends)."""
    timings: dict[str, tuple[float, float]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(50):
            rows = conn.execute(
                "select funcname, calls, total_time, self_time from pg_stat_user_functions"
                " where schemaname = 'audit' and funcname = any(%s)",
                (list(SERVER_FUNCTIONS),),
            ).fetchall()
            timings = {str(name): (float(total), float(own)) for name, count, total, own in rows if count}
            counts = {str(name): int(count) for name, count, _, _ in rows}
            if counts.get("ingest_events") == calls and counts.get("tg_chain_link") == events:
                break
            time.sleep(0.1)
        else:
            return []
    server_ms = timings["ingest_events"][0]
    link_ms = timings["tg_chain_link"][0]
    advance_ms = timings["tg_chain_head_advance"][0]
    return [
        Stage("  in PostgreSQL: audit.ingest_events, in all", server_ms / 1000, events),
        Stage(
            "    its SQL: JSON to rows, duplicate check, insert + indexes, result",
            timings["ingest_events"][1] / 1000,
            events,
        ),
        Stage("    row trigger audit.tg_chain_link (seq, chain_hash)", link_ms / 1000, events),
        Stage("    statement trigger audit.tg_chain_head_advance", advance_ms / 1000, events),
        Stage(
            "  outside it: JSON both ways (driver, server json input), protocol",
            sql_stage.seconds - server_ms / 1000,
            events,
        ),
    ]


def stored_salts(url: str) -> dict[str, bytes]:
    """The salt the handler's run stored for each event_id (seal v2 draws a new one per event)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select event_id, seal_salt from audit.audit_events where seal_salt is not null").fetchall()
    return {str(event_id): bytes(salt) for event_id, salt in rows}


def seal_all(requests: Sequence[ProxyEvent], salts: dict[str, bytes]) -> list[list[Sealed]]:
    """The sealed records of every request, sealed again here with the salts the handler stored (not timed).

    With the same salt, seal_for_storage must give the same payload commitment and checksum as the handler's
    run stored, so the chain computed for the COPY rows must end where the stored one does.
    """
    sealed = []
    for request in requests:
        events = validate_events(request_events(orjson.loads(request["body"])))
        try:
            sealed.append([seal_for_storage(event, salts[event.event_id]) for event in events])
        except KeyError as exc:
            raise BenchError(f"the handler's run stored no salt for event {exc}") from None
    return sealed


# --------------------------------------------------------------------------------------------
# Row 2: the seed's approach; row 3: the physical limit
# --------------------------------------------------------------------------------------------


def seed_checksum(event: dict[str, Any]) -> str:
    """The seed's integrity field: SHA-256 of the event as json.dumps(sort_keys=True)."""
    return hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()


def run_seed_approach(url: str, events: Sequence[dict[str, Any]]) -> float:
    """One INSERT per event, autocommit, checksum computed in Python per event (as the seed did)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_DDL)
        started = time.perf_counter()
        for event in events:
            conn.execute(
                SEED_INSERT,
                (
                    event["event_id"],
                    datetime.fromisoformat(event["timestamp"]),
                    event["event_type"],
                    event["user_id"],
                    event["user_email"],
                    event["session_id"],
                    event["ip_address"],
                    event["user_agent"],
                    event["resource_path"],
                    event["resource_id"],
                    event["action"],
                    event["status"],
                    Jsonb(event["details"]),
                    event["security_level"],
                    event["compliance_tags"],
                    seed_checksum(event),
                    None,
                    Jsonb(event["metadata"]),
                ),
            )
        elapsed = time.perf_counter() - started
        stored = conn.execute("select count(*) from bench_seed.audit_events").fetchone()
    if stored is None or stored[0] != len(events):
        raise BenchError(f"seed approach stored {stored} rows, expected {len(events)}")
    return elapsed


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def copy_rows(sealed_batches: Sequence[Sequence[Sealed]]) -> list[tuple[Any, ...]]:
    """audit_events rows with seq and hashes computed here, exactly as the chain trigger would."""
    rows = []
    prev_hash = GENESIS
    seq = 0
    for batch in sealed_batches:
        for record in batch:
            seq += 1
            checksum = bytes.fromhex(record["checksum"])
            chain = hashlib.sha256(prev_hash + checksum).digest()
            rows.append(
                (
                    seq,
                    *(record[name] for name in COPY_COLUMNS[1:13]),
                    Jsonb(record["details"], dumps=_orjson_text),
                    record["security_level"],
                    record["compliance_tags"],
                    record["parent_event_id"],
                    Jsonb(record["metadata"], dumps=_orjson_text),
                    2,
                    bytes.fromhex(record["seal_salt"]),
                    bytes.fromhex(record["payload_commitment"]),
                    checksum,
                    prev_hash,
                    chain,
                )
            )
            prev_hash = chain
    return rows


def run_copy(url: str, rows: Sequence[tuple[Any, ...]]) -> float:
    """COPY every row in one statement into the trigger-less copy of the event table (indexes kept)."""
    statement = sql.SQL("copy bench_copy.audit_events ({}) from stdin").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in COPY_COLUMNS)
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(COPY_DDL)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        stored = conn.execute("select count(*) from bench_copy.audit_events").fetchone()
    if stored is None or stored[0] != len(rows):
        raise BenchError(f"COPY stored {stored} rows, expected {len(rows)}")
    return elapsed


def chain_matches(url: str, rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether the handler's stored chain ends where the hashes computed for COPY do."""
    last = rows[-1]
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute("select chain_hash from audit.audit_events where seq = %s", (last[0],)).fetchone()
    return stored is not None and bytes(stored[0]) == last[-1]


# --------------------------------------------------------------------------------------------
# Cold start and environment
# --------------------------------------------------------------------------------------------


def cold_start_ms(runs: int = COLD_START_RUNS) -> list[float]:
    """Import time of the handler module in fresh interpreters, as a Lambda cold start pays it.

    Installed packages import from the bytecode pip compiled (as in a SAM build); the project's own
    modules compile from source unless a .pyc happens to exist (Lambda's read-only code cannot cache one).
    """
    code = "import time; t=time.perf_counter(); import ingest.handler; print(time.perf_counter()-t)"
    env = {**os.environ, **POWERTOOLS_ENV, "PYTHONPATH": os.pathsep.join(str(d) for d in SOURCE_DIRS)}
    timings = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        timings.append(float(done.stdout.strip().splitlines()[-1]) * 1000)
    return timings


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MIB if sys.platform == "darwin" else maxrss / 1024


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def report(results: Results) -> str:
    env = results.environment
    handler = results.rows[0]
    seed, copy = results.rows[1], results.rows[2]
    out = [
        f"Ingest benchmark, {env['date']}",
        environment_line(env) + f", at the end {env['load_average_at_end']}",
        f"{handler.events:,} events, batches of {env['batch']}, realistic details"
        f" (mean request body {env['mean_body_bytes']:,} bytes); every event sealed with seal version 2"
        " (16-byte salt, payload commitment, checksum), in the handler and in the COPY rows alike",
        "",
    ]
    table_rows = [*results.rows, *([results.verification] if results.verification else [])]
    lines = [
        [
            row.approach + (f" [{row.note}]" if row.note else ""),
            f"{row.events:,}",
            f"{row.seconds:.2f}",
            f"{row.events_per_second:,.0f}",
            f"{row.events_per_second / handler.events_per_second:.2f}x",
            f"{row.load:.2f}",
        ]
        for row in table_rows
    ]
    out.append(
        format_table(
            ["approach", "events", "seconds", "events/s", "vs handler", "load"],
            lines,
            [False, True, True, True, True, True],
        )
    )
    out.append(f"load: 1-minute load average as the row's measurement ended ({env['cpus']} CPUs).")
    met = handler.events_per_second >= TARGET_EVENTS_PER_SECOND
    out += [
        "",
        f"handler / per-event INSERT = {handler.events_per_second / seed.events_per_second:.1f}x",
        f"handler / COPY = {handler.events_per_second / copy.events_per_second:.2f}",
        f"target >= {TARGET_EVENTS_PER_SECOND:,} events/s: {'met' if met else 'NOT met'}"
        f" ({handler.events_per_second:,.0f} events/s end to end)",
        "chain stored by the handler = chain computed for the COPY rows: "
        + ("yes" if results.chain_cross_check else "NO"),
        "",
        "Where the time goes (handler path, each stage timed alone over the same events)",
    ]
    total_us = results.handler_seconds_per_event * 1e6
    stage_lines = [
        [stage.name, f"{stage.micros_per_event:.1f}", f"{stage.micros_per_event / total_us:.0%}"]
        for stage in results.stages
    ]
    # The SQL API stage's own split goes right under it.
    stage_lines[4:4] = [
        [stage.name, f"{stage.micros_per_event:.1f}", f"{stage.micros_per_event / total_us:.0%}"]
        for stage in results.sql_split
    ]
    stages_us = sum(stage.micros_per_event for stage in results.stages)
    stage_lines += [
        ["sum of the stages", f"{stages_us:.1f}", f"{stages_us / total_us:.0%}"],
        [
            "rest: Powertools routing, logging, metrics (± timing noise)",
            f"{total_us - stages_us:.1f}",
            f"{(total_us - stages_us) / total_us:.0%}",
        ],
        ["handler end to end", f"{total_us:.1f}", "100%"],
    ]
    out.append(format_table(["stage", "µs/event", "share"], stage_lines, [False, True, True]))
    cold = results.cold_start_ms
    out += [
        "",
        f"cold start: import ingest.handler {statistics.median(cold):.0f} ms"
        f" (median of {len(cold)} fresh interpreters: {', '.join(f'{ms:.0f}' for ms in cold)} ms)",
        f"peak memory: bench process max RSS after the handler run {results.peak_rss_mib:.0f} MiB"
        f" ({results.rss_before_handler_mib:.0f} MiB before it: interpreter, modules, pre-built input)",
        f"peak memory: tracemalloc peak during one {env['batch']}-event request"
        f" {results.request_peak_traced_mib:.1f} MiB",
    ]
    return "\n".join(out)


def as_json(results: Results) -> str:
    handler, seed, copy = results.rows[:3]
    data = {
        "environment": results.environment,
        "rows": [{**asdict(row), "events_per_second": row.events_per_second} for row in results.rows],
        "verification": None
        if results.verification is None
        else {**asdict(results.verification), "events_per_second": results.verification.events_per_second},
        "ratios": {
            "handler_vs_per_event_insert": handler.events_per_second / seed.events_per_second,
            "handler_vs_copy": handler.events_per_second / copy.events_per_second,
        },
        "target_events_per_second": TARGET_EVENTS_PER_SECOND,
        "target_met": handler.events_per_second >= TARGET_EVENTS_PER_SECOND,
        "stages_us_per_event": {stage.name: stage.micros_per_event for stage in results.stages},
        "sql_api_split_us_per_event": {stage.name.strip(): stage.micros_per_event for stage in results.sql_split},
        "handler_us_per_event": results.handler_seconds_per_event * 1e6,
        "cold_start_ms": {"runs": results.cold_start_ms, "median": statistics.median(results.cold_start_ms)},
        "rss_before_handler_mib": results.rss_before_handler_mib,
        "peak_rss_mib": results.peak_rss_mib,
        "request_peak_traced_mib": results.request_peak_traced_mib,
        "chain_cross_check": results.chain_cross_check,
    }
    return json.dumps(data, indent=2)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def measure_handler(
    results: Results, requests: Sequence[ProxyEvent], extra_request: ProxyEvent, main_url: str, events: int
) -> None:
    """Row 1, the verification row, peak memory: all through the real handler against `main_url`."""
    point_handler_at(main_url)
    with open(os.devnull, "w") as sink:
        checkpoint(main_url)
        results.rss_before_handler_mib = peak_rss_mib()
        settle()
        progress(f"handler: {len(requests)} requests")
        elapsed, responses = invoke_all(requests, sink)
        results.peak_rss_mib = peak_rss_mib()
        check_created(requests, responses)
        results.rows.append(Row("ingest handler (API GW event -> Postgres, chain on)", events, elapsed))
        results.handler_seconds_per_event = elapsed / events
        progress("verifying the chain through the handler")
        results.verification = verify_through_handler(events, sink)
        results.request_peak_traced_mib = request_peak_memory(extra_request, sink)
    reset_transport()


def run(args: argparse.Namespace, admin_url: str, main_db: str, stage_db: str) -> Results:
    load_average = os.getloadavg()[0]
    main_url = create_database(admin_url, main_db)
    migrate(main_url)
    facts = server_facts(main_url)
    progress(f"building {args.events:,} events")
    events = build_events(args.events)
    requests = build_requests(events, args.batch)
    extra_request = build_requests(build_events(args.batch, first=args.events), args.batch)[0]
    results = Results(
        environment={
            **base_environment(facts),
            "batch": args.batch,
            "mean_body_bytes": round(statistics.mean(len(request["body"]) for request in requests)),
            # Another job on a 2-core machine halves every number: the load average says if there was one.
            "load_average_at_start": round(load_average, 2),
        }
    )
    measure_handler(results, requests, extra_request, main_url, args.events)

    progress("stages (SQL API into a second fresh database)")
    stage_url = create_database(admin_url, stage_db)
    migrate(stage_url)
    timing_functions = enable_function_timing(stage_url, stage_db)
    transport = PostgresTransport(stage_url, role=get_settings().database_role)
    try:
        checkpoint(stage_url)
        settle()
        results.stages = measure_stages(requests, transport, args.events)
    finally:
        transport.close()
    if timing_functions:
        results.sql_split = server_split(stage_url, len(requests), args.events, results.stages[3])

    seed_events = events[: args.seed_events]
    progress(f"seed approach: {len(seed_events):,} single INSERTs")
    checkpoint(main_url)
    settle()
    seed_seconds = run_seed_approach(main_url, seed_events)
    note = "" if len(seed_events) == args.events else f"measured on {len(seed_events):,}"
    results.rows.append(Row("seed approach: one INSERT per event", len(seed_events), seed_seconds, note))

    progress("COPY into the trigger-less table")
    rows = copy_rows(seal_all(requests, stored_salts(main_url)))
    results.chain_cross_check = chain_matches(main_url, rows)
    checkpoint(main_url)
    settle()
    results.rows.append(Row("physical limit: COPY, no trigger", len(rows), run_copy(main_url, rows)))

    progress("cold start")
    results.cold_start_ms = cold_start_ms()
    results.environment["load_average_at_end"] = round(os.getloadavg()[0], 2)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Ingest throughput: handler vs one INSERT per event vs COPY, and where the time goes.",
        epilog="The server is DATABASE_URL (an admin role) or an embedded pgserver. See bench/README.md.",
    )
    parser.add_argument("--events", type=int, default=100_000, help="events sent through the handler (100000)")
    parser.add_argument("--batch", type=int, default=1000, help="events per API request, at most 1000 (1000)")
    parser.add_argument(
        "--seed-events",
        type=int,
        default=None,
        help="events for the one-INSERT-per-event row (default: --events)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases (names are printed)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON (CI artefact)")
    args = parser.parse_args(argv)
    if args.events < 1 or not 1 <= args.batch <= 1000:
        parser.error("--events must be positive and --batch between 1 and 1000")
    args.seed_events = args.events if args.seed_events is None else min(args.seed_events, args.events)
    if args.seed_events < 1:
        parser.error("--seed-events must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    admin_url = server_url()
    suffix = uuid.uuid4().hex[:10]
    main_db, stage_db = f"audit_bench_{suffix}", f"audit_bench_{suffix}_stages"
    try:
        results = run(args, admin_url, main_db, stage_db)
    except BenchError as exc:
        print(f"benchmark failed, no numbers: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, no numbers", file=sys.stderr)
        return 130
    finally:
        reset_transport()
        drop_databases(admin_url, (main_db, stage_db), keep=args.keep_db)
    print(report(results))
    if args.json:
        print(as_json(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
