"""Apply the Supabase migrations to a PostgreSQL database (tests, the local stack, `db migrate`).

On a Supabase project use `supabase db push`; this runner exists for vanilla PostgreSQL, where
it first applies the bootstrap that creates Supabase's roles and `auth` functions. It records
applied versions in `supabase_migrations.schema_migrations`, the table the Supabase CLI uses,
so the two tools agree about what has run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

_VERSION_RE = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file: `<14-digit timestamp>_<name>.sql`."""

    version: str
    name: str
    path: Path


def sql_root() -> Path:
    """Directory holding `migrations/` and `bootstrap/`: packaged in a wheel, else the repository's."""
    packaged = Path(__file__).parent / "sql"
    if (packaged / "migrations").is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "supabase"


def discover(root: Path | None = None) -> list[Migration]:
    """Migrations in version order; a file that does not follow the naming rule is an error."""
    directory = (root or sql_root()) / "migrations"
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _VERSION_RE.match(path.name)
        if match is None:
            raise ValueError(f"migration file name must be <14 digits>_<name>.sql: {path.name}")
        found.append(Migration(match["version"], match["name"], path))
    return found


def bootstrap_sql(root: Path | None = None) -> str:
    """SQL that gives vanilla PostgreSQL the Supabase roles and `auth.uid()`/`auth.jwt()`."""
    return ((root or sql_root()) / "bootstrap" / "vanilla_postgres.sql").read_text()


def migrate(
    conninfo: str,
    *,
    bootstrap: bool = True,
    root: Path | None = None,
    progress: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply pending migrations, each in its own transaction; return those applied now."""
    applied_now: list[Migration] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Roles are cluster-wide: two databases bootstrapping at once would race on CREATE ROLE.
        conn.execute("select pg_advisory_lock(hashtext('audit-trail bootstrap'))")
        try:
            if bootstrap:
                conn.execute(bootstrap_sql(root).encode())
            conn.execute(
                "create schema if not exists supabase_migrations;"
                "create table if not exists supabase_migrations.schema_migrations"
                " (version text primary key, statements text[], name text)"
            )
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('audit-trail bootstrap'))")
        done = {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}
        for migration in discover(root):
            if migration.version in done:
                continue
            if progress is not None:
                progress(migration)
            with conn.transaction():
                conn.execute(migration.path.read_text().encode())
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name) values (%s, %s)",
                    (migration.version, migration.name),
                )
            applied_now.append(migration)
    return applied_now
