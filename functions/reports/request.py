"""What a report is asked for: the API body, or a schedule's relative period, checked before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from audit_common.errors import FieldError
from audit_common.models import to_utc
from audit_common.validation import invalid_input
from reports.model import Standard

ReportFormat = Literal["json", "csv", "html"]
ALL_FORMATS: Final[tuple[ReportFormat, ...]] = ("json", "csv", "html")
ACTION: Final = "scheduled_report"


def _utc(value: datetime) -> datetime:
    return to_utc(value)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


class ReportRequest(BaseModel):
    """`POST /reports`: a standard and a period [start, end) in RFC 3339 with a zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    standard: Standard
    start: UtcDatetime = Field(description="Period start, inclusive (RFC 3339 with a zone)")
    end: UtcDatetime = Field(description="Period end, exclusive (RFC 3339 with a zone)")
    formats: list[ReportFormat] = Field(
        default=list(ALL_FORMATS), min_length=1, max_length=3, description="Which files to produce (default all)"
    )

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after start")
        return end

    def check_limits(self, *, max_days: int, now: datetime | None = None) -> None:
        """Refuse (422, naming the field) a period longer than allowed or starting in the future."""
        errors: list[FieldError] = []
        if self.end - self.start > timedelta(days=max_days):
            errors.append(FieldError("end", f"the period is longer than {max_days} days (the configured maximum)"))
        if self.start > (now or datetime.now(UTC)):
            errors.append(FieldError("start", "must not be in the future"))
        if len(set(self.formats)) != len(self.formats):
            errors.append(FieldError("formats", "must not repeat a format"))
        if errors:
            raise invalid_input(errors)


class RelativePeriod(StrEnum):
    """Periods a schedule asks for, relative to the moment it runs (UTC calendar units)."""

    PREVIOUS_DAY = "previous_day"
    PREVIOUS_WEEK = "previous_week"
    PREVIOUS_MONTH = "previous_month"


class ScheduledReport(BaseModel):
    """A schedule's explicit Input: `{"action": "scheduled_report", "standard", "period", "schedule"?}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["scheduled_report"]
    standard: Standard
    period: RelativePeriod
    schedule: str | None = Field(default=None, max_length=128, description="The schedule's name, for generated_by")
    formats: list[ReportFormat] = Field(default=list(ALL_FORMATS), min_length=1, max_length=3)

    def to_request(self, now: datetime) -> ReportRequest:
        """The absolute period: yesterday, last ISO week (Monday to Monday) or last calendar month."""
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period is RelativePeriod.PREVIOUS_DAY:
            start, end = today - timedelta(days=1), today
        elif self.period is RelativePeriod.PREVIOUS_WEEK:
            end = today - timedelta(days=today.weekday())
            start = end - timedelta(days=7)
        else:
            end = today.replace(day=1)
            start = (end - timedelta(days=1)).replace(day=1)
        return ReportRequest(standard=self.standard, start=start, end=end, formats=self.formats)

    @property
    def principal(self) -> str:
        """generated_by for a scheduled report."""
        return f"schedule:{self.schedule or f'{self.standard.value}-{self.period.value}'}"
