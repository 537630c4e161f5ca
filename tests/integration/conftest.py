"""Real PostgreSQL for integration tests.

`DATABASE_URL` (CI: the machine's PostgreSQL 15) or, when unset, an embedded PostgreSQL 16
started with pgserver. The migrations are applied once per test worker to a template
database; every test gets a fresh copy of it (CREATE DATABASE ... TEMPLATE), because the
event table is append-only by design and cannot be emptied between tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from audit_common.db import PostgresTransport, reset_transport
from audit_common.settings import get_settings
from audit_trail.migrations import migrate
from audit_trail.postgres import create_database, drop_database, server_url
from tests.support.aws import WEBHOOK_SECRET, AlertSinks, alert_sinks

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Admin URL of the server the tests use."""
    # One embedded server shared by all xdist workers: pgserver reference-counts a data dir.
    shared = Path(tmp_path_factory.getbasetemp()).parent / "pgdata"
    return server_url(shared)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """A migrated database used as the template of each test's database."""
    name = f"audit_tmpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name)
    migrate(url)
    yield name
    drop_database(pg_server_url, name)


@pytest.fixture
def db_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"audit_test_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name, template=template_db)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A superuser connection to the test database (for setup and tampering)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def transport(db_url: str) -> Iterator[PostgresTransport]:
    """The functions' transport, running every call as Supabase's service_role."""
    t = PostgresTransport(db_url, role="service_role")
    yield t
    t.close()


@pytest.fixture
def configured(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the functions' settings at the test database, as the Lambda environment would."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AUDIT_DATABASE_ROLE", "service_role")
    get_settings.cache_clear()
    reset_transport()
    yield db_url
    reset_transport()
    get_settings.cache_clear()


@pytest.fixture
def sinks(configured: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertSinks]:
    """The detect function configured against the test database, a webhook secret and moto AWS."""
    from detect import handler as detect_handler

    with alert_sinks() as aws:
        monkeypatch.setenv("AUDIT_WEBHOOK_SECRET", WEBHOOK_SECRET)
        monkeypatch.setenv("AUDIT_EVENT_BUS_NAME", aws.bus_name)
        monkeypatch.setenv("AUDIT_ALERT_TOPIC_ARN", aws.topic_arn)
        get_settings.cache_clear()
        detect_handler.publisher.cache_clear()
        yield aws
        detect_handler.publisher.cache_clear()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


os.environ.setdefault("PGCONNECT_TIMEOUT", "10")
