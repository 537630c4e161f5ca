"""End-to-end: `audit-trail local` as a child process, driven only over HTTP and the CLI.

Each test gets a fresh database on the DATABASE_URL server (or an embedded PostgreSQL shared by the
test workers), and its own stack on free ports (API and moto). The network is not blocked here: the
tests talk to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from audit_trail.postgres import (
    create_database,
    drop_database,
    embedded_server_url,
    release_embedded_server,
    server_url,
)
from tests.e2e._stack import RunningStack, StackTokens, start_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """Admin URL of the PostgreSQL server the e2e tests create their databases on.

    Without DATABASE_URL: an embedded server per test worker, in a directory outside pytest's temp
    root. As root, pgserver opens the path up for its own system user, and any pytest starting
    meanwhile on this machine closes its 0700 temp root again, under the server's feet.
    """
    if os.environ.get("DATABASE_URL"):
        yield server_url()
        return
    directory = Path(tempfile.mkdtemp(prefix="audit-e2e-pg-"))
    try:
        yield embedded_server_url(directory / "pgdata")
    finally:
        release_embedded_server(directory / "pgdata")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def e2e_database(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database (the stack migrates it itself)."""
    name = f"audit_e2e_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def stack(e2e_database: str, tmp_path: Path) -> Iterator[RunningStack]:
    """`audit-trail local` against a fresh database, stopped (SIGINT) after the test."""
    running = start_stack(e2e_database, tmp_path / "stack")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(stack: RunningStack) -> Iterator[httpx.Client]:
    """An HTTP client for the stack's API that sends each route the token of a role allowed there
    (writer for POST /events, an auditor for reads, admin for erasure); a request that sets its own
    Authorization header keeps it."""
    with stack.client() as client:
        yield client


@pytest.fixture
def tokens(stack: RunningStack) -> StackTokens:
    """Tokens of the stack, per role (None for access tokens while the stack checks none)."""
    return stack.tokens
