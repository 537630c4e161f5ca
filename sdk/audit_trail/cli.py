"""`audit-trail`: operate and verify the audit trail from a terminal.

    audit-trail db migrate --database-url URL   apply the Supabase migrations to PostgreSQL
    audit-trail verify [--database-url URL]     recompute every checksum and chain link
    audit-trail webhook --url URL               connect new events to the detect function
    audit-trail local [--port 3000]             run the whole stack on this machine
    audit-trail invoke anchor|reports|retention|sweep   run a scheduled function in the local stack
    audit-trail demo                            a working day, three attacks and a tamper, end to end

Exit status: 0 success, 1 verification failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import orjson

from audit_common.db import PostgresTransport
from audit_common.errors import AuditError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class Progress:
    """A one-line progress bar on a terminal, a line every few seconds elsewhere (CI logs)."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self._label = label
        self._stream = stream
        self._enabled = enabled
        self._tty = stream.isatty()
        self._started = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Report `done` of `total` units."""
        if not self._enabled:
            return
        now = time.monotonic()
        if not self._tty and now - self._last < 5 and done < total:
            return
        self._last = now
        fraction = done / total if total else 1.0
        rate = done / max(now - self._started, 1e-9)
        bar = "#" * int(fraction * 30)
        line = f"{self._label} [{bar:<30}] {done:,}/{total:,} ({fraction:5.1%}, {rate:,.0f}/s)"
        self._stream.write(("\r" + line) if self._tty else (line + "\n"))
        self._stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self._enabled and self._tty:
            self._stream.write("\n")
            self._stream.flush()


def _database_url(args: argparse.Namespace) -> str:
    url: str | None = args.database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("audit-trail: no database: pass --database-url or set DATABASE_URL")
    return url


def cmd_db_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations (and, unless --no-bootstrap, the vanilla-PostgreSQL bootstrap)."""
    from audit_trail.migrations import migrate

    applied = migrate(
        _database_url(args),
        bootstrap=not args.no_bootstrap,
        progress=lambda m: print(f"applying {m.version}_{m.name}.sql", file=sys.stderr),
    )
    print(f"{len(applied)} migration(s) applied" if applied else "database is up to date")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify the chain in the database; print a summary, or JSON with --json."""
    from audit_common.verification import verify_chain

    transport = PostgresTransport(_database_url(args))
    progress = Progress("verifying", enabled=not args.quiet and not args.json)
    started = time.monotonic()
    try:
        result = verify_chain(
            transport, from_seq=args.from_seq, to_seq=args.to_seq, max_rows=sys.maxsize, progress=progress
        )
    finally:
        progress.close()
        transport.close()
    elapsed = time.monotonic() - started
    if args.json:
        sys.stdout.write(orjson.dumps(result.model_dump(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        total = result.to_seq - result.from_seq + 1
        print(
            f"{result.checked:,}/{max(total, 0):,} events valid, {result.redacted:,} redacted"
            f" (chain {result.chain_id}, head seq {result.head_seq:,}, {elapsed:.1f}s)"
        )
        if not result.valid:
            print(f"FAILED at seq {result.first_invalid_seq}: {result.reason}: {result.message}")
    return EXIT_OK if result.valid else EXIT_INVALID


def cmd_webhook(args: argparse.Namespace) -> int:
    """Create the AFTER INSERT trigger that calls the detect endpoint (pg_notify where pg_net is absent)."""
    import getpass

    import psycopg

    secret = os.environ.get("AUDIT_WEBHOOK_SECRET") or (
        getpass.getpass("webhook secret (as stored in Secrets Manager): ") if sys.stdin.isatty() else ""
    )
    if len(secret) < 16:
        raise SystemExit("audit-trail: the webhook secret must be at least 16 characters (AUDIT_WEBHOOK_SECRET)")
    with psycopg.connect(_database_url(args), autocommit=True) as conn:
        row = conn.execute(
            "select audit.configure_detection_webhook(%s, %s, %s)", (args.url, secret, args.timeout_ms)
        ).fetchone()
    mode = row[0] if row else "unknown"
    print(f"detection webhook installed ({mode}) -> {args.url}")
    if mode == "pg_notify":
        print("this database has no supabase_functions (pg_net): inserts are announced on channel audit_detection")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="audit-trail",
        description="Tamper-evident audit trail on Supabase and AWS: operate and verify.",
        epilog="Exit status: 0 success, 1 verification failed, 2 usage or configuration error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    migrate = db.add_parser(
        "migrate",
        help="apply supabase/migrations to a PostgreSQL database",
        description="Apply pending migrations, recorded in supabase_migrations.schema_migrations. "
        "On a Supabase project prefer `supabase db push`.",
    )
    migrate.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL)")
    migrate.add_argument(
        "--no-bootstrap",
        action="store_true",
        help="skip creating Supabase's roles and auth functions (they exist on Supabase projects)",
    )
    migrate.set_defaults(func=cmd_db_migrate)

    verify = commands.add_parser(
        "verify",
        help="recompute every checksum and chain link in the database",
        description="Read the chain in seq order and check every event's checksum and link, and that the "
        "rows reach the chain head. Names the first bad seq and why; exits 1 on any failure.",
    )
    verify.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL)")
    verify.add_argument("--from-seq", type=int, default=1, help="first seq to check (default 1)")
    verify.add_argument("--to-seq", type=int, default=None, help="last seq to check (default: the head)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument("--quiet", action="store_true", help="no progress output")
    verify.set_defaults(func=cmd_verify)

    webhook = commands.add_parser(
        "webhook",
        help="connect new events to the detect function (Supabase database webhook)",
        description="Create the AFTER INSERT trigger on audit.audit_events that posts each new event to the "
        "detect function's POST /webhooks/supabase with the shared secret header. Uses "
        "supabase_functions.http_request (pg_net) on Supabase; elsewhere falls back to pg_notify on channel "
        "audit_detection. The secret is read from $AUDIT_WEBHOOK_SECRET or prompted for, never from the "
        "command line (it would land in shell history).",
    )
    webhook.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL)")
    webhook.add_argument("--url", required=True, help="the detect endpoint, e.g. <ApiBaseUrl>/webhooks/supabase")
    webhook.add_argument("--timeout-ms", type=int, default=5000, help="pg_net request timeout (default 5000)")
    webhook.set_defaults(func=cmd_webhook)

    from audit_trail.local.commands import register_local_commands

    register_local_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `audit-trail` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AuditError as exc:
        print(f"audit-trail: {exc.message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
