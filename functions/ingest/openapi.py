"""Print the ingest API's OpenAPI document (`make openapi` writes it to docs/openapi.json)."""

from __future__ import annotations

import json
import sys
from typing import Any

from audit_common.api import ingest_request_adapter
from ingest.handler import app


def render() -> str:
    """The OpenAPI JSON generated from the resolver's routes and models, stable for diffs."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="Audit trail API",
            version="1.0.0",
            summary="Tamper-evident audit events: write, read, verify",
            description="Events are chained with SHA-256 in Supabase Postgres; see docs/integrity.md.",
        )
    )
    # POST /events validates its body itself (see ingest.handler.post_events), so the resolver
    # only knows "any JSON"; publish the schema that is actually enforced.
    schema = ingest_request_adapter.json_schema(ref_template="#/components/schemas/{model}")
    document.setdefault("components", {}).setdefault("schemas", {}).update(schema.pop("$defs", {}))
    body = document["paths"]["/events"]["post"]["requestBody"]
    body["content"]["application/json"]["schema"] = schema
    body["description"] = 'One event, {"events": [...]} or a JSON array; at most 1000 events.'
    return json.dumps(document, indent=2, sort_keys=True)


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
