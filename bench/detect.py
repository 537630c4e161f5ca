"""Detection latency: the real webhook handler per new event, beside a naive scan of the history.

A fresh database gets `--events` historical events generated in SQL (about 2,000 users with
Zipf-like activity, about 5,000 IP addresses, 30 days), then `--calls` new events stored as the
ingest function stores them, attack bursts included so that every rule fires. Each new event is then
analysed twice, one call at a time and each call on its own clock, in this one process: through
the detect handler (API Gateway proxy event for the Supabase webhook -> `audit.detect_events` ->
risk score -> `audit.record_alert` -> EventBridge and SNS, in-process moto), and by the seed's
approach (fetch the user's and the IP's whole history into Python and scan it for every rule).
Both must find the same alerts, and every rule must fire, or no number is printed.

    .venv/bin/python bench/detect.py [--events N] [--calls N] [--keep-db] [--json]

`DATABASE_URL` names the server (an admin role: it creates and drops a database); without it an
embedded PostgreSQL is started with pgserver. See bench/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Final, TextIO
from unittest import mock

import orjson
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
from audit_common.api import AlertOut
from audit_common.db import get_transport, reset_transport
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn
from audit_common.settings import get_settings
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from detect import handler as detect_handler
from detect.handler import lambda_handler
from detect.scoring import risk_score
from tests.support.apigw import FakeLambdaContext, proxy_event
from tests.support.aws import AlertSinks, alert_sinks

TARGET_P99_MS: Final = 10.0
RULES: Final = (
    "multiple_failed_logins",
    "brute_force",
    "unusual_file_access",
    "data_exfiltration",
    "privilege_escalation",
)

# --------------------------------------------------------------------------------------------
# The population: the same distribution in SQL (history) and in Python (the new events)
# --------------------------------------------------------------------------------------------

USERS: Final = 2_000
# The user of rank u has 1 + u mod 3 home addresses, 10.0.0.0 + 3(u - 1) + k (4,000 in all);
# roaming events come from 1,000 other addresses, shared by everyone.
ROAMING_IPS: Final = 1_000
HOME_IP_BASE: Final = IPv4Address("10.0.0.0")
ROAMING_IP_BASE: Final = IPv4Address("198.18.0.0")
ROAMING_SHARE: Final = 0.06
# Which of the user's home addresses: the first 75%, the second 17%, the third 8% (when they exist).
HOME_IP_CHOICE: Final = (0.75, 0.92)
HISTORY_DAYS: Final = 30
WORKLOAD_MINUTES: Final = 60
CHUNK_ROWS: Final = 100_000

# Event types of a file-sharing application: (type, share, action).
EVENT_MIX: Final = (
    ("file_access", 0.34, "view_file"),
    ("file_download", 0.18, "download_file"),
    ("file_upload", 0.12, "upload_file"),
    ("file_modify", 0.07, "edit_file"),
    ("file_share", 0.04, "share_file"),
    ("file_delete", 0.02, "delete_file"),
    ("folder_create", 0.015, "create_folder"),
    ("folder_delete", 0.005, "delete_folder"),
    ("user_login", 0.10, "login"),
    ("user_logout", 0.06, "logout"),
    ("user_activity", 0.03, "update_profile"),
    ("permission_change", 0.01, "grant_role"),
    ("system_event", 0.005, "sync_client"),
    ("security_event", 0.005, "mfa_challenge"),
)
LOGIN_FAILURE_SHARE: Final = 0.03
OTHER_FAILURE_SHARE: Final = 0.005
ADMIN_GRANT_SHARE: Final = 0.02
ROLES: Final = ("viewer", "editor", "commenter")
MIME_TYPES: Final = ("application/pdf", "image/png", "text/csv", "application/zip")
USER_AGENT: Final = "Mozilla/5.0 (X11; Linux x86_64) Files/3.2"


def user_id(rank: int) -> str:
    return f"user-{rank:04d}"


def home_ip(rank: int, k: int) -> str:
    return str(HOME_IP_BASE + 3 * (rank - 1) + min(k, rank % 3))


def _cumulative() -> list[tuple[float, str, str]]:
    total, out = 0.0, []
    for event_type, share, action in EVENT_MIX:
        total += share
        out.append((total, event_type, action))
    return out


def _sql_case(column: str, pairs: Sequence[tuple[float, str]], fallback: str) -> str:
    whens = " ".join(f"when {column} < {bound!r} then '{value}'" for bound, value in pairs)
    return f"case {whens} else '{fallback}' end"


def history_sql() -> str:
    """One INSERT ... SELECT over generate_series(%(first)s, %(last)s): the chain trigger assigns seq.

    Every random draw is made once per row in the innermost subquery (volatile functions keep it
    from being flattened into the outer ones). Timestamps follow the row number (plus up to 30 s of
    jitter), so they rise with seq. The checksum is a SHA-256 of generated text, not of the canonical
    event: the chain links are real (the trigger computes them) but this bench never verifies it.
    """
    mix = _cumulative()
    types = _sql_case("r.r_type", [(bound, event_type) for bound, event_type, _ in mix[:-1]], mix[-1][1])
    actions = " ".join(f"when '{event_type}' then '{action}'" for _, event_type, action in mix)
    low, mid = HOME_IP_CHOICE
    return f"""
