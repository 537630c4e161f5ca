"""Retention Lambda (API): GDPR export and erasure routes. Parsing and mapping only."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path

from audit_common.db import get_transport
from audit_common.guard import caller, own_subject, reader_transport
from audit_common.http import ERROR_RESPONSES, api_lambda_handler, create_resolver
from audit_common.models import NO_NUL_PATTERN
from audit_common.observability import logger
from retention import gdpr

app = create_resolver()
SubjectId = Annotated[str, Path(min_length=1, max_length=255, pattern=NO_NUL_PATTERN)]


@app.get(
    "/subjects/<user_id>/export",
    summary="GDPR Art. 15: everything the trail holds about a subject",
    responses={404: {"description": "No events of this subject"}, **ERROR_RESPONSES},
    tags=["gdpr"],
)
def export_subject(user_id: SubjectId) -> gdpr.SubjectExport:
    """The subject's events, oldest first; the export itself is recorded in the trail.

    A user may export only their own data (Art. 15 is the data subject's right); the events are
    read as the caller, so row level security bounds the export as well."""
    principal = caller(app)
    own_subject(principal, user_id, field="user_id")
    return gdpr.export_subject(get_transport(), user_id, actor=principal.label, reader=reader_transport(app))


@app.post(
    "/subjects/<user_id>/erasure",
    summary="GDPR Art. 17: erase a subject's personal fields, keeping the chain",
    responses={404: {"description": "No events of this subject"}, **ERROR_RESPONSES},
    tags=["gdpr"],
)
def erase_subject(user_id: SubjectId) -> gdpr.ErasureResult:
    """Redact email, IP, user agent, session and details; name what was kept and why (Art. 17(3))."""
    result = gdpr.erase_subject(get_transport(), user_id, actor=caller(app).label)
    logger.info("subject erased", extra={"request_id": result.request_id, "redacted": result.redacted})
    return result


lambda_handler = api_lambda_handler(app)
"""API Gateway proxy event in, proxy response out."""
