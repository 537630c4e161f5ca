"""The API's OpenAPI document, generated from every function's resolver (`make openapi`).

Each Lambda function owns some routes of the one REST API; this merges their generated documents
into docs/openapi.json, which a test keeps in step with the code.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from analytics.handler import app as analytics_app
from audit_common.api import ingest_request_adapter
from detect.handler import app as detect_app
from ingest.handler import app as ingest_app
from reports.handler import app as reports_app
from retention.handler import app as retention_app

TITLE = "Audit trail API"
VERSION = "1.0.0"


def _generated(app: APIGatewayRestResolver) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            summary="Tamper-evident audit events: write, read, verify, detect",
            description="Events are chained with SHA-256 in Supabase Postgres; see docs/integrity.md "
            "and docs/detection.md.",
        )
    )
    return document


def render() -> str:
    """The merged OpenAPI JSON of every function, stable for diffs."""
    document = _generated(ingest_app)
    for other in (detect_app, retention_app, reports_app, analytics_app):
        extra = _generated(other)
        document["paths"].update(extra["paths"])
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            extra.get("components", {}).get("schemas", {})
        )
    # POST /events validates its body itself (see ingest.handler.post_events), so the resolver
    # only knows "any JSON"; publish the schema that is actually enforced.
    schema = ingest_request_adapter.json_schema(ref_template="#/components/schemas/{model}")
    document["components"]["schemas"].update(schema.pop("$defs", {}))
    body = document["paths"]["/events"]["post"]["requestBody"]
    body["content"]["application/json"]["schema"] = schema
    body["description"] = 'One event, {"events": [...]} or a JSON array; at most 1000 events.'
    return json.dumps(document, indent=2, sort_keys=True)


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