insert into audit.audit_events (
  event_id, "timestamp", event_type, user_id, user_email, session_id, ip_address, user_agent,
  resource_path, resource_id, action, status, details, security_level, compliance_tags, metadata, checksum)
select 'h-' || t.i, t.ts, t.event_type, t.user_id, t.user_id || '@example.com',
       'sess-' || t.u || '-' || (t.i / 40), t.ip, '{USER_AGENT}',
       case when t.event_type like 'file%%' then '/files/team-' || (t.u %% 50) || '/doc-' || t.doc || '.pdf' end,
       case when t.event_type like 'file%%' then 'doc-' || t.doc end,
       case t.event_type {actions} end,
       t.status,
       case
         when t.event_type like 'file%%' then jsonb_build_object(
           'file_size', floor(t.r_misc * 50000000)::bigint,
           'mime', (array{list(MIME_TYPES)!r})[1 + floor(t.r_role * {len(MIME_TYPES)})::int])
         when t.event_type in ('user_login', 'user_logout') then jsonb_build_object(
           'method', 'password', 'mfa', t.r_misc < 0.6)
           || case when t.status = 'failure' then '{{"reason": "bad_password"}}'::jsonb else '{{}}'::jsonb end
         when t.event_type = 'permission_change' then jsonb_build_object(
           'role', case when t.r_role < {ADMIN_GRANT_SHARE!r} then 'admin'
                        else (array{list(ROLES)!r})[1 + floor(t.r_misc * {len(ROLES)})::int] end,
           'target_user', 'user-' || lpad((1 + floor(t.r_misc * {USERS})::int)::text, 4, '0'))
         else '{{}}'::jsonb
       end,
       case
         when t.event_type in ('permission_change', 'security_event') then 'high'
         when t.status = 'failure' or t.event_type in ('file_delete', 'file_share') then 'medium'
         else 'low'
       end,
       case when t.r_misc < 0.3 then '{{gdpr}}' when t.r_misc < 0.4 then '{{sox}}' else '{{}}' end::text[],
       '{{"app": "files", "version": "3.2.1"}}'::jsonb,
       sha256(convert_to('h-' || t.i || t.user_id || t.event_type, 'UTF8'))
  from (
    select s.i, s.u, s.doc, s.r_misc, s.r_role, s.event_type,
           'user-' || lpad(s.u::text, 4, '0') as user_id,
           case when (s.event_type = 'user_login' and s.r_status < {LOGIN_FAILURE_SHARE!r})
                  or (s.event_type <> 'user_login' and s.r_status < {OTHER_FAILURE_SHARE!r})
                then 'failure' else 'success' end as status,
           case when s.r_roam < {ROAMING_SHARE!r}
                then '{ROAMING_IP_BASE}'::inet + floor(s.r_ip * {ROAMING_IPS})::int
                else '{HOME_IP_BASE}'::inet + 3 * (s.u - 1)
                       + least(case when s.r_ip < {low!r} then 0 when s.r_ip < {mid!r} then 1 else 2 end, s.u %% 3)
           end as ip,
           %(start)s::timestamptz
             + make_interval(secs => %(span)s * (s.i - 1) / %(total)s + s.r_jitter * 30) as ts
      from (
        select r.*, {types} as event_type
          from (
            select i, least({USERS}, floor(power({USERS + 1}, random()))::int) as u,
                   random() as r_type, random() as r_status, random() as r_roam, random() as r_ip,
                   random() as r_role, random() as r_misc, random() as r_jitter,
                   floor(random() * 100000)::int as doc
              from generate_series(%(first)s::bigint, %(last)s::bigint) i
          ) r
      ) s
  ) t
