"""Make, store, list and fetch compliance reports. Knows nothing of Lambda events or HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from audit_common.cursor import decode_cursor, encode_cursor
from audit_common.db import Transport
from audit_common.errors import FieldError, NotFound
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn, ComplianceStandard, EventType, SecurityLevel
from audit_common.validation import invalid_input
from reports.facts import Facts
from reports.html import render_html
from reports.integrity import check_integrity
from reports.model import (
    STANDARD_TITLES,
    Failures,
    Metadata,
    NotableEvent,
    Report,
    RiskBucket,
    Standard,
    Status,
    Summary,
    worst,
)
from reports.request import ReportFormat, ReportRequest
from reports.standards import BUILDERS
from reports.storage import CONTENT_TYPES, ReportStore, StoredObject, report_key

NOTABLE_EVENTS: Final = 50
CSV_COLUMNS: Final = (
    "seq,event_id,timestamp,event_type,user_id,ip_address,action,resource_path,resource_id,status,"
    "security_level,compliance_tags,received_at,redaction_reason,checksum,chain_hash\r\n"
)
MIN_EXPIRES_IN: Final = 60


class ReportLimits(BaseModel):
    """The settings a report run needs (from audit_common.settings)."""

    max_period_days: int = 366
    skew_seconds: int = 300
    csv_page_rows: int = 10_000
    url_expiry_seconds: int = 900
    url_max_expiry_seconds: int = 43_200


class ReportFile(BaseModel):
    """One stored file of a report."""

    key: str
    sha256: str = Field(description="SHA-256 (hex) of the object's bytes")
    size_bytes: int
    content_type: str
    download_url: str | None = Field(default=None, description="Presigned GET URL (expires after expires_in)")


class ReportOut(BaseModel):
    """A report's record and fresh download links."""

    report_id: str
    standard: Standard
    period_start: str
    period_end: str
    status: str = Field(description="generating, ready or failed")
    trigger: str
    generated_by: str
    generated_at: str
    completed_at: str | None = None
    overall_status: Status | None = None
    total_events: int | None = None
    formats: dict[str, ReportFile] = Field(default_factory=dict)
    download_url: str | None = Field(default=None, description="The chosen format's URL (HTML by default)")
    download_format: str | None = None
    expires_in: int | None = Field(default=None, description="Seconds the download URLs stay valid")
    error: str | None = None


class ReportPage(BaseModel):
    """A page of reports, newest first."""

    reports: list[ReportOut]
    next_cursor: str | None = None


