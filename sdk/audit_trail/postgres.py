"""Find or start a PostgreSQL server and make databases on it (tests, local stack, benchmarks).

`DATABASE_URL` wins when set. Otherwise an embedded PostgreSQL 16 is started with pgserver
(no Docker, no system install), its data kept in a directory you choose.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

_embedded: dict[Path, Any] = {}


def embedded_server_url(datadir: Path) -> str:
    """Start (or join) the embedded server for `datadir`; it stops when the process exits."""
    import pgserver  # optional dependency (extra `local`)

    datadir = datadir.resolve()
    datadir.parent.mkdir(parents=True, exist_ok=True)
    if datadir not in _embedded:
        _embedded[datadir] = pgserver.get_server(datadir, cleanup_mode="stop")
    return str(_embedded[datadir].get_uri())


def server_url(datadir: Path | None = None) -> str:
    """`DATABASE_URL` if set, else the embedded server's admin URL."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return embedded_server_url(datadir or Path.home() / ".audit-trail" / "pgdata")


def database_url(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(url, dbname=dbname)


def create_database(url: str, dbname: str, *, template: str | None = None) -> str:
    """Create `dbname` (optionally as a copy of `template`) and return its connection string."""
    with psycopg.connect(url, autocommit=True) as conn:
        query = sql.SQL("create database {}").format(sql.Identifier(dbname))
        if template:
            query = sql.SQL("create database {} template {}").format(sql.Identifier(dbname), sql.Identifier(template))
        conn.execute(query)
    return database_url(url, dbname)


def drop_database(url: str, dbname: str) -> None:
    """Drop `dbname`, disconnecting anyone still in it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


def release_embedded_server(datadir: Path) -> None:
    """Drop this process's handle on the embedded server for `datadir`; the last handle stops it."""
    server = _embedded.pop(datadir.resolve(), None)
    if server is not None:
        server.cleanup()