"""


def generate_history(url: str, events: int, start: datetime, end: datetime) -> float:
    """`events` rows in chunks of CHUNK_ROWS, one transaction each; returns the seconds it took."""
    statement = history_sql()  # built from this module's constants only
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select setseed(0.2026)")  # the same history on every run
        for first in range(1, events + 1, CHUNK_ROWS):
            last = min(events, first + CHUNK_ROWS - 1)
            conn.execute(
                statement,
                {"first": first, "last": last, "total": events, "start": start, "span": (end - start).total_seconds()},
            )
            progress(f"history: {last:,} of {events:,} events ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# The new events: background traffic from the same population, plus attack bursts
# --------------------------------------------------------------------------------------------

SPRAY_IP: Final = "203.0.113.66"
# (rank of the account, what it does): a typical account, a heavy account, a small one, another one.
VICTIM_RANK: Final = 40
COLLECTOR_RANK: Final = 3
INSIDER_RANK: Final = 200
GRANTER_RANK: Final = 300
FAILED_LOGINS: Final = 8  # threshold 5 in 15 min
SPRAYED_USERS: Final = 25  # threshold 20 in 15 min, one address
FILE_ACCESSES: Final = 120  # threshold 100 in 10 min
DOWNLOADS: Final = 60  # threshold 50 in 60 min
ATTACK_EVENTS: Final = FAILED_LOGINS + SPRAYED_USERS + FILE_ACCESSES + DOWNLOADS + 1


def _event(n: int, at: datetime, rank: int, event_type: str, **fields: Any) -> dict[str, Any]:
    uid = user_id(rank)
    event: dict[str, Any] = {
        "event_id": f"w-{n}",
        "timestamp": at.isoformat(),
        "event_type": event_type,
        "user_id": uid,
        "user_email": f"{uid}@example.com",
        "session_id": f"sess-{rank}-w",
        "ip_address": home_ip(rank, 0),
        "user_agent": USER_AGENT,
        "action": next(action for kind, _, action in EVENT_MIX if kind == event_type),
        "status": "success",
        "security_level": "low",
        "metadata": {"app": "files", "version": "3.2.1"},
    }
    if event_type.startswith("file"):
        event["resource_path"] = f"/files/team-{rank % 50}/doc-{n}.pdf"
        event["resource_id"] = f"doc-{n}"
        event["details"] = {"file_size": 1000 + n * 37 % 50_000_000, "mime": MIME_TYPES[n % len(MIME_TYPES)]}
    event.update(fields)
    return event


def background_event(n: int, at: datetime, rng: random.Random) -> dict[str, Any]:
    """One event drawn from the history's distribution (users, addresses, types, failures)."""
    rank = zipf_rank(rng.random(), USERS)
    draw = rng.random()
    event_type = next((kind for bound, kind, _ in _cumulative() if draw < bound), EVENT_MIX[-1][0])
    failure = rng.random() < (LOGIN_FAILURE_SHARE if event_type == "user_login" else OTHER_FAILURE_SHARE)
    if rng.random() < ROAMING_SHARE:
        ip = str(ROAMING_IP_BASE + rng.randrange(ROAMING_IPS))
    else:
        pick = rng.random()
        ip = home_ip(rank, 0 if pick < HOME_IP_CHOICE[0] else 1 if pick < HOME_IP_CHOICE[1] else 2)
    fields: dict[str, Any] = {"ip_address": ip, "status": "failure" if failure else "success"}
    if event_type in ("user_login", "user_logout"):
        fields["details"] = {"method": "password", "mfa": rng.random() < 0.6} | (
            {"reason": "bad_password"} if failure else {}
        )
    elif event_type == "permission_change":
        role = "admin" if rng.random() < ADMIN_GRANT_SHARE else rng.choice(ROLES)
        fields["details"] = {"role": role, "target_user": user_id(rng.randrange(1, USERS + 1))}
    if event_type in ("permission_change", "security_event"):
        fields["security_level"] = "high"
    elif failure or event_type in ("file_delete", "file_share"):
        fields["security_level"] = "medium"
    return _event(n, at, rank, event_type, **fields)


def attack_events(first: int, end: datetime) -> list[dict[str, Any]]:
    """Bursts that make every rule fire, all inside the last 30 minutes before `end`."""
    events: list[dict[str, Any]] = []
    n = first

    def add(at: datetime, rank: int, event_type: str, **fields: Any) -> None:
        nonlocal n
        events.append(_event(n, at, rank, event_type, **fields))
        n += 1

    def at(minutes_before_end: int, step_seconds: int, i: int) -> datetime:
        return end - timedelta(minutes=minutes_before_end) + timedelta(seconds=step_seconds * i)

    failure = {"status": "failure", "security_level": "medium", "details": {"reason": "bad_password"}}
    guessing_ips = (home_ip(VICTIM_RANK, 0), SPRAY_IP, "198.51.100.7")
    for i in range(FAILED_LOGINS):  # password guessing on one account, from three addresses
        add(at(25, 25, i), VICTIM_RANK, "user_login", ip_address=guessing_ips[i % 3], **failure)
    for i in range(SPRAYED_USERS):  # spraying: one address, a different account each time
        add(at(18, 20, i), 500 + 37 * i, "user_login", ip_address=SPRAY_IP, **failure)
    for i in range(FILE_ACCESSES):  # automated collection by a heavy account
        add(at(9, 4, i), COLLECTOR_RANK, "file_access")
    for i in range(DOWNLOADS):  # bulk downloads by a quiet account
        add(at(30, 29, i), INSIDER_RANK, "file_download")
    grant = {"role": "admin", "target_user": user_id(GRANTER_RANK + 1)}
    add(at(12, 0, 0), GRANTER_RANK, "permission_change", security_level="high", details=grant)
    return events


