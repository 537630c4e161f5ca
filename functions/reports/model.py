"""The compliance report: one model for six standards. The JSON format IS this model.

Contract with the HTML renderer (`reports.html.render_html(report) -> str`): every field here is
plain JSON (strings, numbers, lists, dicts), so the same object feeds the JSON file, the HTML page
and the API's metadata answers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

GENERATOR_NAME: Final = "audit-trail-reports"
GENERATOR_VERSION: Final = "1.0.0"


class Standard(StrEnum):
    """The standards a report can be made for (the values are the compliance tags)."""

    GDPR = "gdpr"
    HIPAA = "hipaa"
    SOX = "sox"
    PCI_DSS = "pci_dss"
    ISO_27001 = "iso_27001"
    CIS = "cis"


STANDARD_TITLES: Final[dict[Standard, str]] = {
    Standard.GDPR: "GDPR (Regulation (EU) 2016/679)",
    Standard.HIPAA: "HIPAA Security Rule (45 CFR 164)",
    Standard.SOX: "SOX Section 404 IT general controls",
    Standard.PCI_DSS: "PCI DSS v4.0, Requirement 10",
    Standard.ISO_27001: "ISO/IEC 27001:2022 Annex A",
    Standard.CIS: "CIS Controls v8, Control 8 (Audit Log Management)",
}


class Status(StrEnum):
    """A section's verdict, ordered from best to worst."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    ATTENTION = "attention"
    FAIL = "fail"


_STATUS_RANK: Final = {Status.PASS: 0, Status.ATTENTION: 1, Status.FAIL: 2}


def worst(statuses: list[Status]) -> Status:
    """The worst of some statuses (pass when there are none)."""
    return max(statuses, key=_STATUS_RANK.__getitem__, default=Status.PASS)


class Generator(BaseModel):
    """What produced the report."""

    model_config = ConfigDict(frozen=True)

    name: str = GENERATOR_NAME
    version: str = GENERATOR_VERSION


class Metadata(BaseModel):
    """Who made which report over what."""

    report_id: str = Field(description="UUID of the report")
    standard: Standard
    standard_title: str
    period_start: str = Field(description="RFC 3339 UTC, inclusive")
    period_end: str = Field(description="RFC 3339 UTC, exclusive")
    generated_at: str = Field(description="RFC 3339 UTC")
    generator: Generator = Generator()
    generated_by: str = Field(description='The principal, or "schedule:<name>"')
    scope: dict[str, Any] = Field(default_factory=dict, description="Scope filters (e.g. compliance tag)")
    trigger: Literal["api", "schedule"]


class Failures(BaseModel):
    """Events with status failure in the period."""

    count: int
    rate: float = Field(description="failures / events (0 when there are no events)")


class RiskBucket(BaseModel):
    """One point of the risk trend (per day, or per hour for periods up to two days)."""

    bucket_start: str
    events: int
    failures: int
    alerts: int
    max_risk_score: float | None = None


class Summary(BaseModel):
    """The period at a glance."""

    total_events: int
    distinct_users: int
    failures: Failures
    alerts_by_severity: dict[str, int] = Field(description="severity -> count (low, medium, high, critical)")
    risk_trend: list[RiskBucket]
    trend_granularity: Literal["hour", "day"] = "day"
    events_by_type: dict[str, int]
    overall_status: Status = Field(description="The worst section status")


class EvidenceTable(BaseModel):
    """A small table of evidence; cells are JSON scalars."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(default=False, description="More rows exist than are shown")


class Section(BaseModel):
    """One control of the standard, with its evidence and verdict."""

    control_id: str = Field(description='e.g. "10.2.1.4", "164.312(c)(1)", "A.8.17", "Art. 17"')
    title: str
    requirement: str = Field(description="One sentence: what the control asks")
    status: Status
    status_reason: str = Field(description="One sentence: why this status")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Named numbers or strings")
    evidence: list[EvidenceTable] = Field(default_factory=list)
    notes: str | None = None


class Digest(BaseModel):
    """The newest signed digest (anchor) of the chain."""

    digest_seq: int
    tree_size: int
    root_hash: str
    created_at: str
    signing_key_id: str | None = None


class Integrity(BaseModel):
    """Chain verification for the period, and the newest digest (null: no digest yet)."""

    valid: bool
    checked: int
    first_invalid_seq: int | None = None
    reason: str | None = None
    method: str = Field(description="Exactly what was checked, and how")
    digest: Digest | None = None


class NotableEvent(BaseModel):
    """An event an auditor should look at, and why."""

    event_id: str
    seq: int
    timestamp: str
    event_type: str
    user_id: str | None = None
    ip_address: str | None = None
    resource_path: str | None = None
    status: str | None = None
    security_level: str | None = None
    why: str


class Report(BaseModel):
    """A complete compliance report."""

    metadata: Metadata
    summary: Summary
    sections: list[Section]
    integrity: Integrity
    notable_events: list[NotableEvent]
    empty: bool = Field(description="No events in the period: the report is valid and says so")
