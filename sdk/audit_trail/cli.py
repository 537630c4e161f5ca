"""`audit-trail`: operate and verify the audit trail from a terminal.

    audit-trail db migrate --database-url URL   apply the Supabase migrations to PostgreSQL
    audit-trail verify [--database-url URL]     recompute every checksum and chain link
    audit-trail keys fingerprint --key-id ARN   the signing key's fingerprint, for verifiers to pin
    audit-trail webhook --url URL               connect new events to the detect function
    audit-trail local [--port 3000]             run the whole stack on this machine
    audit-trail invoke anchor|reports|retention|sweep   run a scheduled function in the local stack
    audit-trail token --role writer|user|auditor|admin  a bearer token the local stack accepts
    audit-trail demo                            a working day, three attacks and a tamper, end to end

Exit status: 0 success, 1 verification failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from audit_common.db import PostgresTransport
from audit_common.errors import AuditError

if TYPE_CHECKING:
    from audit_trail.verify_digests import KeyTrust as KeyTrustType

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


def _verify_range(args: argparse.Namespace) -> int:
    """--from-seq/--to-seq: the chain links and checksums of a seq range, through the SQL API (no digests)."""
    from audit_common.verification import verify_chain

    transport = PostgresTransport(_database_url(args))
    progress = Progress("verifying", enabled=not (args.quiet or args.json))
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
            f"{result.checked}/{max(total, 0)} events valid, {result.redacted} redacted"
            f" (seq {result.from_seq}..{result.to_seq} of chain {result.chain_id}, head seq {result.head_seq},"
            f" {elapsed:.1f}s; digests are checked only over the whole chain)"
        )
        if not result.valid:
            print(f"FAILED at seq {result.first_invalid_seq}: {result.reason}: {result.message}")
    return EXIT_OK if result.valid else EXIT_INVALID


def _region(args: argparse.Namespace) -> str:
    return str(args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def _as_of(text: str) -> datetime:
    """``--as-of``: an RFC 3339 time with its offset (``2026-11-28T08:00:00Z``)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time (e.g. 2026-11-28T08:00:00Z)") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z or an offset such as +01:00")
    return moment.astimezone(UTC)


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("seconds must not be negative")
    return value


