"""GET /analytics without HTTP: the period and bucket checked and chosen, then one SQL API call.

The aggregation is `audit.analytics()` (supabase/migrations/20261127140000_analytics.sql); this module
only decides what to ask for and validates the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic_core import PydanticCustomError

from analytics.config import AnalyticsSettings
from analytics.model import AnalyticsOut
from audit_common.db import Transport
from audit_common.errors import InvalidInput
from audit_common.models import to_utc
from audit_common.validation import invalid_input

BUCKETS: Final[dict[str, int]] = {
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "3h": 3 * 3600,
    "6h": 6 * 3600,
    "12h": 12 * 3600,
    "1d": 86400,
    "7d": 7 * 86400,
}
"""Bucket sizes by name: whole numbers of the rollups' 5-minute slot."""


@dataclass(frozen=True)
class Period:
    """What one request asks for, checked: [start, end) in buckets of `bucket`."""

    start: datetime
    end: datetime
    bucket: str

    @property
    def bucket_seconds(self) -> int:
        """The bucket size in seconds."""
        return BUCKETS[self.bucket]


def _refuse(field: str, message: str) -> InvalidInput:
    return invalid_input([{"loc": ("query", field), "msg": message, "type": "value_error"}])


def resolve_period(
    start: datetime | None,
    end: datetime | None,
    bucket: str | None,
    settings: AnalyticsSettings,
    now: datetime | None = None,
) -> Period:
    """Fill in the defaults (the last `default_period_hours` up to now; the smallest bucket giving at
    most `target_buckets`), then refuse what cannot be answered, naming the query parameter."""
    now = now or datetime.now(UTC)
    end = _utc(end or now, "to")
    if start is None:
        try:
            start = end - timedelta(hours=settings.default_period_hours)
        except OverflowError:  # `to` in the first hours of year 1: no default period ends then
            raise _refuse("to", "too early for the default period; give from as well") from None
    start = _utc(start, "from")
    if end <= start:
        raise _refuse("to", "must be after from")
    span = (end - start).total_seconds()
    if span > settings.max_period_days * 86400:
        raise _refuse("to", f"the period spans {span / 86400:.1f} days; at most {settings.max_period_days} days")
    if bucket is None:
        fitting = [name for name, seconds in BUCKETS.items() if math.ceil(span / seconds) <= settings.target_buckets]
        bucket = fitting[0] if fitting else "7d"
    elif bucket not in BUCKETS:
        raise _refuse("bucket", f"must be one of {', '.join(BUCKETS)}")
    buckets = math.ceil(span / BUCKETS[bucket])
    if buckets > settings.max_buckets:
        fits = [name for name, seconds in BUCKETS.items() if math.ceil(span / seconds) <= settings.max_buckets]
        hint = f"; choose {fits[0]} or larger" if fits else ""
        limit = settings.max_buckets
        raise _refuse("bucket", f"{bucket} gives {buckets} buckets for this period; at most {limit}{hint}")
    return Period(start=start, end=end, bucket=bucket)


def _utc(value: datetime, field: str) -> datetime:
    try:
        return to_utc(value)
    except PydanticCustomError as refused:
        raise _refuse(field, refused.message()) from None


class AnalyticsService:
    """Security trends from the SQL API."""

    def __init__(self, transport: Transport, settings: AnalyticsSettings) -> None:
        self._transport = transport
        self._settings = settings

    def trends(self, period: Period) -> AnalyticsOut:
        """Bring the rollups up to date (bounded), then read the period (`audit.analytics_report`, one
        snapshot); the answer is validated against the response model."""
        settings = self._settings
        if settings.refresh_max_events:
            # Its own statement (and transaction): the rollups keep what it added even if the read
            # below fails, so a large backlog is worked off call by call instead of never.
            self._transport.call("analytics_refresh", {"p_max_events": settings.refresh_max_events})
        answer = self._transport.call(
            "analytics_report",
            {
                "p_from": period.start.isoformat(),
                "p_to": period.end.isoformat(),
                "p_bucket_seconds": period.bucket_seconds,
                "p_workday_start": settings.workday_start,
                "p_workday_end": settings.workday_end,
                "p_workdays": "{" + ",".join(str(day) for day in settings.workdays) + "}",
                "p_timezone": settings.timezone,
                "p_top": settings.top,
                "p_verify_tail": settings.verify_tail,
            },
        )
        return AnalyticsOut.model_validate({**answer, "bucket": period.bucket})
