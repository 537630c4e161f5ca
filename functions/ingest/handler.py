"""Ingest Lambda: API Gateway REST routes -> service calls. Parsing and error mapping only."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import AwareDatetime

from audit_common.api import (
    MAX_SEQ,
    ConsistencyProofResponse,
    EventPage,
    InclusionProofResponse,
    IngestResponse,
    StoredEvent,
    VerifyResponse,
)
from audit_common.db import get_transport
from audit_common.errors import NotFound
from audit_common.guard import caller, own_subject, reader_transport
from audit_common.http import ERROR_RESPONSES, JsonBody, api_lambda_handler, create_resolver
from audit_common.models import LenientEventType, LenientSecurityLevel, LenientStandard
from audit_common.observability import logger, metrics
from audit_common.settings import get_settings
from audit_common.verification import verify_chain
from ingest import proofs, service

app = create_resolver()


@app.post(
    "/events",
    summary="Store one event or a batch of up to 1000",
    description="Idempotent by event_id: a replay answers `duplicate` with the stored seq and hashes.",
    responses={
        201: {"description": "All events created"},
        200: {"description": "Some were already stored"},
        **ERROR_RESPONSES,
    },
    tags=["events"],
)
def post_events(body: Annotated[JsonBody, Body()]) -> Response[IngestResponse]:
    """Validate, seal and store; 201 when every event is new, 200 when some were duplicates."""
    # The body is validated by the service, not the resolver: Powertools reduces a JSON array to
    # its first element for a body type it does not see as a sequence (our tagged union), which
    # would silently drop events. openapi_document publishes the schema that is enforced.
    result = service.ingest_request(get_transport(), body, app.current_event.decoded_body)
    metrics.add_metric(name="EventsCreated", unit=MetricUnit.Count, value=result.created)
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
    status = HTTPStatus.CREATED if result.duplicates == 0 else HTTPStatus.OK
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=result)


@app.get("/events", summary="List events, newest first", responses=ERROR_RESPONSES, tags=["events"])
def get_events(
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    event_type: Annotated[LenientEventType | None, Query()] = None,
    security_level: Annotated[LenientSecurityLevel | None, Query()] = None,
    compliance_tag: Annotated[LenientStandard | None, Query()] = None,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="Inclusive lower bound, with zone")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="Exclusive upper bound, with zone")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    order: Annotated[str, Query(pattern="^(asc|desc)$", description="By seq: desc (default) or asc")] = "desc",
) -> EventPage:
    """One page of events matching all filters; `next_cursor` is null on the last page.

    A user gets their own events only: the filter is set to them here, and the query runs as them,
    so the database's row level security would hold even if it were not."""
    return service.list_events(
        reader_transport(app),
        user_id=own_subject(caller(app), user_id),
        event_type=event_type,
        security_level=security_level,
        compliance_tag=compliance_tag,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
        descending=order == "desc",
    )


@app.get(
    "/events/<event_id>",
    summary="One event with its integrity fields",
    responses={404: {"description": "Unknown event_id"}, **ERROR_RESPONSES},
    tags=["events"],
)
def get_event(event_id: Annotated[str, Path(max_length=255)]) -> StoredEvent:
    """The stored event, or 404 (also for another user's event: its existence is not disclosed)."""
    event = service.get_event(reader_transport(app), event_id)
    if event is None:
        raise NotFound(f"event_id: no event {event_id!r}")
    return event


@app.get(
    "/events/<event_id>/proof",
    summary="Merkle inclusion proof of an event against a signed digest",
    description="RFC 6962 inclusion proof of the event's checksum in the Merkle root of the newest signed digest "
    "(or of `digest_seq`), with that digest, its signature and public key: verifiable without this API.",
    responses={
        404: {"description": "Unknown event_id or digest_seq"},
        409: {"description": "No digest covers the event yet (the hourly anchor will)"},
        **ERROR_RESPONSES,
    },
    tags=["integrity"],
)
def get_event_proof(
    event_id: Annotated[str, Path(max_length=255)],
    digest_seq: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="Prove against this digest (default: newest)")
    ] = None,
) -> InclusionProofResponse:
    """Leaf index, tree size, inclusion proof and the signed digest it is proven against."""
    # The proof is built from stored checksums with the service role, so first make sure the
    # caller may see the event at all (as themselves: RLS answers for users).
    if service.get_event(reader_transport(app), event_id) is None:
        raise NotFound(f"event_id: no event {event_id!r}")
    return proofs.inclusion(get_transport(), event_id, digest_seq)


@app.get(
    "/integrity/consistency",
    summary="Merkle consistency proof between two signed digests",
    responses={404: {"description": "Unknown digest"}, **ERROR_RESPONSES},
    tags=["integrity"],
)
def get_consistency(
    from_digest: Annotated[int, Query(alias="from", ge=1, le=MAX_SEQ, description="digest_seq of the older digest")],
    to_digest: Annotated[int, Query(alias="to", ge=1, le=MAX_SEQ, description="digest_seq of the newer digest")],
) -> ConsistencyProofResponse:
    """RFC 6962 proof that the older digest's tree is a prefix of the newer one's, with both digests."""
    return proofs.consistency(get_transport(), from_digest, to_digest)


@app.get(
    "/integrity/verify",
    summary="Verify the hash chain over a seq range",
    responses=ERROR_RESPONSES,
    tags=["integrity"],
)
def verify(
    from_seq: Annotated[int, Query(ge=1, le=MAX_SEQ)] = 1,
    to_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ, description="Default: the chain head")] = None,
) -> VerifyResponse:
    """Recompute checksums and links; name the first bad seq and why."""
    result = verify_chain(get_transport(), from_seq=from_seq, to_seq=to_seq, max_rows=get_settings().verify_max_rows)
    metrics.add_metric(name="ChainVerified", unit=MetricUnit.Count, value=result.checked)
    if not result.valid:
        logger.error(
            "chain verification failed",
            extra={
                "first_invalid_seq": result.first_invalid_seq,
                "reason": result.reason,
                "detail": result.message,
            },
        )
        metrics.add_metric(name="ChainInvalid", unit=MetricUnit.Count, value=1)
    return result


lambda_handler = api_lambda_handler(app)
"""API Gateway proxy event in, proxy response out."""
