"""Dashboard refresh: GET /analytics for 30 days over 1,000,000 events, beside pulling the rows into Python.

A fresh database gets `--events` events generated in SQL (bench/detect.py's population: about 2,000
users with Zipf-like activity, about 5,000 IP addresses, 30 days), `--alerts` alerts spread over the
same days, a signed digest's row over most of the chain and a detection watermark a sweep behind the
head. Then, in this one process and each call on its own clock:

* the real handler (API Gateway proxy event -> `audit.analytics` -> response model -> JSON), `--calls`
  times for the 30 days (the default bucket, 3 h) and for the last 24 hours (5-minute buckets); the
  first call, which rolls the whole trail up, is timed apart;
* the same 30 days while events keep arriving (`--arrivals` new events stored before each call, so
  every call also rolls them up);
* the baseline the issue names: pull the rows (events and alerts) into Python and aggregate there,
  `--baseline-calls` times.
Both must agree on every total, per-bucket count, new-IP pair count and alert count, or no number is
printed.

    .venv/bin/python bench/analytics.py [--events N] [--alerts N] [--calls N] [--keep-db]

`DATABASE_URL` names the server (an admin role: it creates and drops a database); without it an
embedded PostgreSQL is started with pgserver. See bench/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

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
)
from bench.detect import CHUNK_ROWS, HISTORY_DAYS, generate_history, history_sql

# The imports below need the path bench._common sets up: keep them in a block of their own.
# isort: split
from analytics.config import get_analytics_settings
from analytics.handler import lambda_handler
from audit_common.db import reset_transport
from audit_common.settings import get_settings
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url
from tests.support.apigw import FakeLambdaContext, proxy_event

TARGET_MEDIAN_MS: Final = 300.0
ORIGIN: Final = datetime(2000, 1, 1, tzinfo=UTC)
WORKDAY: Final = (8, 18)  # the default working hours, UTC, Monday to Friday


# --------------------------------------------------------------------------------------------
# The data: events (bench/detect.py's generator), alerts, a digest row and a sweep watermark
# --------------------------------------------------------------------------------------------

ALERTS_SQL: Final = """
insert into audit.security_alerts (
  rule, alert_key, window_start, window_seconds, severity, risk_score, attack_id, event_count, event_ids,
  first_event_at, last_event_at, trigger_seq, summary, context, status)
select r.name,
       case when r.group_by = 'user_id' then 'user-' || lpad((1 + (a.i * 7919) %% 2000)::text, 4, '0')
            else '198.18.0.' || (a.i %% 250) end,
       a.at, r.window_seconds,
       case when a.risk >= 10 then 'critical' when a.risk >= 7 then 'high'
            when a.risk >= 3 then 'medium' else 'low' end,
       a.risk, r.attack_id, 5 + a.i %% 40, '{}', a.at, a.at + interval '5 minutes', a.i, 'bench alert', '{}',
       case when a.s < 0.7 then 'open' when a.s < 0.9 then 'acknowledged' else 'resolved' end
  from (select i, %(start)s::timestamptz + make_interval(secs => %(span)s * (i - 0.5) / %(alerts)s) as at,
               round((random() * 10)::numeric, 1) as risk, random() as s
          from generate_series(1, %(alerts)s) i) a
  join audit.detection_rules r
    on r.name = (array['multiple_failed_logins', 'brute_force', 'unusual_file_access', 'data_exfiltration',
                       'privilege_escalation'])[1 + a.i %% 5]
