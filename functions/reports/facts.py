"""What the database says about a period: each query of the SQL API run once, on first use.

Every number here is computed in SQL (supabase/migrations/20261127110000_reports.sql); Python only
receives aggregates and short, limited lists, so memory does not grow with the number of events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Final

from audit_common.db import Transport

LIST_LIMIT: Final = 25
"""Rows per evidence table (the counts are always complete; the tables show the first rows)."""


class Facts:
    """Lazy access to the report queries for one period."""

    def __init__(self, transport: Transport, start: datetime, end: datetime, *, skew_seconds: int) -> None:
        self.transport = transport
        self.start = start
        self.end = end
        self.skew_seconds = skew_seconds
        # Hourly points for periods up to two days, daily beyond (a month stays ~30 points).
        self.bucket = "hour" if end - start <= timedelta(days=2) else "day"

    def _period(self) -> dict[str, Any]:
        return {"p_start": self.start.isoformat(), "p_end": self.end.isoformat()}

    @cached_property
    def overview(self) -> dict[str, Any]:
        """Counts, per-row checks (completeness, clock, retention), types and the trend."""
        result: dict[str, Any] = self.transport.call(
            "report_overview", {**self._period(), "p_bucket": self.bucket, "p_skew_seconds": self.skew_seconds}
        )
        return result

    @property
    def total(self) -> int:
        """Events in the period."""
        return int(self.overview["total_events"])

    def tag_access(self, tag: str) -> dict[str, Any]:
        """Per-user access to events tagged `tag`."""
        return self._cached(f"tag:{tag}", "report_tag_access", {**self._period(), "p_tag": tag, "p_limit": LIST_LIMIT})

    @cached_property
    def failed_access(self) -> dict[str, Any]:
        """Refused logins and object access."""
        return self._cached("failed", "report_failed_access", {**self._period(), "p_limit": LIST_LIMIT})

    @cached_property
    def admin_actions(self) -> dict[str, Any]:
        """Permission changes and admin actions."""
        return self._cached("admin", "report_admin_actions", {**self._period(), "p_limit": LIST_LIMIT})

    def sod_conflicts(self, tag: str = "sox") -> dict[str, Any]:
        """Segregation-of-duties conflicts on data tagged `tag`."""
        return self._cached(
            f"sod:{tag}", "report_sod_conflicts", {**self._period(), "p_tag": tag, "p_limit": LIST_LIMIT}
        )

    def alerts(self, review_hours: int) -> dict[str, Any]:
        """Alerts of the period and their review, `review_hours` being the expected cadence."""
        return self._cached(
            f"alerts:{review_hours}",
            "report_alerts",
            {**self._period(), "p_review_hours": review_hours, "p_limit": LIST_LIMIT},
        )

    def retention(self, tag: str | None) -> dict[str, Any]:
        """Retention policy and history for `tag` (None: the default policy)."""
        return self._cached(f"retention:{tag}", "report_retention", {"p_tag": tag})

    @cached_property
    def gdpr_requests(self) -> dict[str, Any]:
        """Art. 15 exports and Art. 17 erasures recorded in the period."""
        return self._cached("gdpr", "report_gdpr_requests", {**self._period(), "p_limit": 100})

    def notable_events(self, limit: int) -> list[dict[str, Any]]:
        """Events worth a look, each with why (the first `limit` in seq order)."""
        if self.overview["min_seq"] is None:
            return []
        rows: list[dict[str, Any]] = self.transport.call(
            "report_notable_events",
            {
                **self._period(),
                "p_from_seq": self.overview["min_seq"],
                "p_to_seq": self.overview["max_seq"],
                "p_skew_seconds": self.skew_seconds,
                "p_limit": limit,
            },
        )
        return rows

    def _cached(self, name: str, function: str, args: dict[str, Any]) -> dict[str, Any]:
        cache: dict[str, dict[str, Any]] = self.__dict__.setdefault("_results", {})
        if name not in cache:
            cache[name] = self.transport.call(function, args)
        return cache[name]
