"""A working day of a file-management app, an attack or three, and the trail that caught them.

Runs in one process with no Docker and no cloud account: PostgreSQL from DATABASE_URL or an embedded
one (pgserver), AWS from moto. Events go through the real ingest handler as API Gateway events; the
database announces each insert (the pg_notify form of the Supabase webhook) and the demo relays it to
the real detect handler; then the chain is verified, a row is tampered with behind the API's back, and
verification names it. (The full local stack with an HTTP server is its own issue; this shows the job.)

    make demo                      # or: python demo/demo.py [--events N] [--keep-db]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message="No application metrics to publish")
ROOT = Path(__file__).resolve().parents[1]
for entry in ("layers/common", "functions", "sdk"):
    sys.path.insert(0, str(ROOT / entry))
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "audit-trail-demo")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AuditTrailDemo")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_DEFAULT_REGION": "us-east-1"})

import boto3  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from moto import mock_aws  # noqa: E402

from audit_common.db import reset_transport  # noqa: E402
from audit_common.settings import get_settings  # noqa: E402
from audit_trail.migrations import migrate  # noqa: E402
from audit_trail.postgres import create_database, drop_database, server_url  # noqa: E402

WEBHOOK_SECRET = "demo-webhook-secret-0123456789"  # noqa: S105 - a throwaway value for the demo database
DEPARTMENTS = ["finance", "legal", "engineering", "sales", "hr", "marketing"]
DAY_TYPES = ["file_access"] * 5 + ["file_download"] * 2 + ["file_upload", "file_modify", "file_share", "user_login"]


class Context:
    """A fake Lambda context: the attributes Powertools reads."""

    function_name = "demo"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:demo"
    aws_request_id = "demo"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def say(text: str = "") -> None:
    print(text, flush=True)


def api(handler: Any, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """Call a handler as API Gateway would; return (status, decoded body)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    path_only, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p) or None
    event = {
        "resource": path_only,
        "path": path_only,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in (params or {}).items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
            "resourcePath": path_only,
            "httpMethod": method,
        },
        "body": None if body is None else orjson.dumps(body).decode(),
        "isBase64Encoded": False,
    }
    # The functions' structured logs and EMF metrics go to stdout, as in Lambda; keep the demo readable.
    with contextlib.redirect_stdout(io.StringIO()):
        response = handler(event, Context())
    return response["statusCode"], orjson.loads(response["body"]) if response.get("body") else None


def event(user: int, at: datetime, rng: random.Random, **fields: Any) -> dict[str, Any]:
    dept = DEPARTMENTS[user % len(DEPARTMENTS)]
    kind = fields.pop("event_type", rng.choice(DAY_TYPES))
    base = {
        "event_id": str(uuid.uuid4()),
        "timestamp": at.isoformat(),
        "event_type": kind,
        "user_id": f"user-{user:03d}",
        "user_email": f"user{user:03d}@files.example",
        "session_id": f"sess-{user}-{at:%H}",
        "ip_address": f"10.20.{user % 50}.{user % 200 + 10}",
        "user_agent": "Mozilla/5.0 (Macintosh) FilesWeb/4.2",
        "resource_path": f"/{dept}/reports/{rng.randint(1, 400)}.pdf",
        "action": {"user_login": "login"}.get(kind, kind.replace("file_", "")),
        "status": "success",
        "details": {"file_size": rng.randint(1_000, 20_000_000), "department": dept},
        "security_level": "medium" if dept in ("finance", "legal", "hr") else "low",
        "compliance_tags": {"finance": ["sox"], "hr": ["gdpr"], "legal": ["gdpr"]}.get(dept, []),
    }
    base.update(fields)
    return base


def scenario(rng: random.Random, day_events: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The day in chapters: (title, events)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=9)
    day = [
        event(rng.randint(0, 39), start + timedelta(seconds=rng.randint(0, 8 * 3600)), rng) for _ in range(day_events)
    ]
    day.sort(key=lambda e: e["timestamp"])
    yield f"A working day: {day_events:,} events from 40 people", day
    spray_at = start + timedelta(hours=8, minutes=10)
    yield (
        "Password spraying: one address tries 25 accounts",
        [
            event(
                i,
                spray_at + timedelta(seconds=7 * i),
                rng,
                event_type="user_login",
                action="login",
                status="failure",
                ip_address="203.0.113.66",
                user_agent="python-requests/2.31",
                details={"reason": "bad_password"},
            )
            for i in range(25)
        ],
    )
    bulk_at = start + timedelta(hours=8, minutes=20)
    yield (
        "An insider downloads 60 finance files in 20 minutes",
        [
            event(
                7,
                bulk_at + timedelta(seconds=20 * i),
                rng,
                event_type="file_download",
                resource_path=f"/finance/ledger/{2020 + i % 6}/q{i % 4 + 1}-{i}.xlsx",
                security_level="high",
                compliance_tags=["sox"],
            )
            for i in range(60)
        ],
    )
    yield (
        "A contractor grants themselves the admin role",
        [
            event(
                33,
                start + timedelta(hours=8, minutes=45),
                rng,
                event_type="permission_change",
                action="grant_role",
                security_level="high",
                details={"target_user": "user-033", "role": "admin", "previous_role": "viewer"},
            )
        ],
    )


