"""The `GET /analytics` answer: what `audit.analytics()` returns, validated on the way out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    # The SQL function owns the shape: an unexpected key is a contract break worth failing on in tests.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Outcomes(_Out):
    """Events of one type by outcome (status)."""

    success: int
    failure: int


class EventBucket(_Out):
    """One time bucket of events."""

    start: str = Field(description="Bucket start, RFC 3339 UTC; buckets are aligned to 2000-01-01T00:00Z.")
    events: int
    failures: int
    failed_logins: int = Field(description="user_login events with status failure.")
    after_hours: int = Field(description="Events outside the working hours (see after_hours).")
    by_type: dict[str, Outcomes] = Field(description="Event types present in the bucket, by outcome.")


class Totals(_Out):
    """The whole period."""

    events: int
    failures: int
    failed_logins: int
    after_hours: int
    by_type: dict[str, Outcomes]


class NewAddress(_Out):
    """An address first seen for the user in the period (never before, in the retained trail)."""

    ip_address: str
    first_seen: str


class NewIpUser(_Out):
    """A user with new addresses."""

    user_id: str
    new_ips: int
    addresses: list[NewAddress] = Field(description="The first 20 new addresses, oldest first.")


class NewIps(_Out):
    """(user, IP address) pairs first seen in the period."""

    pairs: int
    users: int
    top_users: list[NewIpUser]


class AfterHours(_Out):
    """The working-hours window and the activity outside it."""

    workday_start: int = Field(description="Working hours start at this hour (local to timezone).")
    workday_end: int = Field(description="... and end before this hour.")
    workdays: list[int] = Field(description="ISO weekdays that are working days (1 = Monday).")
    timezone: str
    events: int = Field(description="Events outside working hours in the period.")
    by_type: dict[str, int] = Field(description="Those events by type.")


class SeverityCounts(_Out):
    """Alerts by severity."""

    low: int
    medium: int
    high: int
    critical: int


class StatusCounts(_Out):
    """Alerts by handling status."""

    open: int
    acknowledged: int
    resolved: int


class RuleSeverity(_Out):
    """Alerts of one rule at one severity."""

    rule: str
    severity: Literal["low", "medium", "high", "critical"]
    alerts: int
    open: int
    max_risk_score: float


class RiskBin(_Out):
    """Alerts whose risk score is in [score, score + 1) (10: exactly 10)."""

    score: int = Field(ge=0, le=10)
    alerts: int


class RiskyKey(_Out):
    """Alerts keyed by one user or address."""

    alerts: int
    open: int
    max_risk_score: float
    total_risk_score: float
    events: int = Field(description="Events the alerts counted.")
    rules: list[str]
    last_alert_at: str


class RiskyUser(RiskyKey):
    """A user by risk."""

    user_id: str


class RiskyIp(RiskyKey):
    """An IP address by risk."""

    ip_address: str


class AlertBucket(_Out):
    """Alerts whose first evidence lies in one bucket."""

    start: str
    alerts: int
    low: int
    medium: int
    high: int
    critical: int
    max_risk_score: float | None


class AlertStats(_Out):
    """Alerts whose first evidence lies in the period."""

    total: int
    by_severity: SeverityCounts
    by_status: StatusCounts
    by_rule: list[RuleSeverity]
    risk_histogram: list[RiskBin] = Field(min_length=11, max_length=11)
    top_users: list[RiskyUser]
    top_ips: list[RiskyIp]
    buckets: list[AlertBucket]
    open_now: int = Field(description="Open alerts of any period: the queue an auditor works through.")


class DigestSummary(_Out):
    """The newest signed digest."""

    digest_seq: int
    tree_size: int
    root_hash: str
    chain_hash: str
    created_at: str
    period_end: str
    s3_key: str


class IntegrityState(_Out):
    """The chain now: its head, the newest digest, and the newest links recomputed in SQL.

    `status` is `ok` (links valid, digest matches), `unanchored` (links valid, no digest yet) or
    `broken`. Checksums are not recomputed here (RFC 8785): `audit-trail verify` does that offline.
    """

    status: Literal["ok", "unanchored", "broken"]
    head_seq: int
    head_chain_hash: str
    head_updated_at: str
    last_digest: DigestSummary | None
    unanchored_events: int = Field(description="Events after the newest digest's tree_size.")
    digest_age_seconds: float | None
    digest_matches_chain: bool | None = Field(
        description="The event at the digest's tree_size still carries the chain_hash the digest signed."
    )
    links_checked: int
    links_from_seq: int | None
    links_valid: bool
    first_invalid_seq: int | None
    reason: str | None


class DetectionState(_Out):
    """How far detection trails ingestion."""

    watermark: int = Field(description="The sweep has seen every event up to this seq.")
    head_seq: int
    events_above_watermark: int
    swept_at: str | None
    swept_seconds_ago: float | None
    unanalysed: int = Field(description="Events above the watermark that no webhook or sweep analysed yet.")
    unanalysed_capped: bool = Field(description="Only the first 10,000 seqs above the watermark were looked at.")
    oldest_unanalysed_at: str | None
    lag_seconds: float = Field(description="Age of the oldest unanalysed event (0 when none).")


class AnalyticsOut(_Out):
    """Security trends for [from, to) in buckets of bucket_seconds."""

    from_: str = Field(alias="from")
    to: str
    bucket: str = Field(description="The bucket size as requested or chosen (e.g. 5m, 1h, 1d).")
    bucket_seconds: int
    as_of: str
    buckets: list[EventBucket]
    totals: Totals
    new_ips: NewIps
    after_hours: AfterHours
    alerts: AlertStats
    integrity: IntegrityState
    detection: DetectionState
