"""`audit-trail demo`: the product end to end, through a local stack, as a user would drive it.

The demo starts `audit-trail local` as a child process (free ports, a fresh database), then talks
to it only over HTTP and through the CLI: events in through `POST /events`, detection through the
relayed database webhook, alerts from `GET /alerts`, a compliance report from `POST /reports` and its
presigned link, the anchor through `audit-trail invoke anchor`, `audit-trail verify`; finally it
edits one row as a database superuser would and shows verify naming it.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
import psycopg

from audit_trail.local.scenario import Chapter, batches, working_day
from audit_trail.local.state import read_state, redact_url, verify_env
from audit_trail.local.tokens import NoJwtSecret, bearer, token_for_state

STARTUP_TIMEOUT = 120.0
DETECTION_TIMEOUT = 120.0
DEMO_WRITER = "files-web"
DEMO_AUDITOR_EMAIL = "auditor@files.example"


@dataclass
class DemoOptions:
    """What to play and where."""

    day_events: int = 3000
    users: int = 40
    database_url: str | None = None
    """A PostgreSQL server to create the demo database on; None: an embedded one in `data_dir`."""
    data_dir: Path = Path(".audit-trail/demo")
    keep: bool = False
    seed: int = 20261127
    port: int = 0
    """Port of the stack's API (0: any free port)."""
    serve: bool = False
    """Keep the stack running after the story, until Ctrl-C."""
    out: TextIO = sys.stdout


class DemoFailed(RuntimeError):
    """A step did not do what the demo promised."""


