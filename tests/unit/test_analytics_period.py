"""GET /analytics: the period and bucket a request asks for, defaults and refusals (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from analytics.config import AnalyticsSettings
from analytics.service import resolve_period
from audit_common.errors import InvalidInput

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SETTINGS = AnalyticsSettings()


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(hours=1), "5m"),
        (timedelta(hours=24), "5m"),
        (timedelta(days=3), "15m"),
        (timedelta(days=7), "1h"),
        (timedelta(days=30), "3h"),
        (timedelta(days=90), "12h"),
        (timedelta(days=400), "7d"),
    ],
)
def test_the_bucket_is_the_smallest_giving_at_most_300(span: timedelta, bucket: str) -> None:
    """Given a span and no bucket, then the smallest bucket that keeps the answer at 300 buckets or fewer."""
    period = resolve_period(NOW - span, NOW, None, SETTINGS, now=NOW)

    assert period.bucket == bucket
    assert span.total_seconds() / period.bucket_seconds <= 300


def test_defaults_are_the_last_24_hours() -> None:
    """Given nothing, then [now - 24 h, now) in 5-minute buckets; given only `to`, the 24 hours before it."""
    assert resolve_period(None, None, None, SETTINGS, now=NOW) == resolve_period(
        NOW - timedelta(hours=24), NOW, "5m", SETTINGS
    )
    end = NOW - timedelta(days=2)
    assert resolve_period(None, end, "1h", SETTINGS, now=NOW).start == end - timedelta(hours=24)


def test_times_are_kept_in_utc() -> None:
    """Given an offset, then the period is the same instant in UTC."""
    paris = datetime(2026, 11, 27, 10, 0, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    period = resolve_period(paris - timedelta(hours=2), paris, "1h", SETTINGS)
    assert (period.start.tzinfo, period.end) == (UTC, datetime(2026, 11, 27, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("start", "end", "bucket", "field", "message"),
    [
        (NOW, NOW, None, "to", "must be after from"),
        (NOW, NOW - timedelta(hours=1), "1h", "to", "must be after from"),
        (NOW - timedelta(days=401), NOW, "7d", "to", "at most 400 days"),
        (
            NOW - timedelta(days=30),
            NOW,
            "5m",
            "bucket",
            "8640 buckets for this period; at most 1000; choose 1h or larger",
        ),
        (NOW - timedelta(hours=1), NOW, "2m", "bucket", "must be one of 5m, 15m"),
        # the calendar's edges (found by the API fuzz: they were 500s)
        (None, datetime(1, 1, 1, tzinfo=UTC), None, "to", "too early for the default period"),
        (
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
            NOW,
            None,
            "from",
            "outside the years 1 to 9999",
        ),
        (
            NOW,
            datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
            None,
            "to",
            "outside the years 1 to 9999",
        ),
    ],
)
def test_refusals_name_the_field(
    start: datetime | None, end: datetime, bucket: str | None, field: str, message: str
) -> None:
    """Given a period that cannot be answered, then InvalidInput names the query parameter and why."""
    with pytest.raises(InvalidInput) as refused:
        resolve_period(start, end, bucket, SETTINGS, now=NOW)

    assert [(e.field, e.index) for e in refused.value.errors] == [(field, None)]
    assert message in refused.value.errors[0].message
    assert "nothing was stored" not in refused.value.message


def test_settings_refuse_an_unknown_zone_and_reversed_hours() -> None:
    """Given a bad working-hours configuration, then the settings refuse it at start-up."""
    with pytest.raises(ValueError, match="unknown time zone"):
        AnalyticsSettings(timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="workday_start"):
        AnalyticsSettings(workday_start=18, workday_end=8)
