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
from audit_common.access import ROUTE_ROLES, UNAUTHENTICATED_ROUTES
from audit_common.api import ErrorResponse, ingest_request_adapter
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
    _document_access(document)
    return json.dumps(document, indent=2, sort_keys=True)


def _document_access(document: dict[str, Any]) -> None:
    """Who may call each operation (audit_common.access, the table the authorizer enforces)."""
    document["components"]["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A Supabase Auth access token (JWT; the role is app_metadata.audit_role: auditor or "
            "admin, else a user) or a writer token (atw_...). See docs/security.md.",
        }
    }
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    document["components"]["schemas"].update(error_schema.pop("$defs", {}))
    document["components"]["schemas"]["ErrorResponse"] = error_schema
    refused = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = (method.upper(), path)
            if route in UNAUTHENTICATED_ROUTES:
                operation["security"] = []
                operation["x-audit-access"] = UNAUTHENTICATED_ROUTES[route]
                continue
            operation["security"] = [{"bearer": []}]
            operation["x-audit-roles"] = sorted(role.value for role in ROUTE_ROLES.get(route, frozenset()))
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", {"description": "No token, or one that does not verify", **refused})
            responses.setdefault("403", {"description": "The token's role may not call this route", **refused})


if __name__ == "__main__":
    sys.stdout.write(render() + "\n")