def build_workload(calls: int, end: datetime, seed: int = 20261127) -> list[dict[str, Any]]:
    """`calls` client events in time order over the WORKLOAD_MINUTES before `end`, attacks included."""
    rng = random.Random(seed)
    start = end - timedelta(minutes=WORKLOAD_MINUTES)
    span = (end - start).total_seconds()
    background = [
        background_event(n, start + timedelta(seconds=rng.random() * span), rng) for n in range(calls - ATTACK_EVENTS)
    ]
    events = background + attack_events(len(background), end)
    events.sort(key=lambda event: datetime.fromisoformat(event["timestamp"]))
    return events


def store_workload(events: Sequence[dict[str, Any]]) -> tuple[float, list[int]]:
    """Store as the ingest function does (validation, sealing, chain), 1000 per call; returns seconds, seqs."""
    transport = get_transport()
    seqs: list[int] = []
    started = time.perf_counter()
    for first in range(0, len(events), 1000):
        batch = [AuditEventIn.model_validate(event) for event in events[first : first + 1000]]
        result = store_events(transport, batch)
        if result.created != len(batch):
            raise BenchError(f"the workload stored {result.created} of {len(batch)} events")
        seqs += [item.seq for item in result.results if item.seq is not None]
    return time.perf_counter() - started, seqs


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Per-call times of one approach."""

    approach: str
    seconds: list[float]

    @property
    def calls(self) -> int:
        return len(self.seconds)

    def percentile_ms(self, q: int) -> float:
        return percentile(self.seconds, q) * 1000

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def max_ms(self) -> float:
        return max(self.seconds) * 1000

    @property
    def calls_per_second(self) -> float:
        return len(self.seconds) / sum(self.seconds)

    def summary(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "median_ms": self.median_ms,
            "p95_ms": self.percentile_ms(95),
            "p99_ms": self.percentile_ms(99),
            "max_ms": self.max_ms,
            "calls_per_second": self.calls_per_second,
        }


AlertKey = tuple[str, str, datetime]  # (rule, key, window start): what makes an alert one alert


@dataclass
class Results:
    """Everything the bench measured, printed as a table and optionally as JSON."""

    environment: dict[str, Any]
    setup_seconds: dict[str, float] = field(default_factory=dict)
    handler: Timing | None = None
    naive: Timing | None = None
    # The handler's calls split by what they did: calls that raised or updated an alert, and the others.
    handler_by_outcome: list[Timing] = field(default_factory=list)
    alerts_per_rule: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)
    only_handler: list[AlertKey] = field(default_factory=list)
    only_naive: list[AlertKey] = field(default_factory=list)
    agreed_alerts: int = 0
    naive_rows_fetched: list[int] = field(default_factory=list)
    # Mean ms per call in each stage, by outcome (the keys of handler_by_outcome).
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)


def webhook_requests(seqs: Sequence[int], secret: str) -> list[dict[str, Any]]:
    """The Supabase database webhook's calls for these seqs, as API Gateway proxy events (built now)."""
    return [
        proxy_event(
            "POST",
            "/webhooks/supabase",
            body={
                "type": "INSERT",
                "table": "audit_events",
                "schema": "audit",
                "record": {"seq": seq},
                "old_record": None,
            },
            headers={"X-Audit-Webhook-Secret": secret},
        )
        for seq in seqs
    ]


STAGES: Final = {
    "detect_events": "SQL audit.detect_events (rules, window counts, risk context)",
    "record_alert": "SQL audit.record_alert (alert upsert)",
    "outbox": "SQL audit.unpublished_alerts + mark_alerts_published",
    "publish": "publishing to EventBridge and SNS (moto, in process)",
}


@contextlib.contextmanager
def stage_clock(clock: dict[str, float]) -> Iterator[None]:
    """Add the time of every SQL API call (by function) and every publish to `clock`, inside the handler.

    The handler's own transport and publisher get a timing wrapper (two perf_counter calls each),
    so the stages come from the very calls whose end-to-end time the table reports.
    """
    transport = get_transport()
    publisher = detect_handler.publisher()
    call, publish = transport.call, publisher.publish

    def timed_call(function: str, args: Mapping[str, Any] | None = None) -> Any:
        started = time.perf_counter()
        try:
            return call(function, args)
        finally:
            stage = function if function in STAGES else "outbox"
            clock[stage] = clock.get(stage, 0.0) + time.perf_counter() - started

    def timed_publish(alert: AlertOut) -> None:
        started = time.perf_counter()
        try:
            publish(alert)
        finally:
            clock["publish"] = clock.get("publish", 0.0) + time.perf_counter() - started

    with (
        mock.patch.object(transport, "call", new=timed_call),
        mock.patch.object(publisher, "publish", new=timed_publish),
    ):
        yield