"""


def generate_alerts(url: str, alerts: int, start: datetime, end: datetime) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select setseed(0.9)")
        conn.execute(ALERTS_SQL, {"alerts": alerts, "start": start, "span": (end - start).total_seconds()})


def anchor_and_sweep(url: str, events: int) -> None:
    """A digest row over all but the newest 1,000 events, and a sweep 2,000 events behind (the webhook did those)."""
    tree_size = max(events - 1000, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into audit.digests (digest_seq, chain_id, tree_size, previous_tree_size, root_hash, chain_hash,"
            " period_start, period_end, created_at, s3_key, signature, signing_key_id, signing_algorithm, body)"
            " select 1, 'default', e.seq, 0, e.checksum, e.chain_hash, now() - interval '1 hour', now(), now(),"
            " 'digests/bench.json', 'YmVuY2g=', 'bench-key', 'ECDSA_SHA_256', '{}'"
            " from audit.audit_events e where e.seq = %s",
            (tree_size,),
        )
        watermark = max(events - 2000, 0)
        conn.execute("update audit.detection_state set watermark = %s, swept_at = now()", (watermark,))
        conn.execute(
            "insert into audit.detection_log (seq, source)"
            " select s, 'webhook' from generate_series(%s::bigint, %s::bigint) s",
            (watermark + 1, events),
        )


def add_arrivals(url: str, first: int, count: int, total: int, start: datetime, end: datetime) -> None:
    """`count` more events from the same generator, numbered on from `first` (timestamps just past `end`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            history_sql(),
            {
                "first": first,
                "last": first + count - 1,
                "total": total,
                "start": start,
                "span": (end - start).total_seconds(),
            },
        )


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    seconds: list[float]

    def ms(self, q: int | None = None) -> float:
        values = sorted(self.seconds)
        return 1000 * (statistics.median(values) if q is None else percentile(values, q))


def call_handler(query: str) -> dict[str, Any]:
    import orjson

    response = lambda_handler(proxy_event("GET", f"/analytics?{query}"), FakeLambdaContext(function_name="analytics"))
    if response["statusCode"] != 200:
        raise BenchError(f"GET /analytics?{query} answered {response['statusCode']}: {response['body'][:300]}")
    body: dict[str, Any] = orjson.loads(response["body"])
    return body


def timed(
    calls: int, action: Callable[[], Any], before: Callable[[int], None] | None = None
) -> tuple[list[float], Any]:
    seconds, last = [], None
    for i in range(calls):
        if before is not None:
            before(i)
        started = time.perf_counter()
        last = action()
        seconds.append(time.perf_counter() - started)
    return seconds, last


# --------------------------------------------------------------------------------------------
# The baseline: every row into Python, aggregated there
# --------------------------------------------------------------------------------------------


def after_hours(at: datetime) -> bool:
    return at.isoweekday() > 5 or not WORKDAY[0] <= at.hour < WORKDAY[1]


