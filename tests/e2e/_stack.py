"""Start `audit-trail local` as a child process and look at the processes it leaves (e2e helpers)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from audit_common.access import ROUTE_ROLES
from audit_common.auth import AuditRole
from audit_trail.local.state import read_state, verify_env
from audit_trail.local.tokens import NoJwtSecret, token_for_state
from tests.support.events import app_event_count

STARTUP_TIMEOUT = 90.0


def caller_event_count(database_url: str) -> int:
    """Events in the chain that callers sent (the trail's records of itself left out)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return app_event_count(conn)


def chain_length(database_url: str) -> int:
    """Every event in the chain, the API's own records included."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("select count(*) from audit.audit_events").fetchone()
    return int(row[0]) if row else 0


def cli_executable() -> list[str]:
    """The installed `audit-trail` entry point beside this interpreter (else `python -m audit_trail.cli`)."""
    script = Path(sys.executable).parent / "audit-trail"
    return [str(script)] if script.exists() else [sys.executable, "-m", "audit_trail.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would; output captured."""
    return subprocess.run(
        [*cli_executable(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (Linux /proc)."""
    found: set[int] = set()
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return found
    for task in tasks.iterdir():
        try:
            children = {int(child) for child in (task / "children").read_text().split()}
        except OSError:
            continue
        for child in children:
            found |= {child, *descendants(child)}
    return found


def alive(pid: int) -> bool:
    """Whether a process (not a zombie) with this pid exists."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


# Who calls a route in the tests: the writer writes; for reads, the widest reader (an auditor sees every
# user's events), then admin (erasure, and a subject's export on someone's behalf), then the user.
ROLE_PREFERENCE = (AuditRole.WRITER, AuditRole.AUDITOR, AuditRole.ADMIN, AuditRole.USER)
_ROUTE_PATTERNS = [
    (method, resource, re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(resource)) + "$"))
    for method, resource in ROUTE_ROLES
]


def route_of(method: str, path: str) -> tuple[str, str] | None:
    """The (method, resource) of ROUTE_ROLES a request path belongs to; None for routes without the authorizer."""
    matches = [
        (method.upper(), resource)
        for route_method, resource, pattern in _ROUTE_PATTERNS
        if route_method == method.upper() and pattern.match(path)
    ]
    # Literal segments beat parameters, as in API Gateway.
    return max(matches, key=lambda route: route[1].count("/") - route[1].count("{"), default=None)


def role_for_route(method: str, resource: str) -> AuditRole | None:
    """A role allowed on the route (ROUTE_ROLES), in ROLE_PREFERENCE order; None: the route takes no token."""
    allowed = ROUTE_ROLES.get((method.upper(), resource), frozenset())
    return next((role for role in ROLE_PREFERENCE if role in allowed), None)


@dataclass
class StackTokens:
    """Tokens of one local stack, minted on first use per role (a writer token is registered once)."""

    state: Mapping[str, Any]
    _minted: dict[tuple[AuditRole, str | None], str | None] = field(default_factory=dict)

    def for_role(self, role: AuditRole | str, subject: str | None = None) -> str | None:
        """A token for `role`; None for an access token when the stack checks none (no JWT secret)."""
        key = (AuditRole(role), subject)
        if key not in self._minted:
            try:
                self._minted[key] = token_for_state(self.state, key[0], subject).token
            except NoJwtSecret:
                self._minted[key] = None
        return self._minted[key]

    def for_route(self, method: str, resource: str) -> str | None:
        """The token of a role allowed on `method resource` (None for the webhook and the dashboard)."""
        role = role_for_route(method, resource)
        return self.for_role(role) if role is not None else None

    def headers(self, role: AuditRole | str, subject: str | None = None) -> dict[str, str]:
        """`Authorization` for `role` (empty when the stack checks no access tokens)."""
        token = self.for_role(role, subject)
        return {"Authorization": f"Bearer {token}"} if token else {}


class RouteAuth(httpx.Auth):
    """Sends, per request, the token of a role the route allows; a request with its own Authorization keeps it."""

    def __init__(self, tokens: StackTokens) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "Authorization" not in request.headers:
            route = route_of(request.method, request.url.path)
            token = self.tokens.for_route(*route) if route else None
            if token:
                request.headers["Authorization"] = f"Bearer {token}"
        yield request


@dataclass
class RunningStack:
    """A running `audit-trail local` child process and what it reported."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    database_url: str
    state: dict[str, Any]
    _tokens: StackTokens | None = None

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP API."""
        return str(self.state["api_url"])

    @property
    def aws_env(self) -> dict[str, str]:
        """Environment that points boto3 (and the CLI) at the stack's moto server, and pins the stack's
        digest signing key by the fingerprint it publishes (AUDIT_SIGNING_KEY_FINGERPRINTS)."""
        return {
            "AWS_ENDPOINT_URL": str(self.state["moto_endpoint"]),
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            **verify_env(self.state),
        }

    @property
    def tokens(self) -> StackTokens:
        """Tokens this stack accepts, per role (minted on first use)."""
        if self._tokens is None:
            self._tokens = StackTokens(self.state)
        return self._tokens

    @property
    def checks_tokens(self) -> bool:
        """Whether the stack's template has the JWT authorizer (a local JWT secret)."""
        return bool((self.state.get("secrets") or {}).get("JwtSecretArn"))

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for the API that sends each route a token of a role allowed there."""
        return httpx.Client(base_url=self.api_url, auth=RouteAuth(self.tokens), **{"timeout": 60.0, **options})

    def log_when(self, text: str, timeout: float = 30.0) -> str:
        """The log once it contains `text` (the banner follows the state file by a moment), else as it is."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return log

    def log(self) -> str:
        """What the stack printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGINT, timeout: float = 20) -> int:
        """Send a signal and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=timeout)
        return self.process.returncode


def start_stack(database_url: str | None, data_dir: Path, *extra: str) -> RunningStack:
    """Start `audit-trail local` on free ports and wait until its state file says it is ready."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "stack.log"
    args = [*cli_executable(), "local", "--port", "0", "--moto-port", "0", "--data-dir", str(data_dir), *extra]
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    if database_url:
        args += ["--database-url", database_url]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"audit-trail local exited with {process.returncode}:\n{log_path.read_text()}")
        state = read_state(data_dir)
        if state is not None and state.get("pid") == process.pid:
            return RunningStack(process, data_dir, log_path, database_url or "", state)
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"audit-trail local not ready in {STARTUP_TIMEOUT:.0f} s:\n{log_path.read_text()}")
