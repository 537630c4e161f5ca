"""Reports Lambda: `POST /reports`, `GET /reports`, `GET /reports/{report_id}`, and scheduled reports
(EventBridge Scheduler Input `{"action": "scheduled_report", ...}`). Parsing and mapping only."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, ValidationError

from audit_common.db import get_transport, transport_from_settings
from audit_common.errors import ConfigurationError
from audit_common.guard import caller
from audit_common.http import ERROR_RESPONSES, api_lambda_handler, create_resolver
from audit_common.observability import logger, metrics, tracer
from audit_common.scheduled import require_action
from audit_common.settings import get_settings
from audit_common.validation import invalid_input
from reports.model import Standard
from reports.notify import ReportPublisher
from reports.request import ACTION, ReportFormat, ReportRequest, ScheduledReport
from reports.service import ReportLimits, ReportOut, ReportPage, ReportService
from reports.storage import ReportStore

app = create_resolver()


def service() -> ReportService:
    """The service over the configured transport and bucket (503 when no bucket is configured)."""
    settings = get_settings()
    if not settings.reports_bucket:
        raise ConfigurationError("no reports bucket configured (AUDIT_REPORTS_BUCKET)")
    return ReportService(
        get_transport(),
        _store(settings.reports_bucket, settings.reports_kms_key_id),
        limits(),
        stream_transport=lambda: transport_from_settings(get_settings()),
    )


@cache
def _store(bucket: str, kms_key_id: str | None) -> ReportStore:
    return ReportStore(bucket, kms_key_id)


def limits() -> ReportLimits:
    """The report limits from the settings."""
    settings = get_settings()
    return ReportLimits(
        max_period_days=settings.report_max_period_days,
        skew_seconds=settings.report_clock_skew_seconds,
        csv_page_rows=settings.report_csv_page_rows,
        url_expiry_seconds=settings.report_url_expiry_seconds,
        url_max_expiry_seconds=settings.report_url_max_expiry_seconds,
    )


ExpiresIn = Annotated[
    int | None, Query(ge=1, description="Seconds the download URLs stay valid (default 900; 60..configured maximum)")
]


@app.post(
    "/reports",
    summary="Generate a compliance report for a standard and period",
    responses={201: {"description": "Report generated and stored"}, **ERROR_RESPONSES},
    tags=["reports"],
)
def create_report(body: Annotated[ReportRequest, Body()]) -> Response[ReportOut]:
    """Build the report in SQL, store JSON, CSV and HTML in S3, answer with presigned links."""
    report = service().generate(body, generated_by=caller(app).label, trigger="api")
    metrics.add_metric(name="ReportsGenerated", unit=MetricUnit.Count, value=1)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=report)


@app.get("/reports", summary="List reports, newest first", responses=ERROR_RESPONSES, tags=["reports"])
def list_reports(
    standard: Annotated[Standard | None, Query()] = None,
    start: Annotated[
        AwareDatetime | None, Query(alias="from", description="Reports whose period ends after this")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(alias="to", description="Reports whose period starts before this")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")] = None,
    expires_in: ExpiresIn = None,
) -> ReportPage:
    """Reports with fresh download links."""
    return service().list(standard=standard, start=start, end=end, limit=limit, cursor=cursor, expires_in=expires_in)


@app.get(
    "/reports/<report_id>",
    summary="A report with a fresh presigned download URL",
    responses={404: {"description": "Unknown report, or a format it does not have"}, **ERROR_RESPONSES},
    tags=["reports"],
)
def get_report(
    report_id: Annotated[str, Path(max_length=64)],
    format: Annotated[ReportFormat | None, Query(description="html (default), json or csv")] = None,
    expires_in: ExpiresIn = None,
) -> ReportOut:
    """The report's record; `download_url` points at the chosen format."""
    return service().get(report_id, fmt=format, expires_in=expires_in)


api_handler = api_lambda_handler(app)


@cache
def publisher() -> ReportPublisher:
    """The process-wide report-ready publisher (503 when no bus is configured)."""
    bus = get_settings().event_bus_name
    if not bus:
        raise ConfigurationError("no event bus configured (AUDIT_EVENT_BUS_NAME)")
    return ReportPublisher(bus)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def scheduled_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Scheduler Input -> the report of the previous day, week or month -> "report ready" on the bus."""
    require_action(event, ACTION)
    try:
        job = ScheduledReport.model_validate(event)
    except ValidationError as exc:
        raise invalid_input(exc.errors()) from None
    reports = service()
    request = job.to_request(datetime.now(UTC))
    report = reports.generate(request, generated_by=job.principal, trigger="schedule")
    # The event outlives a short link: it carries the longest one allowed (GET /reports/{id} renews it).
    announced = reports.get(report.report_id, fmt=None, expires_in=reports.limits.url_max_expiry_seconds)
    publisher().report_ready(announced)
    metrics.add_metric(name="ScheduledReports", unit=MetricUnit.Count, value=1)
    logger.info(
        "scheduled report",
        extra={"report_id": report.report_id, "standard": job.standard.value, "overall": report.overall_status},
    )
    return announced.model_dump(mode="json")


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One function, two triggers: API Gateway proxy events carry requestContext, schedules do not."""
    if isinstance(event, dict) and "requestContext" in event:
        return api_handler(event, context)
    answer: dict[str, Any] = scheduled_handler(event, context)
    return answer
