"""The `local`, `invoke`, `token` and `demo` commands of the `audit-trail` CLI (registered by audit_trail.cli).

Heavy imports (moto, Powertools, the functions) happen inside the commands, so `audit-trail --help`
and the other commands stay fast.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from audit_trail.local.stack import DEFAULT_DATA_DIR

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM during startup: unwind through LocalStack.start(), which stops what already runs.
    raise SystemExit(128 + signum)


def _take_signals() -> None:
    """Ctrl-C raises KeyboardInterrupt and SIGTERM unwinds, from the first moment.

    A process started in the background by a non-interactive shell (CI scripts, `make ... &`,
    pytest-xdist workers) inherits SIGINT as *ignored*, and Python then installs no handler of its
    own: a Ctrl-C sent before `LocalStack.wait()` took the signals over was silently lost, and the
    stack ran on (seen as a flaky e2e test that hung in CI).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


def _quiet_pgserver() -> None:
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless noise.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")


def cmd_local(args: argparse.Namespace) -> int:
    """Run the local stack until Ctrl-C or SIGTERM."""
    from audit_trail.local.stack import LocalStack, PortInUse, StackConfig, started_message

    parameters = dict(item.split("=", 1) for item in args.parameter)
    config = StackConfig(
        database_url=args.database_url or os.environ.get("DATABASE_URL") or None,
        data_dir=Path(args.data_dir),
        template=Path(args.template) if args.template else None,
        host=args.host,
        port=args.port,
        moto_port=args.moto_port,
        log_level=args.log_level,
        parameters=parameters,
    )
    _take_signals()
    _quiet_pgserver()
    _say("audit-trail local: starting (database, migrations, AWS on moto, functions, webhook relay)")
    stack = LocalStack(config, log=(lambda line: None) if args.quiet else _say)
    try:
        stack.start()
    except KeyboardInterrupt:
        _say("interrupted during startup; stopped")
        return 130
    except PortInUse as exc:
        _say(f"audit-trail: {exc.strerror}")
        return EXIT_USAGE

    def announce() -> None:
        print(stack.banner(), flush=True)
        print(started_message(stack), flush=True)

    try:
        return stack.wait(on_ready=announce)
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C or SIGTERM in the instant between the state file saying "ready" and wait() taking the
        # signals over: stop as wait() would (left running, the API and relay threads keep the process alive).
        _say("received a signal; stopping")
        stack.stop()
        return EXIT_OK


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run one scheduled function in the running local stack; print its result."""
    from audit_trail.local.invoke import StackNotFound, find_api_url, invoke

    try:
        api_url = find_api_url(args.api_url, Path(args.data_dir))
    except StackNotFound as exc:
        print(f"audit-trail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    event: Any = orjson.loads(args.input) if args.input else None
    status, answer = invoke(api_url, args.name, event)
    sys.stdout.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
    if status == 404 and answer.get("error", {}).get("code") == "UNKNOWN_SCHEDULE":
        return EXIT_USAGE
    return EXIT_OK if status == 200 else EXIT_FAILED


def cmd_token(args: argparse.Namespace) -> int:
    """Print a token the running local stack accepts for a role (just the token, or JSON)."""
    from audit_common.errors import AuditError
    from audit_trail.local.state import read_state
    from audit_trail.local.tokens import TokenError, parse_role, token_for_state

    def refuse(message: str) -> int:
        print(f"audit-trail token: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        role = parse_role(args.role)
    except TokenError as exc:
        return refuse(str(exc))
    if args.ttl is not None and args.ttl <= 0:
        return refuse("--ttl must be a positive number of seconds")
    data_dir = Path(args.data_dir)
    state = read_state(data_dir)
    if state is None:
        return refuse(
            f"no local stack is running with data directory {data_dir} "
            "(start one with `audit-trail local`, or pass the --data-dir it was started with)"
        )
    try:
        issued = token_for_state(state, role, args.sub, email=args.email, ttl_seconds=args.ttl)
    except TokenError as exc:
        return refuse(f"{exc} (data directory {data_dir})")
    except AuditError as exc:
        return refuse(f"the database refused the writer token: {exc.message}")
    sys.stdout.write((orjson.dumps(issued.as_json()).decode() if args.json else issued.token) + "\n")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Play the demo scenario through a local stack."""
    from audit_trail.local.demo import DemoOptions, run_demo

    _quiet_pgserver()
    # SIGTERM unwinds like Ctrl-C: the child stack is stopped and the demo database dropped.
    _take_signals()

    options = DemoOptions(
        day_events=args.events,
        users=args.users,
        database_url=args.database_url or os.environ.get("DATABASE_URL") or None,
        data_dir=Path(args.data_dir),
        keep=args.keep,
        seed=args.seed,
        port=args.port,
        serve=args.serve,
    )
    return EXIT_OK if run_demo(options) else EXIT_FAILED