def _key_trust(args: argparse.Namespace, *, from_bucket: bool) -> KeyTrustType:
    """What the digests' keys are pinned to: --public-key files, --key-fingerprint and the configured
    AUDIT_SIGNING_KEY_FINGERPRINTS; KMS looks key material up for the bucket (unless --no-kms)."""
    from pathlib import Path

    from audit_trail.verify_digests import FINGERPRINTS_ENV, KeyTrust, KmsPublicKeys, UsageError, parse_fingerprints

    keys: list[bytes] = []
    for name in args.public_key or []:
        try:
            keys.append(Path(name).read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read --public-key: {exc}") from exc
    fingerprints = list(args.key_fingerprint or [])
    try:
        fingerprints += parse_fingerprints(os.environ.get(FINGERPRINTS_ENV, ""))
    except ValueError as exc:
        raise UsageError(f"{FINGERPRINTS_ENV}: {exc}") from exc
    kms = KmsPublicKeys(endpoint_url=args.endpoint_url) if from_bucket and not args.no_kms else None
    try:
        return KeyTrust.create(fingerprints=fingerprints, public_keys=keys, kms=kms)
    except ValueError as exc:
        raise UsageError(f"--key-fingerprint or --public-key: {exc}") from exc


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify every event and, given the digests, prove the chain against them; summary, or JSON with --json."""
    from pathlib import Path

    from audit_trail.verify import SealedRowError, UsageError, choose_chain, verify_offline
    from audit_trail.verify_digests import (
        DigestSource,
        DirectoryDigestSource,
        Freshness,
        S3DigestSource,
        no_trust_anchor_message,
        save_digests,
    )

    def usage(message: str) -> int:
        print(f"audit-trail: {message}", file=sys.stderr)
        return EXIT_USAGE

    if args.from_seq != 1 or args.to_seq is not None:
        if args.digest_bucket or args.digests_dir:
            return usage("--from-seq/--to-seq check events only: leave out the digests")
        return _verify_range(args)
    url = _database_url(args)
    if args.workers is not None and args.workers < 1:
        return usage("--workers must be at least 1")
    if args.endpoint_url and not args.digest_bucket:
        return usage("--endpoint-url is for --digest-bucket")
    if args.anchor_interval < 1:
        return usage("--anchor-interval must be at least 1 second")
    freshness = Freshness(anchor_interval_seconds=args.anchor_interval, grace_seconds=args.grace, as_of=args.as_of)
    source: DigestSource | None = None
    try:
        trust = _key_trust(args, from_bucket=bool(args.digest_bucket))
        if (args.digest_bucket or args.digests_dir) and not trust.anchored:
            return usage(no_trust_anchor_message())
        if args.digest_bucket:
            source = S3DigestSource(args.digest_bucket, endpoint_url=args.endpoint_url, region=_region(args))
            if args.save_digests:
                chain = choose_chain(source, args.chain_id)
                saved = save_digests(source, chain, source.records(chain), Path(args.save_digests))
                print(f"saved {saved} digest(s) of chain {chain} to {args.save_digests}", file=sys.stderr)
        elif args.digests_dir:
            source = DirectoryDigestSource(Path(args.digests_dir))
        progress = Progress("verifying", enabled=not (args.quiet or args.no_progress or args.json))
        try:
            report = verify_offline(
                url,
                source,
                chain_id=args.chain_id,
                workers=args.workers,
                progress=progress,
                trust=trust,
                freshness=freshness,
            )
        finally:
            progress.close()
    except (UsageError, SealedRowError) as exc:
        print(f"audit-trail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("\n".join(report.lines()))
    return EXIT_OK if report.valid else EXIT_INVALID


def cmd_keys_fingerprint(args: argparse.Namespace) -> int:
    """Print the fingerprint to publish for a signing key: SHA-256 of its DER public key, from KMS or a file."""
    from pathlib import Path

    from audit_trail.verify_digests import FINGERPRINTS_ENV, public_key_fingerprint

    try:
        if args.public_key:
            where = args.public_key
            material = Path(args.public_key).read_bytes()
        else:
            import boto3
            from botocore.config import Config

            where = f"KMS key {args.key_id}"
            # A key ARN names its region; an alias or bare id is looked up in this account and region.
            parts = args.key_id.split(":")
            region = parts[3] if args.key_id.startswith("arn:") and len(parts) > 3 else _region(args)
            config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
            kms = boto3.client("kms", region_name=region, endpoint_url=args.endpoint_url, config=config)
            material = bytes(kms.get_public_key(KeyId=args.key_id)["PublicKey"])
        fingerprint = public_key_fingerprint(material)
    except Exception as exc:
        print(f"audit-trail: no public key fingerprint for {args.key_id or args.public_key}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(fingerprint)
    print(
        f"SHA-256 of the DER public key of {where}: publish it where auditors read it, and configure verifiers"
        f" with {FINGERPRINTS_ENV}={fingerprint} (or --key-fingerprint {fingerprint})",
        file=sys.stderr,
    )
    return EXIT_OK


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


def _writer_transport(args: argparse.Namespace) -> PostgresTransport:
    return PostgresTransport(_database_url(args), role=args.database_role)


def cmd_writers_issue(args: argparse.Namespace) -> int:
    """Register a new writer token (only its SHA-256 is stored) and print it, once."""
    from audit_common.auth import parse_writer_token, writer_usage_key
    from audit_trail.local.tokens import issue_writer_token

    expires_at = datetime.now(UTC) + timedelta(days=args.days) if args.days else None
    transport = _writer_transport(args)
    try:
        token = issue_writer_token(transport, args.name, created_by=args.by, expires_at=expires_at)
    finally:
        transport.close()
    token_id, _ = parse_writer_token(token)
    print(token)
    print(
        f"writer token {token_id} for {args.name!r} issued by {args.by}"
        + (f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ", no expiry")
        + f"; shown once. Usage plan key: {writer_usage_key(token_id)} (docs/security.md)",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_writers_list(args: argparse.Namespace) -> int:
    """Every writer token with its state (never the secret: the database does not have it)."""
    transport = _writer_transport(args)
    try:
        tokens = transport.call("list_writer_tokens")
    finally:
        transport.close()
    if args.json:
        print(orjson.dumps(tokens, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    print(f"{'token id':<13} {'writer':<24} {'state':<8} {'issued':<21} {'by':<20} expires / revoked")
    for token in tokens:
        state = "active" if token["active"] else ("revoked" if token["revoked_at"] else "expired")
        ended = token["revoked_at"] and f"revoked {token['revoked_at'][:19]} by {token['revoked_by']}"
        print(
            f"{token['token_id']:<13} {token['name'][:24]:<24} {state:<8} {token['created_at'][:19]:<21} "
            f"{token['created_by'][:20]:<20} {ended or (token['expires_at'] or '-')[:19]}"
        )
    return EXIT_OK


def cmd_writers_revoke(args: argparse.Namespace) -> int:
    """Revoke a writer token: refused by the authorizer within its one-minute cache, kept on record."""
    transport = _writer_transport(args)
    try:
        revoked = transport.call("revoke_writer_token", {"p_token_id": args.token_id, "p_revoked_by": args.by})
    finally:
        transport.close()
    if revoked is None:
        print(f"audit-trail: no writer token {args.token_id!r}", file=sys.stderr)
        return EXIT_USAGE
    print(f"writer token {revoked['token_id']} ({revoked['name']}) revoked by {revoked['revoked_by']}")
    return EXIT_OK


def _add_verify_parser(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="prove the audit trail: every event, link and signed digest",
        description="Recompute every event's checksum from the stored columns and check every chain link and "
        "that the rows reach the chain head; with the digests (--digest-bucket, or --digests-dir) also check "
        "that each digest is the first, Object-Locked version of its object, that it is signed by a pinned key "
        "(--key-fingerprint, $AUDIT_SIGNING_KEY_FINGERPRINTS or --public-key: without one, digests are refused), "
        "the digest chain and its periods, each digest's Merkle root and chain hash against the events (which "
        "catches a consistent rewrite of the whole chain), and that the newest digest is fresh. Names the "
        "first failure (event seq or digest) and its kind; exits 1 on any failure, 2 on a usage error.",
    )
    verify.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL); only read")
    digest_source = verify.add_mutually_exclusive_group()
    digest_source.add_argument("--digest-bucket", metavar="BUCKET", help="S3 bucket the anchor writes digests to")
    digest_source.add_argument(
        "--digests-dir", metavar="DIR", help="digests downloaded before (a copy of the bucket, or --save-digests)"
    )
    verify.add_argument("--endpoint-url", help="S3 and KMS endpoint (moto server, local stack) for --digest-bucket")
    verify.add_argument("--region", help="AWS region of the bucket (default: $AWS_REGION, else us-east-1)")
    verify.add_argument(
        "--public-key",
        metavar="FILE",
        action="append",
        help="a PEM or DER public key you trust for the digests (repeatable); it pins the key by itself",
    )
    verify.add_argument(
        "--key-fingerprint",
        metavar="HEX",
        action="append",
        help="SHA-256 (hex) of a trusted signing key's DER public key, as the operator publishes it (repeatable;"
        " also read from $AUDIT_SIGNING_KEY_FINGERPRINTS, comma-separated). The key itself is taken from"
        " --public-key, KMS GetPublicKey or the PEM beside the digests, and used only if its fingerprint is pinned",
    )
    verify.add_argument(
        "--no-kms",
        action="store_true",
        help="do not ask KMS GetPublicKey for the key a digest names (with --digest-bucket)",
    )
    verify.add_argument(
        "--anchor-interval",
        metavar="SECONDS",
        type=_seconds,
        default=3600,
        help="how often the anchor runs (default 3600: the template's hourly schedule)",
    )
    verify.add_argument(
        "--grace",
        metavar="SECONDS",
        type=_seconds,
        default=900,
        help="how late a digest may be before the digests are stale (default 900)",
    )
    verify.add_argument(
        "--as-of",
        metavar="TIME",
        type=_as_of,
        help="judge freshness as of this RFC 3339 time (a copy taken then; default now, never before the newest"
        " event arrived)",
    )
    verify.add_argument("--chain-id", help="which chain's digests, when the bucket holds several")
    verify.add_argument(
        "--save-digests",
        metavar="DIR",
        help="also save each digest's first version, its signature (.sig) and the keys beside them to DIR,"
        " in the layout --digests-dir reads",
    )
    verify.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes checking events (default on chains of 200,000 events or more: one per CPU, or one per two"
        " CPUs when the database runs on this machine)",
    )
    verify.add_argument("--from-seq", type=int, default=1, help="check only from this seq (events only)")
    verify.add_argument("--to-seq", type=int, default=None, help="check only up to this seq (events only)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument("--no-progress", action="store_true", help="no progress bar")
    verify.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    verify.set_defaults(func=cmd_verify)


def _add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser(
        "keys", help="the digest signing key's fingerprint, to publish for verifiers"
    ).add_subparsers(dest="keys_command", required=True)
    fingerprint = keys.add_parser(
        "fingerprint",
        help="print the SHA-256 fingerprint of a signing key's public key",
        description="Print the SHA-256 (hex) of the DER SubjectPublicKeyInfo of a KMS signing key (GetPublicKey)"
        " or of a PEM/DER file: what the operator publishes and `audit-trail verify` pins, through"
        " --key-fingerprint or $AUDIT_SIGNING_KEY_FINGERPRINTS.",
    )
    which = fingerprint.add_mutually_exclusive_group(required=True)
    which.add_argument("--key-id", help="the KMS key: its ARN (as digests name it), or an alias or id in this account")
    which.add_argument("--public-key", metavar="FILE", help="a PEM or DER public key file")
    fingerprint.add_argument("--endpoint-url", help="KMS endpoint (moto server, local stack)")
    fingerprint.add_argument("--region", help="AWS region for an alias or bare id (default: $AWS_REGION)")
    fingerprint.set_defaults(func=cmd_keys_fingerprint)


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

    _add_verify_parser(commands)

    _add_keys_parser(commands)

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

    writers = commands.add_parser(
        "writers",
        help="issue, list and revoke the tokens applications send events with",
        description="Writer tokens (atw_<id>_<secret>) authenticate the applications that POST /events. The database "
        "keeps only each secret's SHA-256; a token is shown once, at issue. Revoked tokens stop working within the "
        "authorizer's one-minute cache. Issues and revocations are copied into the chain by the detect sweep.",
    ).add_subparsers(dest="writers_command", required=True)
    issue = writers.add_parser("issue", help="register a new writer token and print it (once)")
    issue.add_argument("--name", required=True, help="the writer (application) the token is for, e.g. files-app")
    issue.add_argument("--by", required=True, help="who issues it (recorded), e.g. admin:alice")
    issue.add_argument("--days", type=int, help="expire after this many days (default: never)")
    issue.set_defaults(func=cmd_writers_issue)
    listing = writers.add_parser("list", help="every writer token and its state")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_writers_list)
    revoke = writers.add_parser("revoke", help="revoke a writer token by its id (the 12 characters after atw_)")
    revoke.add_argument("token_id")
    revoke.add_argument("--by", required=True, help="who revokes it (recorded)")
    revoke.set_defaults(func=cmd_writers_revoke)
    for sub in (issue, listing, revoke):
        sub.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL)")
        sub.add_argument(
            "--database-role", default="service_role", help="role the SQL API is called as (default: service_role)"
        )

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
