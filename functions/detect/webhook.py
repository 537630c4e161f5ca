"""The Supabase database webhook: its payload, its authentication, and which calls concern us."""

from __future__ import annotations

import hmac
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from audit_common.errors import Unauthorized
from audit_common.headers import header

SECRET_HEADER: Final = "x-audit-webhook-secret"  # noqa: S105 - a header name, not a secret
WATCHED_SCHEMA: Final = "audit"
WATCHED_TABLE: Final = "audit_events"


class WebhookPayload(BaseModel):
    """What `supabase_functions.http_request` posts: `{type, table, schema, record, old_record}`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str = Field(description="INSERT, UPDATE or DELETE")
    table: str
    schema_name: str = Field(alias="schema")
    record: dict[str, Any] | None
    old_record: dict[str, Any] | None


def authenticate(headers: dict[str, str], secret: str) -> None:
    """Compare the secret header in constant time; raise Unauthorized when absent or wrong."""
    presented = header(headers, SECRET_HEADER)
    if presented is None:
        raise Unauthorized(f"missing {SECRET_HEADER} header")
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise Unauthorized(f"wrong {SECRET_HEADER}")


def ignored_because(payload: WebhookPayload) -> str | None:
    """Why a (valid) call is not for us, or None when it is an insert into the event table."""
    if payload.schema_name != WATCHED_SCHEMA or payload.table != WATCHED_TABLE:
        return f"not the event table ({payload.schema_name}.{payload.table})"
    if payload.type != "INSERT":
        return f"{payload.type} is not analysed: events are append-only, only inserts are new"
    return None