def build_report(
    transport: Transport,
    request: ReportRequest,
    *,
    report_id: str,
    generated_at: datetime,
    generated_by: str,
    trigger: str,
    skew_seconds: int,
) -> Report:
    """The report for one standard and period, from aggregates computed in SQL."""
    facts = Facts(transport, request.start, request.end, skew_seconds=skew_seconds)
    overview = facts.overview
    integrity = check_integrity(transport, overview["min_seq"], overview["max_seq"])
    sections = BUILDERS[request.standard](facts, integrity)
    # A broken chain fails every report, whichever controls the standard names.
    overall = worst([s.status for s in sections] + ([] if integrity.valid else [Status.FAIL]))
    total, failures = int(overview["total_events"]), int(overview["failures"])
    alerts = facts.alerts(24)
    summary = Summary(
        total_events=total,
        distinct_users=int(overview["distinct_users"]),
        failures=Failures(count=failures, rate=round(failures / total, 4) if total else 0.0),
        alerts_by_severity=alerts["by_severity"],
        risk_trend=[RiskBucket.model_validate(point) for point in overview["risk_trend"]],
        trend_granularity=facts.bucket,
        events_by_type=overview["events_by_type"],
        overall_status=overall,
    )
    metadata = Metadata(
        report_id=report_id,
        standard=request.standard,
        standard_title=STANDARD_TITLES[request.standard],
        period_start=_rfc3339(request.start),
        period_end=_rfc3339(request.end),
        generated_at=_rfc3339(generated_at),
        generated_by=generated_by,
        scope={"events": "all events with a timestamp in [period_start, period_end)", "formats": request.formats},
        trigger="schedule" if trigger == "schedule" else "api",
    )
    notable = [NotableEvent.model_validate(row) for row in facts.notable_events(NOTABLE_EVENTS)] if total else []
    return Report(
        metadata=metadata,
        summary=summary,
        sections=sections,
        integrity=integrity,
        notable_events=notable,
        empty=total == 0,
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_csv(transport: Transport, write: Callable[[bytes], None], request: ReportRequest, page_rows: int) -> int:
    """Stream the period's events as CSV, one page (keyset by seq) at a time; returns the rows written."""
    write(CSV_COLUMNS.encode())
    bounds = transport.call(
        "report_seq_range", {"p_start": request.start.isoformat(), "p_end": request.end.isoformat()}
    )
    min_seq, max_seq = bounds["min_seq"], bounds["max_seq"]
    if min_seq is None or max_seq is None:
        return 0
    after, rows = min_seq - 1, 0
    while after < max_seq:
        page = transport.call(
            "report_events_csv",
            {
                "p_start": request.start.isoformat(),
                "p_end": request.end.isoformat(),
                "p_after_seq": after,
                "p_to_seq": max_seq,
                "p_limit": page_rows,
            },
        )
        if not page["rows"]:
            break
        write(page["csv"].encode())
        rows += int(page["rows"])
        after = int(page["last_seq"])
    return rows


class ReportService:
    """Generates reports into S3 and records them; answers with presigned links."""

    def __init__(
        self,
        transport: Transport,
        store: ReportStore,
        limits: ReportLimits,
        *,
        stream_transport: Callable[[], Transport] | None = None,
    ) -> None:
        """`stream_transport` opens a second connection for the CSV, so that the database builds the
        CSV pages on one core while it aggregates on another; without it the CSV follows the report."""
        self.transport = transport
        self.store = store
        self.limits = limits
        self.stream_transport = stream_transport

    def generate(self, request: ReportRequest, *, generated_by: str, trigger: str) -> ReportOut:
        """Check the request, build the report, store each format, record it; 422 before anything is written."""
        request.check_limits(max_days=self.limits.max_period_days)
        report_id = str(uuid.uuid4())
        generated_at = datetime.now(UTC)
        self.transport.call(
            "report_begin",
            {
                "p_report": {
                    "report_id": report_id,
                    "standard": request.standard.value,
                    "period_start": request.start.isoformat(),
                    "period_end": request.end.isoformat(),
                    "trigger": trigger,
                    "generated_by": generated_by,
                    "scope": {"formats": request.formats},
                    "bucket": self.store.bucket,
                    "generated_at": generated_at.isoformat(),
                }
            },
        )
        try:
            stored: dict[str, StoredObject] = {}
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-csv") as pool:
                csv_job = (
                    pool.submit(self._store_csv, request, report_id, self.stream_transport)
                    if "csv" in request.formats and self.stream_transport is not None
                    else None
                )
                report = build_report(
                    self.transport,
                    request,
                    report_id=report_id,
                    generated_at=generated_at,
                    generated_by=generated_by,
                    trigger=trigger,
                    skew_seconds=self.limits.skew_seconds,
                )
                if csv_job is not None:
                    stored["csv"] = csv_job.result()
            if "csv" in request.formats and "csv" not in stored:
                stored["csv"] = self._store_csv(request, report_id, None)
            stored.update(self._store_documents(request, report_id, report))
            # Recorded before the report is marked ready: a report the trail does not know of is a failed one.
            self._record_in_trail(report, stored, generated_by)
            record = self.transport.call(
                "report_complete",
                {
                    "p_report_id": report_id,
                    "p_formats": {fmt: obj.as_dict() for fmt, obj in stored.items()},
                    "p_overall_status": report.summary.overall_status.value,
                    "p_total_events": report.summary.total_events,
                },
            )
        except Exception as exc:
            self.transport.call("report_fail", {"p_report_id": report_id, "p_error": f"{type(exc).__name__}: {exc}"})
            raise
        return self.answer(record, expires_in=self.limits.url_expiry_seconds)

    def _key(self, request: ReportRequest, report_id: str, fmt: str) -> str:
        return report_key(request.standard.value, request.start, report_id, fmt)

    def _store_csv(
        self, request: ReportRequest, report_id: str, open_transport: Callable[[], Transport] | None
    ) -> StoredObject:
        """The CSV, streamed from the database into a multipart upload (on its own connection when given one)."""
        transport = open_transport() if open_transport is not None else self.transport
        try:
            with self.store.stream(self._key(request, report_id, "csv"), CONTENT_TYPES["csv"]) as upload:
                write_csv(transport, upload.write, request, self.limits.csv_page_rows)
                return upload.close()
        finally:
            if open_transport is not None:
                transport.close()

    def _store_documents(self, request: ReportRequest, report_id: str, report: Report) -> dict[str, StoredObject]:
        stored: dict[str, StoredObject] = {}
        if "json" in request.formats:
            body = report.model_dump_json(indent=2).encode()
            stored["json"] = self.store.put(self._key(request, report_id, "json"), body, CONTENT_TYPES["json"])
        if "html" in request.formats:
            page = render_html(report).encode()
            stored["html"] = self.store.put(self._key(request, report_id, "html"), page, CONTENT_TYPES["html"])
        return stored

    def _record_in_trail(self, report: Report, stored: dict[str, StoredObject], generated_by: str) -> None:
        # Making a report reads the trail: that access is itself evidence (PCI DSS 10.2.1.3).
        meta = report.metadata
        event = AuditEventIn(
            event_id=f"report-{meta.report_id}",
            event_type=EventType.SYSTEM_EVENT,
            user_id=generated_by,
            resource_path=f"/reports/{meta.report_id}",
            resource_id=meta.report_id,
            action="report_generated",
            details={
                "standard": meta.standard.value,
                "period_start": meta.period_start,
                "period_end": meta.period_end,
                "overall_status": report.summary.overall_status.value,
                "sha256": {fmt: obj.sha256 for fmt, obj in stored.items()},
            },
            security_level=SecurityLevel.MEDIUM,
            compliance_tags=[ComplianceStandard(meta.standard.value)],
        )
        store_events(self.transport, [event])

    def get(self, report_id: str, *, fmt: ReportFormat | None, expires_in: int | None) -> ReportOut:
        """A report's record with fresh links; 404 when unknown or the format was not produced."""
        try:
            uuid.UUID(report_id)
        except ValueError:
            raise NotFound(f"report_id: no report {report_id!r}") from None
        record = self.transport.call("report_get", {"p_report_id": report_id})
        if record is None:
            raise NotFound(f"report_id: no report {report_id!r}")
        if fmt is not None and record["status"] == "ready" and fmt not in record["formats"]:
            raise NotFound(f"format: report {report_id} has no {fmt} (it has {', '.join(sorted(record['formats']))})")
        return self.answer(record, expires_in=self.expiry(expires_in), fmt=fmt)

    def list(
        self,
        *,
        standard: Standard | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        cursor: str | None,
        expires_in: int | None,
    ) -> ReportPage:
        """Reports newest first, optionally of one standard and overlapping [start, end)."""
        before: dict[str, Any] = {}
        if cursor:
            position = decode_cursor(cursor, {"g": str, "id": str})
            before = {"p_before_generated_at": position["g"], "p_before_id": position["id"]}
        rows = self.transport.call(
            "report_list",
            {
                "p_standard": standard.value if standard else None,
                "p_from": start.isoformat() if start else None,
                "p_to": end.isoformat() if end else None,
                "p_limit": limit,
                **before,
            },
        )
        seconds = self.expiry(expires_in)
        reports = [self.answer(row, expires_in=seconds) for row in rows]
        next_cursor = (
            encode_cursor({"g": rows[-1]["generated_at"], "id": rows[-1]["report_id"]}) if len(rows) == limit else None
        )
        return ReportPage(reports=reports, next_cursor=next_cursor)

    def expiry(self, expires_in: int | None) -> int:
        """`expires_in` checked against the configured bounds (422 naming it), or the default."""
        if expires_in is None:
            return self.limits.url_expiry_seconds
        if not MIN_EXPIRES_IN <= expires_in <= self.limits.url_max_expiry_seconds:
            raise invalid_input(
                [FieldError("expires_in", f"must be between {MIN_EXPIRES_IN} and {self.limits.url_max_expiry_seconds}")]
            )
        return expires_in

    def answer(self, record: dict[str, Any], *, expires_in: int, fmt: str | None = None) -> ReportOut:
        """The API's view of a report record, with presigned URLs when it is ready."""
        files: dict[str, ReportFile] = {}
        ready = record["status"] == "ready"
        for name, obj in (record.get("formats") or {}).items():
            url = None
            if ready:
                filename = f"{record['standard']}-report-{record['report_id']}.{name}"
                url = self.store.presigned_url(obj["key"], expires_in, filename=filename)
            files[name] = ReportFile(
                **{k: obj[k] for k in ("key", "sha256", "size_bytes", "content_type")}, download_url=url
            )
        chosen = fmt or next((f for f in ("html", "json", "csv") if f in files), None)
        return ReportOut(
            report_id=record["report_id"],
            standard=Standard(record["standard"]),
            period_start=record["period_start"],
            period_end=record["period_end"],
            status=record["status"],
            trigger=record["trigger"],
            generated_by=record["generated_by"],
            generated_at=record["generated_at"],
            completed_at=record.get("completed_at"),
            overall_status=Status(record["overall_status"]) if record.get("overall_status") else None,
            total_events=record.get("total_events"),
            formats=files,
            download_url=files[chosen].download_url if chosen in files else None,
            download_format=chosen if chosen in files else None,
            expires_in=expires_in if ready else None,
            error=record.get("error"),
        )