def run_handler(
    requests: Sequence[dict[str, Any]], sink: TextIO
) -> tuple[list[float], list[dict[str, float]], list[dict[str, Any]]]:
    """Every webhook call through the handler, in seq order, each on its own clock (and its stages)."""
    contexts = [FakeLambdaContext(function_name="detect") for _ in requests]
    timings: list[float] = []
    stages: list[dict[str, float]] = []
    responses: list[dict[str, Any]] = []
    clock: dict[str, float] = {}
    # Powertools prints one EMF metrics line per invocation to stdout (CloudWatch, in Lambda).
    with contextlib.redirect_stdout(sink), stage_clock(clock):
        for request, context in zip(requests, contexts, strict=True):
            clock.clear()
            started = time.perf_counter()
            response = lambda_handler(request, context)
            timings.append(time.perf_counter() - started)
            stages.append(dict(clock))
            responses.append(response)
    return timings, stages, responses


def check_analysed(seqs: Sequence[int], responses: Sequence[dict[str, Any]]) -> list[bool]:
    """Every call must answer 200 analysed; returns, per call, whether it raised or updated an alert."""
    raised = []
    for seq, response in zip(seqs, responses, strict=True):
        body = orjson.loads(response.get("body") or "null")
        if response["statusCode"] != 200 or not isinstance(body, dict) or body.get("status") != "analysed":
            raise BenchError(
                f"webhook for seq {seq}: status {response['statusCode']}: {str(response.get('body'))[:500]}"
            )
        raised.append(bool(body.get("alerts")))
    return raised


def stored_alerts(url: str) -> list[AlertKey]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select rule, alert_key, window_start from audit.security_alerts").fetchall()
    return [(str(rule), str(key), start) for rule, key, start in rows]


# --------------------------------------------------------------------------------------------
# The naive scan (seed-style): the whole history into Python, every rule a scan over it
# --------------------------------------------------------------------------------------------

USER_HISTORY: Final = (
    'select seq, event_id, "timestamp", event_type, status, user_id, host(ip_address)'
    " from audit.audit_events where user_id = %s"
)
IP_HISTORY: Final = (
    'select seq, event_id, "timestamp", event_type, status, user_id, host(ip_address)'
    " from audit.audit_events where ip_address = %s::inet"
)
# seq, event_id, timestamp, event_type, status, user_id, ip (text)
HistoryRow = tuple[int, str, datetime, str, str, str, str | None]


@dataclass(frozen=True)
class Rule:
    """A row of audit.detection_rules."""

    name: str
    description: str
    event_types: frozenset[str]
    status: str | None
    details_match: dict[str, list[str]] | None
    group_by: str
    window_seconds: int
    threshold: int
    severity: str
    attack_id: str

    def selects(self, event_type: str, status: str) -> bool:
        return event_type in self.event_types and (self.status is None or self.status == status)

    def matches_details(self, details: dict[str, Any]) -> bool:
        """`lower(details ->> key)` in the lowered values, for any of the keys (as audit.detect_events)."""
        if self.details_match is None:
            return True
        values = {value.lower() for value in self.details_match["values"]}
        for key in self.details_match["keys"]:
            value = details.get(key)
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            if text.lower() in values:
                return True
        return False


def load_rules(url: str) -> list[Rule]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select name, description, event_types, status, details_match, group_by, window_seconds, threshold,"
            " severity, attack_id from audit.detection_rules where enabled order by name"
        ).fetchall()
    return [
        Rule(str(r[0]), str(r[1]), frozenset(r[2]), r[3], r[4], str(r[5]), int(r[6]), int(r[7]), str(r[8]), str(r[9]))
        for r in rows
    ]


@dataclass(frozen=True)
class NewEvent:
    """A stored new event, as the seed's streaming callback had it in memory."""

    seq: int
    event_id: str
    timestamp: datetime
    event_type: str
    status: str
    user_id: str
    ip: str | None
    details: dict[str, Any]
    security_level: str


def load_new_events(url: str, seqs: Sequence[int]) -> list[NewEvent]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        rows = conn.execute(
            'select seq, event_id, "timestamp", event_type, status, user_id, host(ip_address), details, security_level'
            " from audit.audit_events where seq = any(%s) order by seq",
            (list(seqs),),
        ).fetchall()
    return [NewEvent(*row) for row in rows]