def register_local_commands(commands: Any) -> None:
    """Add `local`, `invoke`, `token` and `demo` to the CLI's subcommands."""
    local = commands.add_parser(
        "local",
        help="run the whole stack on this machine (Postgres, AWS on moto, the HTTP API)",
        description="Start PostgreSQL (--database-url/$DATABASE_URL, else an embedded one whose data stays in "
        "the data directory), apply the migrations, start a moto server (S3, KMS, SNS, EventBridge, Secrets "
        "Manager, SQS) with the resources template.yaml defines, and serve every API route of template.yaml on "
        "http://127.0.0.1:3000 by calling the real handlers with API Gateway proxy events. The database "
        "webhook's pg_notify fallback is relayed to POST /webhooks/supabase. Scheduled functions run on demand "
        "with `audit-trail invoke NAME`. Ctrl-C (or SIGTERM) stops everything. The template's Lambda authorizers "
        "run as API Gateway would, with local secrets: `audit-trail token --role auditor` prints a token the "
        "stack accepts. IAM (SigV4) is not checked locally: bind it to 127.0.0.1 only.",
    )
    local.add_argument("--database-url", help="PostgreSQL URL (default: $DATABASE_URL, else embedded)")
    local.add_argument(
        "--data-dir",
        default=str(DEFAULT_DATA_DIR),
        help=f"embedded database data and the stack's state file (default: {DEFAULT_DATA_DIR}/)",
    )
    local.add_argument("--template", help="SAM template (default: template.yaml here or in a parent directory)")
    local.add_argument("--host", default="127.0.0.1", help="address of the API (default 127.0.0.1)")
    local.add_argument("--port", type=int, default=3000, help="port of the API (default 3000; 0: any free port)")
    local.add_argument("--moto-port", type=int, default=0, help="port of the moto server (default: any free port)")
    local.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter (repeatable), e.g. --parameter EnvironmentName=local",
    )
    local.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the functions' log level (default WARNING)",
    )
    local.add_argument("--quiet", action="store_true", help="no request log on stderr")
    local.set_defaults(func=cmd_local)

    invoke = commands.add_parser(
        "invoke",
        help="run a scheduled function once in the running local stack (anchor, reports, retention, sweep)",
        description="Run a scheduled function of template.yaml once, with its schedule's Input, inside the "
        "running `audit-trail local` (found by --api-url, $AUDIT_LOCAL_API_URL, or the state file in "
        "--data-dir). NAME is the schedule's input action when unique (sweep, retention, anchor), else its name "
        "(monthly-sox, ...), or the function's name (reports: its first schedule). Unknown names list the "
        "known ones. Prints the function's result as JSON; exits 1 if it failed.",
    )
    invoke.add_argument("name", metavar="NAME", help="e.g. anchor, reports, retention, sweep")
    invoke.add_argument("--input", help="JSON event to send instead of the schedule's Input")
    invoke.add_argument("--api-url", help="the local stack's API URL (default: from its state file)")
    invoke.add_argument(
        "--data-dir", default=str(DEFAULT_DATA_DIR), help=f"the stack's data directory (default: {DEFAULT_DATA_DIR}/)"
    )
    invoke.set_defaults(func=cmd_invoke)

    token = commands.add_parser(
        "token",
        help="print a token the running local stack accepts (writer, user, auditor, admin)",
        description="Mint a bearer token for the running `audit-trail local` (found through the state file in "
        "--data-dir). user, auditor and admin get a Supabase-shaped access token (HS256 JWT: sub, role "
        "'authenticated', aud 'authenticated', exp, iat, email, app_metadata.audit_role) signed with the stack's "
        "local JWT secret; writer gets an atw_ writer token registered (hashed) in the stack's database under the "
        "name --sub. Prints only the token, so TOKEN=$(audit-trail token --role auditor) works; --json prints "
        "token, role, sub and expires_at. Exits 2 when no stack runs there or it has no JWT secret.",
        epilog='example: curl -H "Authorization: Bearer $(audit-trail token --role auditor)" '
        "http://127.0.0.1:3000/alerts",
    )
    token.add_argument(
        "--role", required=True, metavar="ROLE", help="writer (POST /events), user (own events), auditor or admin"
    )
    token.add_argument(
        "--sub",
        metavar="ID",
        help="the token's subject: a user id for user/auditor/admin (default: a stable UUID per role), the "
        "writer's name for writer (default: local-writer)",
    )
    token.add_argument("--email", help="the email claim of an access token")
    token.add_argument(
        "--ttl",
        type=int,
        metavar="SECONDS",
        help=f"lifetime (default: {3600} s for access tokens; writer tokens never expire unless given)",
    )
    token.add_argument(
        "--data-dir", default=str(DEFAULT_DATA_DIR), help=f"the stack's data directory (default: {DEFAULT_DATA_DIR}/)"
    )
    token.add_argument("--json", action="store_true", help='print {"token", "role", "sub", "expires_at"}')
    token.set_defaults(func=cmd_token)

    demo = commands.add_parser(
        "demo",
        help="play a working day, three attacks and a tamper through a local stack",
        description="Start a local stack on free ports with a fresh database, then, only over HTTP and the "
        "CLI: a working day of a file-management app, a password-spraying attack, an insider bulk download "
        "and a privilege escalation; the alerts raised with their risk scores; a compliance report and its "
        "presigned link; the anchor; `audit-trail verify`; a tampered row and verify catching it; then a "
        "consistent rewrite of the chain that only the signed digest exposes. Functions that are not in "
        "template.yaml (reports, anchor) are skipped.",
    )
    demo.add_argument("--events", type=int, default=3000, help="events in the working day (default 3000)")
    demo.add_argument("--users", type=int, default=40, help="people at work (default 40)")
    demo.add_argument(
        "--database-url",
        help="PostgreSQL server to create the demo database on (default: $DATABASE_URL, else embedded)",
    )
    demo.add_argument(
        "--data-dir",
        default=str(DEFAULT_DATA_DIR / "demo"),
        help=f"embedded database data and the stack's log (default: {DEFAULT_DATA_DIR}/demo/)",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo database afterwards")
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep the stack running after the story (dashboard, API, invoke) until Ctrl-C",
    )
    demo.add_argument("--port", type=int, default=0, help="port of the stack's API (default: any free port)")
    demo.add_argument("--seed", type=int, default=20261127, help="random seed of the scenario")
    demo.set_defaults(func=cmd_demo)
