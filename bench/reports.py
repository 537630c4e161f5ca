"""Report generation over a million events: the real handler beside a baseline that aggregates in Python.

A fresh database gets `--events` events generated in SQL (bench/detect.py's population: about 2,000
users with Zipf-like activity, 30 days, 30 % tagged gdpr and 10 % sox). Then, each in a fresh
subprocess so that its peak resident memory (ru_maxrss) is its own:

* handler: `POST /reports` through the reports Lambda handler (API Gateway proxy event), all three
  formats (JSON, streamed CSV, HTML) uploaded to a moto S3 server running in another process (so
  the stored objects do not count against the handler's memory);
* baseline: what a report does without SQL aggregation: fetch the period's rows into Python and
  compute the same summary there (counts per type, distinct users, failures, trend per day,
  completeness, clock skew, access per user to tagged data, SoD pairs) and the CSV in memory;
* imports: a process that only imports the handler, for the memory floor of the interpreter and
  its libraries.

    .venv/bin/python bench/reports.py [--events N] [--standard S] [--keep-db] [--json]

`DATABASE_URL` names the server (an admin role: it creates and drops a database); without it an
embedded PostgreSQL is started with pgserver. Targets: handler under 30 s and under 300 MB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

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

# isort: split
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, server_url

TARGET_SECONDS: Final = 30.0
TARGET_MB: Final = 300.0
BUCKET: Final = "audit-reports-bench"


def _maxrss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# Child processes: each prints one JSON line
# --------------------------------------------------------------------------------------------


def child_imports() -> dict[str, Any]:
    """Import the handler and nothing more: the memory floor."""
    from reports import handler  # noqa: F401

    return {"maxrss_mb": _maxrss_mb()}


def child_handler(standard: str, start: str, end: str) -> dict[str, Any]:
    """POST /reports through the Lambda handler, timed from the call to the answer."""
    from reports.handler import lambda_handler
    from tests.support.apigw import invoke, proxy_event

    body = {"standard": standard, "start": start, "end": end}
    floor = _maxrss_mb()
    started = time.perf_counter()
    answer = invoke(lambda_handler, proxy_event("POST", "/reports", body=body))
    seconds = time.perf_counter() - started
    if answer.status != 201:
        raise BenchError(f"POST /reports answered {answer.status}: {answer.body}")
    return {
        "seconds": seconds,
        "maxrss_mb": _maxrss_mb(),
        "import_maxrss_mb": floor,
        "total_events": answer.body["total_events"],
        "overall_status": answer.body["overall_status"],
        "sizes": {fmt: meta["size_bytes"] for fmt, meta in answer.body["formats"].items()},
    }


def child_baseline(url: str, start: str, end: str) -> dict[str, Any]:
    """Fetch the period's rows and aggregate them in Python: what the SQL functions replace."""
    import csv
    import io
    from collections import Counter, defaultdict

    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """select seq, event_id, "timestamp", event_type, user_id, host(ip_address), action, resource_path,
                      resource_id, status, security_level, compliance_tags, received_at, redaction_reason,
                      encode(checksum, 'hex'), encode(chain_hash, 'hex'), session_id, user_agent
                 from audit.audit_events where "timestamp" >= %s and "timestamp" < %s order by seq""",
            (start, end),
        ).fetchall()
    by_type: Counter[str] = Counter()
    trend: Counter[str] = Counter()
    users: set[str] = set()
    failures = complete = detailed = skewed = 0
    tag_users: dict[str, Counter[str]] = defaultdict(Counter)
    sod: dict[tuple[str, str], set[str]] = defaultdict(set)
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        (_, _, ts, event_type, user, ip, _action, path, rid, status, _, tags, received, _, _, _, session, agent) = row
        by_type[event_type] += 1
        trend[ts.strftime("%Y-%m-%d")] += 1
        users.add(user)
        failures += status == "failure"
        complete += ip is not None and (path is not None or rid is not None)
        detailed += ip is not None and (path is not None or rid is not None) and (session or agent) is not None
        skewed += abs((received - ts).total_seconds()) > 300
        for tag in tags:
            tag_users[tag][user] += 1
        if "sox" in tags and status == "success" and (rid or path):
            sod[(user, rid or path)].add(event_type)
        writer.writerow(row[:16])
    conflicts = sum(1 for kinds in sod.values() if {"file_modify", "file_delete"} <= kinds)
    return {
        "seconds": time.perf_counter() - started,
        "maxrss_mb": _maxrss_mb(),
        "total_events": len(rows),
        "summary": {
            "distinct_users": len(users),
            "failures": failures,
            "types": len(by_type),
            "days": len(trend),
            "complete": complete,
            "detailed": detailed,
            "skewed": skewed,
            "tag_users": {tag: len(c) for tag, c in tag_users.items()},
            "conflicts": conflicts,
            "csv_bytes": len(out.getvalue()),
        },
    }


