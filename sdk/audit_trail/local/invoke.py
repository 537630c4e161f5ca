"""`audit-trail invoke NAME`: run a scheduled function once, inside a running local stack.

The stack runs it (`POST /_local/invoke/{name}`), in its own process with its environment, with the
schedule's Input from template.yaml, exactly what EventBridge Scheduler would deliver. The stack is
found through `--api-url`, `$AUDIT_LOCAL_API_URL`, or the state file it keeps in its data directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import orjson

from audit_trail.local.state import read_state


class StackNotFound(RuntimeError):
    """No running local stack was found."""


def find_api_url(api_url: str | None, data_dir: Path) -> str:
    """The running stack's API URL: given, from the environment, or from its state file."""
    url = api_url or os.environ.get("AUDIT_LOCAL_API_URL")
    if url:
        return url.rstrip("/")
    state = read_state(data_dir)
    if state is None:
        raise StackNotFound(
            f"no local stack is running with data directory {data_dir} "
            "(start one with `audit-trail local`, or pass --api-url)"
        )
    return str(state["api_url"])


def invoke(api_url: str, name: str, event: Any = None, timeout: float = 900.0) -> tuple[int, dict[str, Any]]:
    """Ask the stack to run the schedule `name`; (HTTP status, answer)."""
    content = None if event is None else orjson.dumps(event)
    response = httpx.post(f"{api_url}/_local/invoke/{name}", content=content, timeout=timeout)
    return response.status_code, response.json()