def python_trends(url: str, start: datetime, end: datetime, bucket_seconds: int) -> dict[str, Any]:
    """What `audit.analytics` answers, computed from rows pulled into Python (the seed's way)."""
    buckets: dict[int, Counter[str]] = defaultdict(Counter)
    first_seen: dict[tuple[str, str], datetime] = {}
    totals: Counter[str] = Counter()
    with psycopg.connect(url) as conn:
        # Every event up to the end: the period's, and the history that says whether an address is new.
        with conn.cursor(name="events") as cursor:
            cursor.itersize = 20_000
            cursor.execute(
                'select "timestamp", event_type, status, user_id, host(ip_address) from audit.audit_events'
                ' where "timestamp" < %s',
                (end,),
            )
            for at, event_type, status, user_id, ip in cursor:
                if ip is not None:
                    pair = (user_id, ip)
                    if pair not in first_seen or at < first_seen[pair]:
                        first_seen[pair] = at
                if at < start:
                    continue
                index = int((at - ORIGIN).total_seconds() // bucket_seconds)
                counts = buckets[index]
                counts["events"] += 1
                counts[f"{event_type}:{status}"] += 1
                if status == "failure":
                    counts["failures"] += 1
                    if event_type == "user_login":
                        counts["failed_logins"] += 1
                if after_hours(at):
                    counts["after_hours"] += 1
        rules: dict[str, str] = dict(conn.execute("select name, group_by from audit.detection_rules").fetchall())
        alerts = conn.execute(
            "select rule, alert_key, severity, status, risk_score::float8 from audit.security_alerts"
            " where first_event_at >= %s and first_event_at < %s",
            (start, end),
        ).fetchall()
    for counts in buckets.values():
        totals.update({key: counts[key] for key in ("events", "failures", "failed_logins", "after_hours")})
    by_key: dict[tuple[str, str], list[float]] = defaultdict(list)
    for rule, key, _severity, _status, risk in alerts:
        by_key[(rules.get(rule, "user_id"), key)].append(risk)
    top_users = sorted(
        ((max(r), round(sum(r), 1), len(r), key) for (kind, key), r in by_key.items() if kind == "user_id"),
        key=lambda row: (-row[0], -row[1], -row[2], row[3]),
    )[:10]
    return {
        "totals": dict(totals),
        "buckets": {index: counts["events"] for index, counts in buckets.items()},
        "new_pairs": sum(1 for at in first_seen.values() if start <= at < end),
        "alerts": len(alerts),
        "by_severity": Counter(severity for _, _, severity, _, _ in alerts),
        "histogram": Counter(math.floor(risk) for *_, risk in alerts),
        "top_users": [key for *_, key in top_users],
    }


def check_agreement(sql: dict[str, Any], python: dict[str, Any], bucket_seconds: int) -> None:
    """The two answers must be the same, figure by figure."""
    problems = []
    sql_totals = {key: sql["totals"][key] for key in ("events", "failures", "failed_logins", "after_hours")}
    if sql_totals != python["totals"]:
        problems.append(f"totals {sql_totals} != {python['totals']}")
    sql_buckets = {
        int((datetime.fromisoformat(b["start"]) - ORIGIN).total_seconds() // bucket_seconds): b["events"]
        for b in sql["buckets"]
        if b["events"]
    }
    if sql_buckets != python["buckets"]:
        problems.append("events per bucket differ")
    if sql["new_ips"]["pairs"] != python["new_pairs"]:
        problems.append(f"new IP pairs {sql['new_ips']['pairs']} != {python['new_pairs']}")
    if sql["alerts"]["total"] != python["alerts"]:
        problems.append(f"alerts {sql['alerts']['total']} != {python['alerts']}")
    if {k: v for k, v in sql["alerts"]["by_severity"].items() if v} != dict(python["by_severity"]):
        problems.append("alerts by severity differ")
    if {b["score"]: b["alerts"] for b in sql["alerts"]["risk_histogram"] if b["alerts"]} != dict(python["histogram"]):
        problems.append("risk histograms differ")
    if [u["user_id"] for u in sql["alerts"]["top_users"]] != python["top_users"]:
        problems.append("top users by risk differ")
    if problems:
        raise BenchError("SQL and Python disagree: " + "; ".join(problems))


# --------------------------------------------------------------------------------------------
# Run and report
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    environment: dict[str, Any]
    setup_seconds: dict[str, float]
    first_call_seconds: float
    timings: list[Timing]
    baseline: Timing
    answer_bytes: int
    buckets: int
    bucket: str


def run(args: argparse.Namespace, admin_url: str, dbname: str) -> Results:
    load_average = os.getloadavg()[0]
    url = create_database(admin_url, dbname)
    migrate(url)
    environment = {**base_environment(server_facts(url)), "load_average_at_start": round(load_average, 2)}
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=HISTORY_DAYS)
    progress(f"generating {args.events:,} events and {args.alerts:,} alerts in SQL")
    history_seconds = generate_history(url, args.events, start, end)
    generate_alerts(url, args.alerts, start, end)
    anchor_and_sweep(url, args.events)
    progress("vacuum analyze")
    vacuum_seconds = vacuum_analyze(url) + vacuum_analyze(url, "audit.security_alerts")

    point_handler_at(url)
    get_analytics_settings.cache_clear()
    month = f"from={start.isoformat()}&to={end.isoformat()}".replace("+00:00", "Z")
    day = f"from={(end - timedelta(days=1)).isoformat()}&to={end.isoformat()}".replace("+00:00", "Z")
    checkpoint(url)
    settle()
    progress("first call: rolls the whole trail up")
    started = time.perf_counter()
    answer = call_handler(month)
    first_call = time.perf_counter() - started

    progress(f"handler: {args.calls} calls for 30 days, {args.calls} for 24 hours")
    month_seconds, answer = timed(args.calls, lambda: call_handler(month))
    day_seconds, _ = timed(args.calls, lambda: call_handler(day))
    arrivals = max(args.calls // 2, 1)
    progress(f"handler: {arrivals} calls for 30 days, {args.arrivals:,} new events before each")
    next_event = args.events + 1

    def arrive(_i: int) -> None:
        nonlocal next_event
        add_arrivals(url, next_event, args.arrivals, args.events, start, end)
        next_event += args.arrivals

    arriving_seconds, _ = timed(arrivals, lambda: call_handler(month), before=arrive)
    reset_transport()

    progress(f"baseline: {args.baseline_calls} pulls of every row into Python")
    checkpoint(url)
    baseline_seconds, python = timed(
        args.baseline_calls, lambda: python_trends(url, start, end, answer["bucket_seconds"])
    )
    check_agreement(answer, python, answer["bucket_seconds"])

    import orjson

    return Results(
        environment={**environment, "events": args.events, "alerts": args.alerts},
        setup_seconds={"history": history_seconds, "vacuum": vacuum_seconds},
        first_call_seconds=first_call,
        timings=[
            Timing(f"GET /analytics, 30 days ({answer['bucket']} buckets)", month_seconds),
            Timing("GET /analytics, last 24 hours (5m buckets)", day_seconds),
            Timing(f"GET /analytics, 30 days, {args.arrivals:,} new events before each call", arriving_seconds),
        ],
        baseline=Timing("rows pulled into Python and aggregated there (baseline), 30 days", baseline_seconds),
        answer_bytes=len(orjson.dumps(answer)),
        buckets=len(answer["buckets"]),
        bucket=answer["bucket"],
    )


def report(results: Results) -> str:
    env = results.environment
    rows = [
        [t.name, str(len(t.seconds)), f"{t.ms():.1f}", f"{t.ms(99):.1f}", f"{1000 * max(t.seconds):.1f}"]
        for t in [*results.timings, results.baseline]
    ]
    month = results.timings[0]
    ratio = results.baseline.ms() / month.ms()
    verdict = "met" if month.ms() < TARGET_MEDIAN_MS else "NOT met"
    return "\n".join(
        [
            f"# GET /analytics over {env['events']:,} events and {env['alerts']:,} alerts ({env['date']})",
            environment_line(env),
            f"setup: history {results.setup_seconds['history']:.0f} s, vacuum {results.setup_seconds['vacuum']:.0f} s;"
            f" first call (rolls up every event) {results.first_call_seconds:.2f} s",
            "",
            format_table(["case", "calls", "median ms", "p99 ms", "max ms"], rows, [False, True, True, True, True]),
            "",
            f"30-day answer: {results.buckets} buckets of {results.bucket},"
            f" {results.answer_bytes / 1024:.0f} KiB of JSON;"
            f" SQL and Python agree on every total, bucket, new-IP pair and alert count.",
            f"baseline / SQL (30 days, median): {ratio:.1f}x",
            f"target: 30-day median under {TARGET_MEDIAN_MS:.0f} ms: {verdict} ({month.ms():.1f} ms)",
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="GET /analytics (SQL over rollups) vs pulling the rows into Python, 30 days of events.",
        epilog="The server is DATABASE_URL (an admin role) or an embedded pgserver. See bench/README.md.",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events generated in SQL (1000000)")
    parser.add_argument("--alerts", type=int, default=3_000, help="alerts generated in SQL (3000)")
    parser.add_argument("--calls", type=int, default=50, help="handler calls per case (50)")
    parser.add_argument("--arrivals", type=int, default=2_000, help="new events before each call in the arrivals case")
    parser.add_argument("--baseline-calls", type=int, default=3, help="baseline runs (3; each reads every row)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database (its name is printed)")
    args = parser.parse_args(argv)
    if min(args.events, args.alerts, args.calls, args.arrivals, args.baseline_calls) < 1:
        parser.error("every count must be positive")
    if args.events < CHUNK_ROWS // 100:
        parser.error(f"--events must be at least {CHUNK_ROWS // 100}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    admin_url = server_url()
    dbname = f"audit_bench_analytics_{uuid.uuid4().hex[:10]}"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
