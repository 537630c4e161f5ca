"""The local stack: Postgres, moto, the functions behind an HTTP API, the webhook relay, in one process.

    with LocalStack(database_url=url, port=0) as stack:   # port 0: any free port
        httpx.post(f"{stack.api_url}/events", json=event)

Start order: database (embedded unless a URL is given) and migrations; moto and the template's
resources; the functions' environment; the HTTP API; the detection webhook pointed at pg_notify
and the relay. `stop()` undoes it in reverse, and restores the environment it changed. The functions
read their settings from the process environment, so one process runs one stack at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final

import psycopg
from psycopg import sql

from audit_trail.local.api import ApiServer, LocalApi
from audit_trail.local.aws import MotoServer, Provisioned, client_env, create_secret, provision
from audit_trail.local.relay import CHANNEL, WebhookRelay
from audit_trail.local.runtime import Runtime, configure_function_logs, reset_function_state
from audit_trail.local.state import read_state, redact_url, state_path, verify_env, write_state
from audit_trail.local.template import STACK_NAME, Template, find_template

DEFAULT_DATA_DIR: Final = Path(".audit-trail")
EMBEDDED_DATABASE: Final = "audit_trail"
NOT_LOCAL_SECRETS: Final = frozenset({"DatabaseSecretArn", "SupabaseKeySecretArn"})
Log = Callable[[str], None]
_logger = logging.getLogger("audit_trail.local")


@dataclass
class StackConfig:
    """How to run the stack. `database_url=None` starts an embedded PostgreSQL in `data_dir`."""

    database_url: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    template: Path | None = None
    host: str = "127.0.0.1"
    port: int = 3000
    moto_port: int = 0
    log_level: str = "WARNING"
    parameters: Mapping[str, str] = field(default_factory=dict)
    write_state: bool = True


class LocalStack:
    """Everything `audit-trail local` runs, as an object: start, use `api_url`, stop."""

    def __init__(self, config: StackConfig | None = None, /, *, log: Log | None = None, **options: Any) -> None:
        self.config = config or StackConfig(**options)
        self._log: Log = log or _logger.info
        self.api_url = ""
        self.started_at = ""
        self.database_url = ""
        self.moto_endpoint = ""
        self.webhook_secret = ""
        self.local_secrets: dict[str, str] = {}
        """Values of the secrets created for the template's `*SecretArn` parameters, by parameter name."""
        self.provisioned = Provisioned()
        self.migrations_applied: list[str] = []
        self.template: Template | None = None
        self.runtime: Runtime | None = None
        self._moto: MotoServer | None = None
        self._api: ApiServer | None = None
        self._relay: WebhookRelay | None = None
        self._embedded_dir: Path | None = None
        self._saved_env: dict[str, str | None] = {}
        self._stopping = threading.Event()
        self._startup_sweep: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start everything; on failure, stop what already runs and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        self.started_at = datetime.now(UTC).isoformat()
        # Fail before touching the database when a port is taken (migrating it would be a side effect).
        _check_free(config.host, config.port)
        _check_free("127.0.0.1", config.moto_port)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = self._database()
        from audit_trail.migrations import migrate

        self.migrations_applied = [f"{m.version}_{m.name}" for m in migrate(self.database_url)]

        self.template = Template(config.template or find_template(), config.parameters)
        self._moto = MotoServer(config.moto_port)
        self.moto_endpoint = self._moto.start()
        self._set_env(client_env(self.moto_endpoint))
        self._create_local_secrets()
        self.provisioned = provision(self.template, self.moto_endpoint)
        # The stack's own process (in-process callers of `audit-trail verify`) trusts its keys as configured.
        self._set_env(verify_env({"signing_key_fingerprints": self.provisioned.key_fingerprints}))

        self.runtime = Runtime(self.template)
        self._set_env(self._function_env(self.runtime))
        reset_function_state(self.runtime)
        configure_function_logs(config.log_level)

        self._api = ApiServer(LocalApi(self.runtime, self._log, self.status), config.host, config.port)
        self.api_url = self._api.url
        self._api.start()

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "select audit.configure_detection_webhook(%s, %s)",
                (f"{self.api_url}/webhooks/supabase", self.webhook_secret),
            )
        self._relay = WebhookRelay(
            self.database_url,
            f"{self.api_url}/webhooks/supabase",
            self.webhook_secret,
            self._log,
            on_reconnect=self._sweep_after_reconnect,
        )
        self._relay.start()
        # Events stored while no stack was listening (a restart on a kept database) were announced to
        # nobody: the sweep analyses them, in the background so that startup does not wait for it.
        # Its code is imported here, not in the thread: an import running in another thread when a
        # signal interrupts the main thread can leave importlib's locks held, and the stack hanging.
        self._warm_sweep()
        self._startup_sweep = threading.Thread(target=self._sweep, args=("startup",), name="sweep", daemon=True)
        self._startup_sweep.start()
        if config.write_state:
            self._write_state()

    def stop(self) -> None:
        """Stop the relay, the API, moto and the embedded database handle; restore the environment."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.config.write_state:
            path = state_path(self.config.data_dir)
            state = read_state(self.config.data_dir)
            if state is not None and state.get("pid") == os.getpid():
                path.unlink(missing_ok=True)
        for part in (self._relay, self._api, self._moto):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # keep stopping the rest; report what failed
                    self._log(f"stopping {type(part).__name__} failed")
        self._relay = self._api = self._moto = None
        if self._startup_sweep is not None:
            self._startup_sweep.join(timeout=30)
        if self.runtime is not None:
            reset_function_state(self.runtime)
        self._restore_env()
        if self._embedded_dir is not None:
            from audit_trail.postgres import release_embedded_server

            release_embedded_server(self._embedded_dir)
            self._embedded_dir = None

    def pause_api(self) -> None:
        """Stop serving HTTP (clients get connection refused), as an outage would; the rest keeps running."""
        if self._api is not None:
            self._api.stop()

    def resume_api(self) -> None:
        """Serve the API again on the same address after `pause_api`."""
        if self._api is None:
            raise RuntimeError("the stack is not running")
        port = int(self.api_url.rsplit(":", 1)[1])
        self._api = ApiServer(self._api.app, self.config.host, port)
        self._api.start()

    def wait(self, on_ready: Callable[[], None] | None = None) -> int:
        """Block until SIGINT or SIGTERM (main thread only), then stop; the exit status to return.

        `on_ready` runs once the signals are taken over (printing the banner, say), so a signal that
        arrives meanwhile stops the stack the same orderly way instead of interrupting it mid-work.
        """
        received: list[int] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            received.append(signum)
            stop.set()

        stop = threading.Event()
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if on_ready is not None:
                on_ready()
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self._log(f"received {signal.Signals(received[0]).name}; stopping")
        self.stop()
        return 0

    # -- parts -------------------------------------------------------------------------------------

    def _create_local_secrets(self) -> None:
        """A random value in Secrets Manager for every secret the template takes by ARN (webhook, JWT, ...).

        As in AWS, the parameter holds the ARN and the function reads the value at run time. The
        database's secrets are left out: the stack hands the functions its database URL directly.
        """
        assert self.template is not None
        for name, value in self.template.parameters.items():
            if not name.endswith("SecretArn") or value or name in NOT_LOCAL_SECRETS or name in self.config.parameters:
                continue
            secret = secrets.token_urlsafe(32)
            words = re.sub(r"(?<!^)(?=[A-Z])", "-", name.removesuffix("Arn")).lower()
            self.template.parameters[name] = create_secret(self.moto_endpoint, f"{STACK_NAME}/{words}", secret)
            self.local_secrets[name] = secret
        self.webhook_secret = self.local_secrets.get("WebhookSecretArn") or secrets.token_urlsafe(32)
        if "WebhookSecretArn" not in self.local_secrets:
            self._set_env({"AUDIT_WEBHOOK_SECRET": self.webhook_secret})

    def _database(self) -> str:
        if self.config.database_url:
            return self.config.database_url
        from audit_trail.postgres import database_url, embedded_server_url

        self._embedded_dir = (self.config.data_dir / "pgdata").resolve()
        admin = embedded_server_url(self._embedded_dir)
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DATABASE,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(EMBEDDED_DATABASE)))
        return database_url(admin, EMBEDDED_DATABASE)

    def _function_env(self, runtime: Runtime) -> dict[str, str]:
        """The union of the functions' environments, plus what only the local stack needs.

        One process runs every function, so they share one environment: a name two functions set to
        different values would be ambiguous, and is reported.
        """
        merged: dict[str, str] = {}
        for function in runtime.functions.values():
            for name, value in function.environment.items():
                if name == "POWERTOOLS_SERVICE_NAME":
                    continue
                if name in merged and merged[name] != value:
                    self._log(f"warning: {name} differs between functions; using {merged[name]!r}")
                    continue
                merged[name] = value
        merged.update(
            {
                "AUDIT_DATABASE_URL": self.database_url,
                # The functions run as Supabase's service_role, as the deployed transport does.
                "AUDIT_DATABASE_ROLE": "service_role",
                "POWERTOOLS_SERVICE_NAME": "audit-trail-local",
                "POWERTOOLS_TRACE_DISABLED": "true",
                # EMF metrics have no CloudWatch to go to here; without this they flood the terminal.
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": self.config.log_level,
            }
        )
        return merged

    def _set_env(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def _sweep_after_reconnect(self) -> None:
        self._sweep("reconnect")

    def _warm_sweep(self) -> None:
        if self.runtime is None:
            return
        with contextlib.suppress(LookupError):  # a template without a sweep schedule
            self.runtime.handler(self.runtime.schedule("sweep").function)

    def _sweep(self, why: str) -> None:
        """Run the detection sweep once, if the template has one; never raise (it is a safety net)."""
        runtime = self.runtime
        if runtime is None:
            return
        try:
            schedule = runtime.schedule("sweep")
        except LookupError:
            return
        try:
            result = runtime.invoke(schedule.function, schedule.input)
        except Exception as exc:
            self._log(f"detection sweep ({why}) failed: {exc}")
            return
        analysed = result.get("analysed", 0) if isinstance(result, dict) else 0
        if analysed or why != "startup":
            self._log(f"detection sweep ({why}): {analysed} event(s) the webhook had not delivered analysed")

    def _write_state(self) -> None:
        write_state(
            self.config.data_dir,
            {
                **self.status(),
                "database_url": self.database_url,
                "secrets": self.local_secrets,
                "jwt_issuer": self.jwt_issuer,
            },
        )

    # -- tokens ------------------------------------------------------------------------------------

    @property
    def jwt_secret(self) -> str | None:
        """The local JWT secret the authorizer verifies access tokens with (None until the template has one)."""
        from audit_trail.local.tokens import JWT_SECRET_PARAMETER

        return self.local_secrets.get(JWT_SECRET_PARAMETER)

    @property
    def jwt_issuer(self) -> str | None:
        """The issuer the functions require in access tokens, when the template sets one."""
        if self.runtime is None:
            return None
        issuers = sorted({f.environment.get("AUDIT_JWT_ISSUER") or "" for f in self.runtime.functions.values()} - {""})
        return issuers[0] if issuers else None

    def token(
        self,
        role: str,
        subject: str | None = None,
        *,
        email: str | None = None,
        ttl_seconds: int | None = None,
        now: datetime | None = None,
    ) -> str:
        """A bearer token this stack accepts for `role` (writer, user, auditor or admin).

        A writer token is registered in the stack's database under the name `subject` (it never
        expires unless `ttl_seconds` is given); the others are access tokens signed with the stack's
        JWT secret, for the subject `subject` (a stable UUID per role by default). `now` in the past
        mints a token that has already expired. NoJwtSecret (a TokenError) when the stack has none.
        """
        from audit_trail.local.tokens import token_for_state

        state = {"database_url": self.database_url, "secrets": self.local_secrets, "jwt_issuer": self.jwt_issuer}
        return token_for_state(state, role, subject, email=email, ttl_seconds=ttl_seconds, now=now).token

    # -- describing --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What runs where (no secrets): the admin status route and the startup log line."""
        runtime = self.runtime
        return {
            "event": "local_stack_ready",
            "pid": os.getpid(),
            "started_at": self.started_at,
            "api_url": self.api_url,
            "database": redact_url(self.database_url),
            "embedded_database": self._embedded_dir is not None,
            "migrations_applied": self.migrations_applied,
            "moto_endpoint": self.moto_endpoint,
            "data_dir": str(self.config.data_dir.resolve()),
            "template": str(self.template.path) if self.template else None,
            "routes": [
                {
                    "method": r.method,
                    "path": r.path,
                    "function": r.function,
                    "authorizer": r.authorizer.function if r.authorizer else None,
                }
                for r in self.template.routes()
            ]
            if self.template
            else [],
            "schedules": [
                {"name": name, "function": s.function, "expression": s.expression, "input": s.input}
                for name, s in zip(runtime.schedule_names(), runtime.schedules, strict=True)
            ]
            if runtime
            else [],
            "buckets": self.provisioned.buckets,
            "object_locked_buckets": sorted(self.provisioned.object_locked),
            "event_buses": self.provisioned.buses,
            "topics": self.provisioned.topics,
            "queues": self.provisioned.queues,
            "kms_keys": self.provisioned.keys,
            # Public, as an operator publishes them: `audit-trail verify` pins the digest signing key by these.
            "signing_key_fingerprints": self.provisioned.key_fingerprints,
            "webhook": f"pg_notify channel {CHANNEL} -> POST {self.api_url}/webhooks/supabase",
            "relay": {
                "relayed": self._relay.relayed if self._relay else 0,
                "failed": self._relay.failed if self._relay else 0,
            },
        }

    def banner(self) -> str:
        """Readable startup lines: what runs where."""
        status = self.status()
        lines = [
            "audit-trail local stack is running (Ctrl-C stops everything)",
            f"  API         {self.api_url}  ({len(status['routes'])} routes from {Path(status['template']).name})",
            f"  database    {status['database']}"
            + (
                " (embedded, data in " + str(self.config.data_dir / "pgdata") + ")"
                if status["embedded_database"]
                else ""
            )
            + (f"; {len(self.migrations_applied)} migration(s) applied now" if self.migrations_applied else ""),
            f"  AWS (moto)  {self.moto_endpoint}  (S3, KMS, SNS, EventBridge, Secrets Manager, SQS)",
        ]
        for logical_id, name in self.provisioned.buckets.items():
            lock = ", Object Lock" if logical_id in self.provisioned.object_locked else ""
            lines.append(f"  bucket      {name}  ({logical_id}{lock})")
        for logical_id, name in self.provisioned.buses.items():
            lines.append(f"  event bus   {name}  ({logical_id})")
        for logical_id, arn in self.provisioned.topics.items():
            lines.append(f"  topic       {arn}  ({logical_id})")
        for logical_id, key in self.provisioned.keys.items():
            lines.append(f"  KMS key     {key}  ({logical_id})")
            if logical_id in self.provisioned.key_fingerprints:
                fingerprint = self.provisioned.key_fingerprints[logical_id]
                lines.append(
                    f"              public key SHA-256 {fingerprint}  (verify pins it: AUDIT_SIGNING_KEY_FINGERPRINTS)"
                )
        lines.append(f"  webhook     {status['webhook']}")
        for schedule in status["schedules"]:
            lines.append(
                f"  schedule    {schedule['name']:<10} {schedule['expression']:<22} "
                f"audit-trail invoke {schedule['name']}"
            )
        lines.append("  routes")
        for route in status["routes"]:
            auth = f"  (authorizer {route['authorizer']})" if route["authorizer"] else ""
            lines.append(f"    {route['method']:<6} {route['path']:<32} {route['function']}{auth}")
        lines.extend(self.token_hints())
        return "\n".join(lines)

    def token_command(self, role: str) -> str:
        """The `audit-trail token` command line that mints a token for this stack."""
        data_dir = "" if self.config.data_dir == DEFAULT_DATA_DIR else f" --data-dir {self.config.data_dir}"
        return f"audit-trail token --role {role}{data_dir}"

    def token_hints(self) -> list[str]:
        """Banner lines saying how to get a token and where the dashboard is."""
        paths = {route.path for route in self.template.routes()} if self.template else set()
        if self.jwt_secret is None:
            lines = [
                "  tokens      this template checks no access tokens yet (no JwtSecretArn): call the API without one",
                f"              writer tokens: {self.token_command('writer')}",
            ]
            if "/dashboard" in paths:
                lines.append(f"  dashboard   {self.api_url}/dashboard")
            return lines
        lines = [
            f"  tokens      {self.token_command('auditor')}   (roles: writer, user, auditor, admin)",
            f'              curl -H "Authorization: Bearer $({self.token_command("auditor")})" {self.api_url}/alerts',
        ]
        if "/dashboard" in paths:
            lines.append(
                f"  dashboard   {self.api_url}/dashboard  (sign in with the token of: {self.token_command('auditor')})"
            )
        return lines


class PortInUse(OSError):
    """The API or moto port is taken."""


def _check_free(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(exc.errno, f"{host}:{port} is already in use: pass another --port/--moto-port") from exc


def started_message(stack: LocalStack) -> str:
    """The structured (JSON) startup log line."""
    return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **stack.status()})