class Show:
    """Readable output: numbered steps, indented facts, a progress line where the demo waits."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.step_no = 0
        self._last_progress = 0.0

    def step(self, title: str) -> None:
        """A new numbered step."""
        self.step_no += 1
        self.line(f"\n{self.step_no}. {title}")

    def line(self, text: str = "") -> None:
        """One line of output."""
        self.out.write(text + "\n")
        self.out.flush()

    def fact(self, text: str) -> None:
        """An indented detail."""
        self.line(f"   {text}")

    def progress(self, label: str, done: int, total: int) -> None:
        """A progress bar on a terminal; a line every few seconds elsewhere."""
        now = time.monotonic()
        if not self.tty and done < total and now - self._last_progress < 3:
            return
        self._last_progress = now
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 30)
        text = f"   {label} [{bar:<30}] {done:,}/{total:,}"
        if self.tty:
            self.out.write("\r" + text + ("\n" if done >= total else ""))
            self.out.flush()
        else:
            self.line(text)


@contextmanager
def demo_database(options: DemoOptions) -> Iterator[str]:
    """A fresh database on the given server or an embedded one; dropped afterwards unless kept."""
    from audit_trail.postgres import create_database, drop_database, embedded_server_url, release_embedded_server

    embedded = options.database_url is None
    pgdata = (options.data_dir / "pgdata").resolve()
    admin = options.database_url or embedded_server_url(pgdata)
    name = f"audit_demo_{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        if not options.keep:
            drop_database(admin, name)
        if embedded:
            release_embedded_server(pgdata)


class StackProcess:
    """`audit-trail local` as a child process, found through the state file it writes when ready."""

    def __init__(self, database_url: str, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir / "stack"
        self.log_path = data_dir / "local-stack.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "audit_trail.cli", "local",
            "--port", str(port), "--database-url", database_url, "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own CLI, by the running interpreter
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.state: dict[str, Any] = {}

    def wait_ready(self, show: Show) -> dict[str, Any]:
        """Block until the stack reports itself ready; raise with its log if it dies."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoFailed(f"the local stack exited ({self.process.returncode}):\n{self.log_tail()}")
            state = read_state(self.data_dir)
            if state is not None and state.get("pid") == self.process.pid:
                self.state = state
                return state
            time.sleep(0.2)
        raise DemoFailed(f"the local stack was not ready within {STARTUP_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The end of the stack's log."""
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGINT (as Ctrl-C would), then wait; kill only if it does not stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `audit-trail` CLI as a user would (same interpreter), capturing its output."""
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "audit_trail.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


@dataclass(frozen=True)
class DemoTokens:
    """The credentials the demo uses, as the real callers would: the app writes, an auditor reads.

    `auditor` is None when the stack checks no access tokens (its template has no JWT secret).
    """

    writer: str
    auditor: str | None

    @classmethod
    def for_stack(cls, state: dict[str, Any]) -> DemoTokens:
        """A writer token registered for the demo's app and an auditor's access token."""
        writer = token_for_state(state, "writer", DEMO_WRITER).token
        try:
            auditor: str | None = token_for_state(state, "auditor", email=DEMO_AUDITOR_EMAIL).token
        except NoJwtSecret:
            auditor = None
        return cls(writer, auditor)

    @property
    def write(self) -> dict[str, str]:
        """Headers of `POST /events`."""
        return bearer(self.writer)

    @property
    def read(self) -> dict[str, str]:
        """Headers of the auditor's calls (alerts, reports)."""
        return bearer(self.auditor)


class Demo:
    """The story, step by step."""

    def __init__(self, options: DemoOptions, show: Show) -> None:
        self.options = options
        self.show = show
        self.tokens = DemoTokens("", None)

    def run(self, database_url: str) -> bool:
        show = self.show
        show.step("Starting the local stack: audit-trail local (PostgreSQL, AWS on moto, the API)")
        stack = StackProcess(database_url, self.options.data_dir, self.options.port)
        try:
            state = stack.wait_ready(show)
            show.fact(f"API       {state['api_url']}  ({len(state['routes'])} routes from template.yaml)")
            show.fact(f"database  {state['database']}")
            show.fact(f"AWS       {state['moto_endpoint']} (moto); buckets: {', '.join(state['buckets'].values())}")
            show.fact(f"log       {stack.log_path}")
            self.tokens = DemoTokens.for_stack(state)
            show.fact(
                f"tokens    a writer token for the app ({DEMO_WRITER}), "
                + ("an auditor's access token for reading" if self.tokens.auditor else "reads need none here")
            )
            with httpx.Client(base_url=state["api_url"], timeout=120.0) as api:
                ok = self._story(api, state, database_url)
            if self.options.serve:
                self._serve(state)
            elif ok:
                show.line("\nTo look around afterwards (the dashboard, the API): audit-trail demo --serve")
            return ok
        except (DemoFailed, httpx.HTTPError) as exc:
            show.line(f"\nDEMO FAILED: {exc}")
            show.line(f"--- end of the stack's log ({stack.log_path}) ---\n{stack.log_tail()}")
            return False
        finally:
            code = stack.stop()
            show.line(f"\nlocal stack stopped (exit status {code})")

    def _serve(self, state: dict[str, Any]) -> None:
        """Keep the stack running for a look around, until Ctrl-C."""
        show = self.show
        show.step("The stack keeps running for you (Ctrl-C stops it)")
        paths = {route["path"] for route in state["routes"]}
        token_command = f"audit-trail token --role auditor --data-dir {state.get('data_dir') or '.'}"
        if "/dashboard" in paths:
            show.fact(f"dashboard  {state['api_url']}/dashboard")
        if self.tokens.auditor:
            # A fresh one: the story's token was minted when the stack started.
            fresh = token_for_state(state, "auditor", email=DEMO_AUDITOR_EMAIL).token
            show.fact("           sign in with this auditor token (valid for an hour):")
            show.fact(f"           {fresh}")
            show.fact(f"           another one: {token_command}")
            auth = f'-H "Authorization: Bearer $({token_command})" '
        else:
            auth = ""
        show.fact(f"alerts     curl {auth}{state['api_url']}/alerts")
        show.fact(f"events     curl {auth}'{state['api_url']}/events?limit=20'")
        show.fact(f"invoke     audit-trail invoke --api-url {state['api_url']} anchor")
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        show.line("")

    def _story(self, api: httpx.Client, state: dict[str, Any], database_url: str) -> bool:
        show = self.show
        routes = {(r["method"], r["path"]) for r in state["routes"]}
        schedules = {s["name"] for s in state["schedules"]}
        aws_env = {"AWS_ENDPOINT_URL": state["moto_endpoint"], "AWS_ACCESS_KEY_ID": "local",
                   "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        # verify pins the signing key by the fingerprint the stack publishes, as an operator's configuration.
        aws_env.update(verify_env(state))

        chapters = working_day(self.options.day_events, self.options.users, self.options.seed)
        show.step("Events through POST /events; each insert is relayed to the detection rules")
        stored = self._ingest(api, chapters)
        self._wait_for_detection(api, stored)

        show.step("Alerts raised (GET /alerts)")
        alerts = api.get("/alerts", params={"limit": 100}, headers=self.tokens.read).raise_for_status().json()["alerts"]
        for alert in sorted(alerts, key=lambda a: (-a["risk_score"], a["rule"])):
            show.fact(
                f"[{alert['severity'].upper():8} risk {alert['risk_score']:4.1f}] {alert['rule']:24} {alert['summary']}"
            )
        raised = {alert["rule"] for alert in alerts}
        missing = {rule for chapter in chapters for rule in chapter.expect} - raised
        if missing:
            raise DemoFailed(f"expected alerts were not raised: {', '.join(sorted(missing))}")
        if self.tokens.auditor is not None:
            self._access(api, state, database_url)

        if ("POST", "/reports") in routes:
            self._report(api)
        else:
            show.step("Compliance report: skipped (this build has no POST /reports yet)")

        if "anchor" in schedules:
            show.step("Anchoring the chain: audit-trail invoke anchor (Merkle root signed with KMS, Object Lock)")
            done = cli("invoke", "anchor", "--api-url", state["api_url"])
            if done.returncode != 0:
                raise DemoFailed(f"anchor failed:\n{done.stdout}{done.stderr}")
            show.fact(_anchor_summary(done.stdout))
        else:
            show.step("Anchor: skipped (this build has no anchor schedule yet)")

        verify = verify_args(state, database_url, with_digests="anchor" in schedules)
        show.step("audit-trail verify: every checksum and link recomputed, every signed digest checked")
        show.fact("$ audit-trail " + shlex.join(_shorten(arg) for arg in verify))
        first = cli(*verify, env=aws_env)
        for line in first.stdout.strip().splitlines():
            show.fact(line)
        if first.returncode != 0:
            raise DemoFailed(f"verify failed on the untouched trail:\n{first.stdout}{first.stderr}")

        victim = self._tamper(database_url)
        show.step("audit-trail verify, again")
        second = cli(*verify, env=aws_env)
        for line in second.stdout.strip().splitlines():
            show.fact(line)
        caught = second.returncode == 1 and str(victim) in second.stdout
        show.fact(
            f"exit status {second.returncode}: "
            + (f"the tampered event (seq {victim}) was caught" if caught else "the tamper was NOT caught")
        )
        if not caught or "--digest-bucket" not in verify:
            return caught
        chain_only = verify_args(state, database_url, with_digests=False)
        return self._covered_tracks(database_url, victim, (chain_only, verify), aws_env)

    def _covered_tracks(
        self, database_url: str, victim: int, commands: tuple[list[str], list[str]], aws_env: dict[str, str]
    ) -> bool:
        """The careful attacker: a consistent rewrite that only the signed digests can expose."""
        show = self.show
        show.step(
            f"The superuser covers their tracks: recomputes seq {victim:,}'s checksum and every chain hash after it"
        )
        rewrite_chain(database_url, victim)
        chain_only, verify = commands
        alone = cli(*chain_only, env=aws_env)
        show.fact(f"verify from the database alone: exit {alone.returncode}: {_first_line(alone.stdout)}")
        with_digests = cli(*verify, env=aws_env)
        for line in with_digests.stdout.strip().splitlines():
            if line.startswith(("FAILED", "0/", "1/")) or "digests valid" in line:
                show.fact(line)
        exposed = alone.returncode == 0 and with_digests.returncode == 1
        show.fact(
            "the database alone cannot tell a consistent rewrite from the truth; the signed digest can"
            if exposed
            else "UNEXPECTED: the rewrite was not told apart by the digests"
        )
        return exposed

    def _access(self, api: httpx.Client, state: dict[str, Any], database_url: str) -> None:
        """Who may read the trail, and the trail's record of every read and refusal."""
        show = self.show
        show.step("Access control: each role sees what it may, and every read and refusal joins the chain")
        as_writer = api.get("/events", headers=self.tokens.write)
        show.fact(f"the app's writer token reads GET /events: {as_writer.status_code} ({_error_message(as_writer)})")
        forged = api.get("/events", headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."})
        show.fact(f"a forged token (alg: none): {forged.status_code} ({_error_message(forged)})")
        insider = "user-007"
        user = bearer(token_for_state(state, "user", insider).token)
        own = api.get("/events", params={"limit": 1000}, headers=user).raise_for_status().json()["events"]
        others = {event["user_id"] for event in own} - {insider}
        show.fact(f"{insider} signed in reads GET /events: {len(own)} events, all their own" + (
            "" if not others else f" (and {sorted(others)}!)"))  # fmt: skip
        if others or as_writer.status_code != 403 or forged.status_code != 401:
            raise DemoFailed("access control let through what it should have refused")
        peek = api.get("/events", params={"user_id": "user-005"}, headers=user)
        show.fact(f"{insider} asks for user-005's events: {peek.status_code} ({_error_message(peek)})")
        with psycopg.connect(database_url, autocommit=True) as conn:
            rows = conn.execute(
                "select action, count(*) from audit.audit_events"
                " where action in ('audit_read', 'audit_access_refused') group by action order by action"
            ).fetchall()
        counts = {str(action): int(n) for action, n in rows}
        show.fact(
            f"in the chain: {counts.get('audit_read', 0)} reads and {counts.get('audit_access_refused', 0)} refusals"
            " recorded with who, what and from where (PCI DSS 10.2.1.3, 10.2.1.4)"
        )

    def _ingest(self, api: httpx.Client, chapters: list[Chapter]) -> int:
        total = 0
        for chapter in chapters:
            self.show.fact(chapter.title)
            created = 0
            for batch in batches(chapter.events):
                answer = api.post("/events", json={"events": batch}, headers=self.tokens.write)
                if answer.status_code not in (200, 201):
                    raise DemoFailed(f"POST /events answered {answer.status_code}: {answer.text[:300]}")
                created += answer.json()["created"]
                if len(chapter.events) > 500:
                    self.show.progress("stored", created, len(chapter.events))
            total += created
        self.show.fact(f"{total:,} events stored, hash-chained by the database")
        return total

    def _wait_for_detection(self, api: httpx.Client, stored: int) -> None:
        deadline = time.monotonic() + DETECTION_TIMEOUT
        while True:
            relay = api.get("/_local/status").raise_for_status().json()["relay"]
            done = relay["relayed"] + relay["failed"]
            self.show.progress("analysed", min(done, stored), stored)
            if done >= stored:
                break
            if time.monotonic() > deadline:
                raise DemoFailed(f"detection analysed only {done:,} of {stored:,} events")
            time.sleep(0.5)
        if relay["failed"]:
            # A webhook the relay could not deliver is what the sweep exists for.
            api.post("/_local/invoke/sweep").raise_for_status()
            self.show.fact(f"{relay['failed']} webhook(s) failed; the detection sweep analysed them")

    def _report(self, api: httpx.Client) -> None:
        show = self.show
        show.step("Compliance report (POST /reports): SOX, the last 24 hours")
        now = datetime.now(UTC)
        answer = api.post(
            "/reports",
            json={"standard": "sox", "start": (now - timedelta(days=1)).isoformat(), "end": now.isoformat()},
            headers=self.tokens.read,
        )
        if answer.status_code != 201:
            raise DemoFailed(f"POST /reports answered {answer.status_code}: {answer.text[:300]}")
        report = answer.json()
        link = _download_url(report)
        show.fact(
            f"report {report.get('report_id')}: {report.get('total_events') or 0:,} events in scope, "
            f"overall {report.get('overall_status') or report.get('status')}"
        )
        for name, stored in sorted((report.get("formats") or {}).items()):
            show.fact(f"  {name:5} {stored.get('size_bytes', 0):>9,} bytes  s3://.../{stored.get('key')}")
        show.fact(f"presigned link ({report.get('expires_in') or '?'} s): {link}")
        download = httpx.get(link, timeout=60.0)
        if download.status_code != 200:
            raise DemoFailed(f"the presigned link answered {download.status_code}")
        digest = hashlib.sha256(download.content).hexdigest()
        recorded = ((report.get("formats") or {}).get(report.get("download_format") or "") or {}).get("sha256")
        match = "matches the SHA-256 recorded with the report" if digest == recorded else f"SHA-256 {digest[:16]}..."
        if recorded and digest != recorded:
            raise DemoFailed("the downloaded report does not match the SHA-256 recorded with it")
        show.fact(f"downloaded {len(download.content):,} bytes through the link; {match}")

    def _tamper(self, database_url: str) -> int:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "select seq, user_id from audit.audit_events where seq = (select max(seq) / 2 from audit.audit_events)"
            ).fetchone()
            if row is None:
                raise DemoFailed("no event to tamper with")
            victim, user = int(row[0]), str(row[1])
            self.show.step(f"A database superuser quietly edits event seq {victim:,} ({user} -> someone-else)")
            # Triggers off: the append-only guard is a trigger, and a superuser can switch triggers off.
            conn.execute("set session_replication_role = replica")
            conn.execute("update audit.audit_events set user_id = 'someone-else' where seq = %s", (victim,))
        return victim


def rewrite_chain(database_url: str, seq: int) -> None:
    """What an attacker with superuser rights would do next: reseal event `seq` as it now reads and
    relink every later event and the chain head, so that the chain alone verifies again."""
    from audit_common.integrity.seal import SEALED_FIELDS, event_checksum

    columns = ", ".join(f'"{name}"' for name in SEALED_FIELDS)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # the guards are triggers
        row = conn.execute(
            f"select {columns}, seal_version, payload_commitment from audit.audit_events where seq = %s", (seq,)
        ).fetchone()
        if row is None:
            raise DemoFailed(f"no event seq {seq}")
        # Under its own seal version (2: the kept fields beside the stored payload commitment).
        event = dict(zip((*SEALED_FIELDS, "seal_version", "payload_commitment"), row, strict=True))
        checksum = event_checksum(event)
        with conn.transaction():
            conn.execute("update audit.audit_events set checksum = %s where seq = %s", (checksum, seq))
            conn.execute(
                """
                with recursive walk(seq, prev_hash, chain_hash) as (
                  select e.seq, p.chain_hash, sha256(p.chain_hash || e.checksum)
                    from audit.audit_events e join audit.audit_events p on p.seq = e.seq - 1
                   where e.seq = %(seq)s
                  union all
                  select e.seq, w.chain_hash, sha256(w.chain_hash || e.checksum)
                    from walk w join audit.audit_events e on e.seq = w.seq + 1
                ), relinked as (
                  update audit.audit_events e set prev_hash = w.prev_hash, chain_hash = w.chain_hash
                    from walk w where e.seq = w.seq
                  returning e.seq, e.chain_hash
                )
                update audit.chain_head set chain_hash = (select chain_hash from relinked order by seq desc limit 1)
                """,
                {"seq": seq},
            )


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no output)"


def verify_args(state: dict[str, Any], database_url: str, *, with_digests: bool) -> list[str]:
    """`audit-trail verify` arguments for a running local stack: its database, and with the digests the
    anchor wrote to the stack's digest bucket (on the stack's moto endpoint) when there are any."""
    args = ["verify", "--database-url", database_url, "--no-progress"]
    bucket = next((name for logical, name in state["buckets"].items() if "digest" in logical.lower()), None)
    if with_digests and bucket:
        args += ["--digest-bucket", bucket, "--endpoint-url", str(state["moto_endpoint"])]
    return args


def _shorten(arg: str) -> str:
    # The database URL may carry a password: show the command without it.
    return redact_url(arg) if arg.startswith("postgres") or "dbname=" in arg else arg


def _download_url(report: dict[str, Any]) -> str:
    for key in ("download_url", "url"):
        if isinstance(report.get(key), str):
            return str(report[key])
    for value in report.values():
        if isinstance(value, dict):
            for key in ("download_url", "json", "html"):
                if isinstance(value.get(key), str) and value[key].startswith("http"):
                    return str(value[key])
    raise DemoFailed(f"the report has no download_url: {sorted(report)}")


def _anchor_summary(output: str) -> str:
    import orjson

    try:
        result = orjson.loads(output).get("result") or {}
    except orjson.JSONDecodeError:
        return output.strip()[:200]
    fields = ("tree_size", "root_hash", "key", "digest_seq", "status")
    parts = [f"{name} {str(result[name])[:16]}" for name in fields if name in result]
    return "digest written: " + (", ".join(parts) if parts else str(result)[:200])


def run_demo(options: DemoOptions) -> bool:
    """Play the whole demo; True when verify passed and then caught the tamper."""
    show = Show(options.out)
    started = time.monotonic()
    show.line("audit-trail demo: a tamper-evident audit trail, end to end, on this machine")
    options.data_dir.mkdir(parents=True, exist_ok=True)
    with demo_database(options) as database_url:
        ok = Demo(options, show).run(database_url)
    show.line(f"\n{'done' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return ok
