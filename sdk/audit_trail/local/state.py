"""Where a running local stack describes itself: a small JSON file in its data directory.

`audit-trail invoke` and the demo find the stack's API URL (and, for tampering in the demo, the database
URL) there. The file holds the database URL with its password and the local secrets, so it is 0600.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

STATE_FILE: Final = "local-stack.json"


def redact_url(url: str) -> str:
    """A database URL without its password, for printing."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.hostname or ""
            netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return url
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def verify_env(state: dict[str, Any]) -> dict[str, str]:
    """What `audit-trail verify` needs to trust this stack's digests: its signing keys' published fingerprints.

    The stack publishes them (``signing_key_fingerprints`` in the state) as an operator publishes theirs; a
    verifier given them pins the keys by configuration, never by the PEM the anchor leaves beside the digests.
    """
    from audit_trail.verify_digests import FINGERPRINTS_ENV

    fingerprints = sorted(set((state.get("signing_key_fingerprints") or {}).values()))
    return {FINGERPRINTS_ENV: ",".join(fingerprints)} if fingerprints else {}


def state_path(data_dir: Path) -> Path:
    """Where a running stack describes itself (API URL, database URL) for `audit-trail invoke` and the demo."""
    return data_dir / STATE_FILE


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The running stack's state in `data_dir`, or None when there is none (or its process is gone)."""
    path = state_path(data_dir)
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError):
        return None
    except PermissionError:
        pass  # alive, another user's
    return state


def write_state(data_dir: Path, state: dict[str, Any]) -> None:
    """Write the state file, readable by its owner only."""
    path = state_path(data_dir)
    path.write_text("")
    path.chmod(0o600)
    path.write_text(json.dumps(state, indent=2))