@contextmanager
def demo_database(keep: bool) -> Iterator[str]:
    admin = server_url(Path.home() / ".audit-trail" / "demo-pgdata")
    name = f"audit_demo_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        if keep:
            say(f"(database kept: {name})")
        else:
            drop_database(admin, name)


def run(day_events: int, keep: bool) -> bool:
    """Play the scenario; True when verification passed and then caught the tamper."""
    started = time.monotonic()
    say("audit-trail demo: a tamper-evident audit trail, end to end, on this machine\n")
    with demo_database(keep) as url, mock_aws():
        say("1. Database: applying migrations")
        migrate(url)
        bus = boto3.client("events").create_event_bus(Name="audit-demo")["EventBusArn"].split("/")[-1]
        topic = boto3.client("sns").create_topic(Name="audit-demo-alerts")["TopicArn"]
        os.environ.update(
            {
                "DATABASE_URL": url,
                "AUDIT_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "AUDIT_EVENT_BUS_NAME": bus,
                "AUDIT_ALERT_TOPIC_ARN": topic,
            }
        )
        get_settings.cache_clear()
        reset_transport()
        from detect.handler import lambda_handler as detect
        from ingest.handler import lambda_handler as ingest

        with psycopg.connect(url, autocommit=True) as db:
            mode = db.execute(
                "select audit.configure_detection_webhook(%s, %s)",
                ("http://127.0.0.1/webhooks/supabase", WEBHOOK_SECRET),
            ).fetchone()
            say(f"   detection webhook wired ({mode[0] if mode else '?'}); relaying it to the detect handler\n")
            db.execute("listen audit_detection")
            rng = random.Random(20261127)  # noqa: S311 - a reproducible scenario, not a secret
            say("2. Events through the ingest API, each insert analysed by the detection rules")
            for title, events in scenario(rng, day_events):
                stored = 0
                for i in range(0, len(events), 1000):
                    status, body = api(ingest, "POST", "/events", {"events": events[i : i + 1000]})
                    if status not in (200, 201):
                        raise SystemExit(f"ingest refused a batch: {status} {body}")
                    stored += body["created"]
                relayed = 0
                while relayed < len(events):
                    before = relayed
                    for notice in db.notifies(timeout=2.0, stop_after=len(events) - relayed):
                        status, answer = api(
                            detect,
                            "POST",
                            "/webhooks/supabase",
                            orjson.loads(notice.payload),
                            {"X-Audit-Webhook-Secret": WEBHOOK_SECRET},
                        )
                        if status != 200:
                            raise SystemExit(f"detect refused the relayed webhook: {status} {answer}")
                        relayed += 1
                    if relayed == before:
                        break
                say(f"   {title}: {stored:,} stored, {relayed:,} analysed")

            say("\n3. Alerts raised")
            _, page = api(detect, "GET", "/alerts?limit=100")
            for alert in sorted(page["alerts"], key=lambda a: -a["risk_score"]):
                level = f"{alert['severity'].upper():8} {alert['risk_score']:4.1f}"
                say(f"   [{level}] {alert['rule']:22} {alert['summary']}")

            say("\n4. Verifying the chain (every checksum recomputed, every link checked)")
            _, verified = api(ingest, "GET", "/integrity/verify")
            say(
                f"   {verified['checked']:,}/{verified['head_seq']:,} events valid: "
                f"{'VALID' if verified['valid'] else 'INVALID ' + str(verified['reason'])}"
            )

            victim = verified["head_seq"] // 2
            say(f"\n5. Someone with database superuser rights quietly edits event seq {victim:,}")
            db.execute("set session_replication_role = replica")
            db.execute("update audit.audit_events set user_id = 'someone-else' where seq = %s", (victim,))
            _, after = api(ingest, "GET", "/integrity/verify")
            say(
                f"   verification: {'VALID' if after['valid'] else 'INVALID'} at seq {after['first_invalid_seq']}: "
                f"{after['reason']}: {after['message']}"
            )
    caught = bool(verified["valid"]) and not after["valid"] and after["first_invalid_seq"] == victim
    say(f"\n{'done' if caught else 'UNEXPECTED RESULT'} in {time.monotonic() - started:.0f} s")
    return caught


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=3000, help="events in the working day (default 3000)")
    parser.add_argument("--keep-db", action="store_true", help="keep the demo database afterwards")
    args = parser.parse_args()
    return 0 if run(args.events, args.keep_db) else 1


if __name__ == "__main__":
    raise SystemExit(main())