class NaiveDetector:
    """Per event: fetch the histories the rules need (each at most once), scan them for every rule.

    The same rules (read from audit.detection_rules), the same windows (event time minus the window,
    up to the event time, whatever the seq), the same tumbling window that names an alert, and the
    same context for the risk score (first-seen IP, the user's 30-day and same-hour counts, distinct
    users of an IP, earlier alerts on the key, remembered in memory). Alerts are not stored or published.
    """

    def __init__(self, conn: psycopg.Connection[Any], rules: Sequence[Rule]) -> None:
        self.conn = conn
        self.rules = rules
        self.alerts: set[AlertKey] = set()
        self.rows_fetched = 0

    def _fetch(self, query: str, value: str) -> list[HistoryRow]:
        rows: list[HistoryRow] = self.conn.cursor(binary=True).execute(query, (value,)).fetchall()
        self.rows_fetched += len(rows)
        return rows

    def analyse(self, event: NewEvent) -> list[AlertKey]:
        found: list[AlertKey] = []
        user_rows: list[HistoryRow] | None = None
        ip_rows: list[HistoryRow] | None = None
        ts = event.timestamp
        for rule in self.rules:
            if not rule.selects(event.event_type, event.status) or not rule.matches_details(event.details):
                continue
            if rule.group_by == "ip_address" and event.ip is None:
                continue
            key = event.user_id if rule.group_by == "user_id" else str(event.ip)
            if rule.window_seconds == 0:
                window: list[HistoryRow] = []
                count, start = 1, ts
            else:
                if rule.group_by == "user_id":
                    user_rows = user_rows if user_rows is not None else self._fetch(USER_HISTORY, event.user_id)
                    rows = user_rows
                else:
                    ip_rows = ip_rows if ip_rows is not None else self._fetch(IP_HISTORY, key)
                    rows = ip_rows
                since = ts - timedelta(seconds=rule.window_seconds)
                window = [
                    row
                    for row in rows
                    if row[3] in rule.event_types
                    and (rule.status is None or row[4] == rule.status)
                    and since < row[2] <= ts
                ]
                count = len(window)
                if count < rule.threshold:
                    continue
                start = datetime.fromtimestamp(
                    math.floor(ts.timestamp() / rule.window_seconds) * rule.window_seconds, UTC
                )
            user_rows = user_rows if user_rows is not None else self._fetch(USER_HISTORY, event.user_id)
            alert = (rule.name, key, start)
            risk_score(self._hit(rule, event, alert, count, window, user_rows))
            self.alerts.add(alert)
            found.append(alert)
        return found

    def _hit(
        self,
        rule: Rule,
        event: NewEvent,
        alert: AlertKey,
        count: int,
        window: Sequence[HistoryRow],
        user_rows: Sequence[HistoryRow],
    ) -> dict[str, Any]:
        ts = event.timestamp
        seen_before = ts - timedelta(seconds=max(rule.window_seconds, 60))
        month_ago = ts - timedelta(days=30)
        month = [row for row in user_rows if month_ago < row[2] <= ts]
        context = {
            "first_seen_ip": event.ip is not None
            and not any(row[6] == event.ip and row[2] < seen_before for row in user_rows),
            "user_events_30d": len(month),
            "user_events_same_hour_30d": sum(1 for row in month if row[2].hour == ts.hour),
            "prior_alerts_24h": sum(
                1 for other in self.alerts if other[1] == alert[1] and (other[0], other[2]) != (alert[0], alert[2])
            ),
            "distinct_users": len({row[5] for row in window}) if rule.group_by == "ip_address" else None,
        }
        return {
            "rule": rule.name,
            "rule_severity": rule.severity,
            "threshold": rule.threshold,
            "event_count": min(count, 200),
            "event_ids": [row[1] for row in sorted(window, key=lambda row: (row[2], row[0]))[-200:]],
            "security_level": event.security_level,
            "context": context,
        }


def run_naive(
    url: str, events: Sequence[NewEvent], rules: Sequence[Rule]
) -> tuple[list[float], list[int], set[AlertKey]]:
    """Every new event through the naive detector, in seq order, each on its own clock."""
    timings: list[float] = []
    fetched: list[int] = []
    found: set[AlertKey] = set()
    with psycopg.connect(url, autocommit=True) as conn:
        # UTC, so that a timestamp's hour is the UTC hour the handler's context counts by.
        conn.execute("set timezone = 'UTC'")
        detector = NaiveDetector(conn, rules)
        for event in events:
            before = detector.rows_fetched
            started = time.perf_counter()
            alerts = detector.analyse(event)
            timings.append(time.perf_counter() - started)
            fetched.append(detector.rows_fetched - before)
            found.update(alerts)
    return timings, fetched, found


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _row(timing: Timing) -> list[str]:
    return [
        timing.approach,
        f"{timing.calls:,}",
        f"{timing.median_ms:.2f}",
        f"{timing.percentile_ms(95):.2f}",
        f"{timing.percentile_ms(99):.2f}",
        f"{timing.max_ms:.2f}",
        f"{timing.calls_per_second:,.0f}",
    ]


def _describe(alert: AlertKey) -> str:
    return f"{alert[0]}/{alert[1]}@{alert[2].astimezone(UTC).isoformat()}"


