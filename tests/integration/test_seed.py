"""supabase/seed.sql loads through the SQL API and its checksums verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from audit_common.db import PostgresTransport
from audit_common.verification import verify_chain

SEED = Path(__file__).resolve().parents[2] / "supabase" / "seed.sql"


def test_seed_loads_and_verifies(db: psycopg.Connection[Any], transport: PostgresTransport) -> None:
    """Given a migrated database, When seed.sql runs, Then its events are chained and every checksum verifies."""
    db.execute(SEED.read_text().encode())

    result = verify_chain(transport)

    assert result.valid, result.message
    assert result.checked == 4
