"""Print the ingest API's OpenAPI document (`make openapi` writes it to docs/openapi.json)."""

from __future__ import annotations

import sys

from ingest.handler import app


def render() -> str:
    """The OpenAPI JSON generated from the resolver's routes and models, stable for diffs."""
    return app.get_openapi_json_schema(
        title="Audit trail API",
        version="1.0.0",
        summary="Tamper-evident audit events: write, read, verify",
        description="Events are chained with SHA-256 in Supabase Postgres; see docs/integrity.md.",
    )


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