def report(results: Results) -> str:
    env = results.environment
    handler, naive = results.handler, results.naive
    assert handler is not None
    assert naive is not None
    setup = results.setup_seconds
    headers = ["approach", "calls", "median ms", "p95 ms", "p99 ms", "max ms", "calls/s"]
    right = [False, True, True, True, True, True, True]
    out = [
        f"Detection benchmark, {env['date']}",
        environment_line(env),
        f"{env['events_in_table']:,} events in audit.audit_events ({env['table_mib']:,} MiB with indexes):"
        f" {env['history_events']:,} generated in SQL ({USERS:,} users, Zipf-like; {env['distinct_ips']:,} IP"
        f" addresses; {HISTORY_DAYS} days) + {env['workload_events']:,} new ({ATTACK_EVENTS} of them attack bursts)",
        f"setup, not part of the result: history {setup['history']:.1f} s, vacuum analyze {setup['vacuum']:.1f} s,"
        f" new events through the event store {setup['workload']:.2f} s",
        "",
        format_table(headers, [_row(handler), _row(naive)], right),
        "",
    ]
    p99 = handler.percentile_ms(99)
    met = p99 < TARGET_P99_MS
    out += [
        f"p99 target < {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'} ({p99:.2f} ms per event end to end)",
        f"median ratio naive/handler = {naive.median_ms / handler.median_ms:.1f}x",
        f"p99 ratio naive/handler = {naive.percentile_ms(99) / p99:.1f}x",
        "alerts raised by the handler: "
        + ", ".join(f"{rule} {results.alerts_per_rule.get(rule, 0)}" for rule in RULES),
        f"published through moto: {results.published.get('bus', 0)} to the EventBridge bus,"
        f" {results.published.get('sns', 0)} to SNS (high and critical)",
    ]
    if not results.only_handler and not results.only_naive:
        out.append(
            f"same (rule, key, window) alerts from the handler and the naive scan: yes ({results.agreed_alerts})"
        )
    else:
        out.append(
            f"same (rule, key, window) alerts from the handler and the naive scan: NO ({results.agreed_alerts} agree)"
        )
        out += [f"  only the handler: {_describe(alert)}" for alert in results.only_handler]
        out += [f"  only the naive scan: {_describe(alert)}" for alert in results.only_naive]
    fetched = results.naive_rows_fetched
    out += [
        f"naive scan: history rows fetched per event: median {statistics.median(fetched):,.0f}, max {max(fetched):,}",
        "",
        "Handler calls by outcome",
        format_table(headers, [_row(timing) for timing in results.handler_by_outcome], right),
        "",
        "Where the handler's time goes (mean ms per call, stages timed inside the same calls)",
        stage_table(results),
    ]
    return "\n".join(out)


def stage_table(results: Results) -> str:
    outcomes = results.handler_by_outcome
    means = {timing.approach: statistics.mean(timing.seconds) * 1000 for timing in outcomes}
    lines = [
        [label, *(f"{results.stage_ms[t.approach][stage]:.2f}" for t in outcomes)] for stage, label in STAGES.items()
    ]
    lines.append(
        [
            "rest: Powertools, webhook validation, scoring, models, logging",
            *(f"{means[t.approach] - sum(results.stage_ms[t.approach].values()):.2f}" for t in outcomes),
        ]
    )
    lines.append(["handler end to end", *(f"{means[t.approach]:.2f}" for t in outcomes)])
    return format_table(["stage", *(t.approach for t in outcomes)], lines, [False, *(True for _ in outcomes)])