def child_main(argv: Sequence[str]) -> int:
    kind = argv[0]
    if kind == "imports":
        result = child_imports()
    elif kind == "handler":
        result = child_handler(argv[1], argv[2], argv[3])
    else:
        result = child_baseline(argv[1], argv[2], argv[3])
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"{args[0]} child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(args: argparse.Namespace, admin_url: str, dbname: str) -> dict[str, Any]:
    # Imported here: the child processes need none of detect's bench machinery.
    from bench.detect import generate_history

    url = create_database(admin_url, dbname)
    migrate(url)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(days=30)
    progress(f"generating {args.events:,} events over 30 days")
    generated = generate_history(url, args.events, start, end)
    vacuum_analyze(url)
    # The generation's dirty pages are written now, not during the measurement.
    checkpoint(url)
    env_facts = base_environment(server_facts(url))
    env_facts["load_average_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    port = _free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "AUDIT_DATABASE_ROLE": "service_role",
            "AUDIT_REPORTS_BUCKET": BUCKET,
            "AUDIT_STATEMENT_TIMEOUT_MS": "60000",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
        }
        _wait_for(port)
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        period = (start.isoformat(), (end + timedelta(minutes=1)).isoformat())
        progress("imports only")
        floor = _run_child(["imports"], env)
        progress(f"handler: {args.standard} report over {args.events:,} events")
        handler = _run_child(["handler", args.standard, *period], env)
        progress("baseline: rows into Python")
        baseline = _run_child(["baseline", url, *period], env)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    if handler["total_events"] != args.events or baseline["total_events"] != args.events:
        raise BenchError(
            f"events in the period: handler {handler['total_events']}, baseline {baseline['total_events']}"
        )
    return {
        "environment": env_facts,
        "events": args.events,
        "standard": args.standard,
        "generate_seconds": generated,
        "imports": floor,
        "handler": handler,
        "baseline": baseline,
    }


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError("the moto S3 server did not start")


def report(results: dict[str, Any]) -> str:
    handler, baseline, floor = results["handler"], results["baseline"], results["imports"]
    lines = [
        [
            "reports handler (SQL aggregates, CSV streamed)",
            f"{handler['seconds']:.1f}",
            f"{handler['maxrss_mb']:.0f}",
            f"{handler['maxrss_mb'] - floor['maxrss_mb']:.0f}",
        ],
        [
            "baseline (rows into Python)",
            f"{baseline['seconds']:.1f}",
            f"{baseline['maxrss_mb']:.0f}",
            f"{baseline['maxrss_mb'] - floor['maxrss_mb']:.0f}",
        ],
    ]
    table = format_table(["", "wall s", "peak RSS MB", "above import floor MB"], lines, [False, True, True, True])
    ok_time = handler["seconds"] < TARGET_SECONDS
    ok_memory = handler["maxrss_mb"] < TARGET_MB
    sizes = ", ".join(f"{fmt} {size / 1e6:.1f} MB" for fmt, size in sorted(handler["sizes"].items()))
    return "\n".join(
        [
            f"Compliance report ({results['standard']}) over {results['events']:,} events (30 days)",
            environment_line(results["environment"]),
            f"generated in SQL in {results['generate_seconds']:.0f} s; import floor {floor['maxrss_mb']:.0f} MB RSS",
            "",
            table,
            "",
            f"ratio baseline/handler: time x{baseline['seconds'] / handler['seconds']:.1f}, "
            f"peak memory x{baseline['maxrss_mb'] / handler['maxrss_mb']:.1f}",
            f"handler files: {sizes}; overall status {handler['overall_status']}",
            f"target: under {TARGET_SECONDS:.0f} s {'met' if ok_time else 'MISSED'}, "
            f"under {TARGET_MB:.0f} MB peak {'met' if ok_memory else 'MISSED'}",
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--standard", default="pci_dss", choices=["gdpr", "hipaa", "sox", "pci_dss", "iso_27001", "cis"]
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_sigterm()
    admin_url = server_url()
    dbname = f"audit_bench_reports_{uuid.uuid4().hex[:10]}"
    try:
        results = run(args, admin_url, dbname)
    except BenchError as exc:
        print(f"benchmark failed, no numbers: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted, no numbers", file=sys.stderr)
        return 130
    finally:
        drop_databases(admin_url, (dbname,), keep=args.keep_db)
    print(report(results))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
