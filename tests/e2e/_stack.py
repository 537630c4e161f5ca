"""Start `audit-trail local` as a child process and look at the processes it leaves (e2e helpers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit_trail.local.state import read_state

STARTUP_TIMEOUT = 90.0


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


@dataclass
class RunningStack:
    """A running `audit-trail local` child process and what it reported."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    database_url: str
    state: dict[str, Any]

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP API."""
        return str(self.state["api_url"])

    @property
    def aws_env(self) -> dict[str, str]:
        """Environment that points boto3 (and the CLI) at the stack's moto server."""
        return {
            "AWS_ENDPOINT_URL": str(self.state["moto_endpoint"]),
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

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