def as_json(results: Results) -> str:
    handler, naive = results.handler, results.naive
    assert handler is not None
    assert naive is not None
    data = {
        "environment": results.environment,
        "setup_seconds": results.setup_seconds,
        "handler": handler.summary(),
        "naive": naive.summary(),
        "handler_by_outcome": {timing.approach: timing.summary() for timing in results.handler_by_outcome},
        "handler_stage_mean_ms": results.stage_ms,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": handler.percentile_ms(99) < TARGET_P99_MS,
        "ratios": {
            "median_naive_vs_handler": naive.median_ms / handler.median_ms,
            "p99_naive_vs_handler": naive.percentile_ms(99) / handler.percentile_ms(99),
        },
        "alerts_per_rule": results.alerts_per_rule,
        "published": results.published,
        "alerts_agree": not results.only_handler and not results.only_naive,
        "agreed_alerts": results.agreed_alerts,
        "only_handler": [_describe(alert) for alert in results.only_handler],
        "only_naive": [_describe(alert) for alert in results.only_naive],
        "naive_rows_fetched": {
            "median": statistics.median(results.naive_rows_fetched),
            "max": max(results.naive_rows_fetched),
        },
    }
    return json.dumps(data, indent=2)


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def table_facts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*), count(distinct ip_address), pg_total_relation_size('audit.audit_events')"
            " from audit.audit_events"
        ).fetchone()
    assert row is not None
    return {"events_in_table": int(row[0]), "distinct_ips": int(row[1]), "table_mib": int(row[2]) // (1024 * 1024)}


def configure_handler(url: str, aws: AlertSinks, secret: str) -> None:
    """The detect function's environment, as in Lambda: database, webhook secret, bus and topic (moto)."""
    os.environ["AUDIT_WEBHOOK_SECRET"] = secret
    os.environ["AUDIT_EVENT_BUS_NAME"] = aws.bus_name
    os.environ["AUDIT_ALERT_TOPIC_ARN"] = aws.topic_arn
    point_handler_at(url)
    detect_handler.publisher.cache_clear()


def measure_handler(results: Results, url: str, seqs: Sequence[int], requests: Sequence[dict[str, Any]]) -> None:
    checkpoint(url)
    settle()
    progress(f"handler: {len(requests):,} webhook calls")
    with open(os.devnull, "w") as sink:
        timings, stages, responses = run_handler(requests, sink)
    raised = check_analysed(seqs, responses)
    results.handler = Timing("detect handler (webhook -> SQL rules -> alerts -> moto)", timings)
    for name, fired in (("no rule fired", False), ("a rule fired (alert upserted)", True)):
        calls = [index for index, hit in enumerate(raised) if hit == fired]
        if len(calls) < 2:
            continue
        results.handler_by_outcome.append(Timing(name, [timings[index] for index in calls]))
        results.stage_ms[name] = {
            stage: sum(stages[index].get(stage, 0.0) for index in calls) / len(calls) * 1000 for stage in STAGES
        }


def run(args: argparse.Namespace, admin_url: str, dbname: str) -> Results:
    load_average = os.getloadavg()[0]
    url = create_database(admin_url, dbname)
    migrate(url)
    # Before the handler is configured: point_handler_at sets DATABASE_URL, which the header reports on.
    environment = {**base_environment(server_facts(url)), "load_average_at_start": round(load_average, 2)}
    anchor = datetime.now(UTC).replace(microsecond=0)
    history_end = anchor - timedelta(minutes=WORKLOAD_MINUTES)
    progress(f"generating {args.events:,} events in SQL")
    history_seconds = generate_history(url, args.events, history_end - timedelta(days=HISTORY_DAYS), history_end)
    progress("vacuum analyze")
    vacuum_seconds = vacuum_analyze(url)

    secret = secrets.token_urlsafe(24)
    with alert_sinks() as aws:
        configure_handler(url, aws, secret)
        progress(f"storing {args.calls:,} new events through the event store")
        workload_seconds, seqs = store_workload(build_workload(args.calls, anchor))
        results = Results(
            environment={
                **environment,
                "history_events": args.events,
                "workload_events": len(seqs),
                **table_facts(url),
            },
            setup_seconds={"history": history_seconds, "vacuum": vacuum_seconds, "workload": workload_seconds},
        )
        requests = webhook_requests(seqs, secret)
        measure_handler(results, url, seqs, requests)
        results.published = {"bus": len(aws.bus_events()), "sns": len(aws.sns_messages())}
    reset_transport()

    handler_alerts = stored_alerts(url)
    results.alerts_per_rule = dict(Counter(rule for rule, _, _ in handler_alerts))
    silent = [rule for rule in RULES if not results.alerts_per_rule.get(rule)]
    if silent:
        raise BenchError(f"no alert from {', '.join(silent)}: a bench that detects nothing measures nothing")

    new_events = load_new_events(url, seqs)
    rules = load_rules(url)
    checkpoint(url)
    settle()
    progress(f"naive scan: {len(new_events):,} events")
    timings, fetched, naive_alerts = run_naive(url, new_events, rules)
    results.naive = Timing("naive scan of the history (seed-style)", timings)
    results.naive_rows_fetched = fetched
    by_handler = set(handler_alerts)
    results.only_handler = sorted(by_handler - naive_alerts)
    results.only_naive = sorted(naive_alerts - by_handler)
    results.agreed_alerts = len(by_handler & naive_alerts)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Detection latency per event: the real webhook handler vs a naive scan of the user's history.",
        epilog="The server is DATABASE_URL (an admin role) or an embedded pgserver. See bench/README.md.",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="historical events generated in SQL (1000000)")
    parser.add_argument(
        "--calls",
        type=int,
        default=2_000,
        help=f"new events, each analysed by one webhook call (2000; at least {ATTACK_EVENTS + 100}: the attacks"
        f" are {ATTACK_EVENTS} of them)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database (its name is printed)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON (CI artefact)")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be positive")
    if args.calls < ATTACK_EVENTS + 100:
        parser.error(f"--calls must be at least {ATTACK_EVENTS + 100}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    admin_url = server_url()
    dbname = f"audit_bench_detect_{uuid.uuid4().hex[:10]}"
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
