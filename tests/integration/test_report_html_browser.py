"""The HTML report in a real browser: Debian's chromium, headless, driven by Playwright.

Playwright is told to use the system chromium (`executable_path`), never a browser of its own; `make
install` / `make test` install Debian's chromium when it is missing. A missing browser fails the test
with the fix in the message: it is never skipped, so CI cannot go green without looking at the page.

Each page is opened from a file, as an auditor opens a download, and must load with no console message
of type error or warning (a CSP violation is one), no failed request and no request at all but the page
itself. Full-page PNG screenshots (desktop and phone) and a PDF print go to `test-artifacts/report-html/`
(gitignored); the paths are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import Browser, Page

from audit_common.db import PostgresTransport
from audit_common.settings import get_settings
from reports import handler as reports_handler
from reports.html import MAX_EVIDENCE_ROWS, render_html
from reports.model import (
    STANDARD_TITLES,
    Digest,
    EvidenceTable,
    Failures,
    Integrity,
    Metadata,
    NotableEvent,
    Report,
    RiskBucket,
    Section,
    Standard,
    Status,
    Summary,
    worst,
)
from tests.integration.test_reports import seed
from tests.support.apigw import invoke, proxy_event
from tests.support.aws import moto_account
from tests.support.browser import PageLog, chromium_executable, headless_chromium, new_logged_page

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "audit-reports-html-test"
ARTIFACTS = ROOT / "test-artifacts" / "report-html"
HOSTILE = "<script>alert('owned')</script><img src=x onerror=alert(1)>"

# Chromium runs in a separate process; one xdist worker owns all of this module's pages.
pytestmark = pytest.mark.xdist_group("report-html-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium, launched once for the module."""
    with headless_chromium() as instance:
        yield instance


def _open(browser: Browser, path: Path, *, width: int, height: int, scale: float = 1) -> tuple[Page, PageLog]:
    page, log = new_logged_page(browser, width=width, height=height, scale=scale)
    page.goto(path.as_uri(), wait_until="load")
    return page, log


def _render_and_look(browser: Browser, report: Report, name: str) -> tuple[Page, PageLog, list[Path]]:
    """Render the report and look at it (see `_look`)."""
    return _look(browser, render_html(report).encode(), name)


def _look(browser: Browser, html: bytes, name: str) -> tuple[Page, PageLog, list[Path]]:
    """Write the page, load it on a laptop and a phone, save screenshots and a PDF; return the laptop page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    html_path = ARTIFACTS / f"{name}.html"
    html_path.write_bytes(html)
    saved = [html_path]

    phone, phone_log = _open(browser, html_path, width=390, height=844, scale=2)
    saved.append(ARTIFACTS / f"{name}-phone.png")
    phone.screenshot(path=saved[-1], full_page=True)
    # Nothing on a phone may be wider than the screen but the tables and charts that scroll inside their box.
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    phone.close()

    page, log = _open(browser, html_path, width=1280, height=900)
    saved.append(ARTIFACTS / f"{name}-desktop.png")
    page.screenshot(path=saved[-1], full_page=True)
    page.emulate_media(media="print")
    saved.append(ARTIFACTS / f"{name}-print.pdf")
    page.pdf(path=saved[-1], format="A4", print_background=True)
    page.emulate_media(media="screen")
    for path in saved:
        print(f"report HTML artefact: {path.relative_to(ROOT)}")

    for what in (log, phone_log):
        assert what.console == []
        assert what.errors == []
        assert what.failed == []
        assert what.requests == [html_path.as_uri()], "the page asked for something besides itself"
    assert overflow == 0
    return page, log, saved


# --- realistic reports ------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _daily_trend(start: datetime, days: int, base: int) -> list[RiskBucket]:
    trend = []
    for day in range(days):
        moment = start + timedelta(days=day)
        weekend = moment.weekday() >= 5
        events = int(base * (0.35 if weekend else 1.0) * (1 + 0.12 * ((day * 7) % 5 - 2) / 2))
        failures = int(events * 0.018) + (640 if day == 17 else 0)  # a password-spraying day
        alerts = (day * 3) % 4 + (9 if day == 17 else 0)
        score = None if alerts == 0 else min(10.0, 3.1 + alerts * 0.6)
        trend.append(
            RiskBucket(bucket_start=_iso(moment), events=events, failures=failures, alerts=alerts, max_risk_score=score)
        )
    return trend


def _metadata(standard: Standard, start: datetime, end: datetime, generated_by: str, **scope: Any) -> Metadata:
    return Metadata(
        report_id=str(
            uuid.UUID("5f0c1a7e-2b9d-4c61-9e3a-8d4f6b2a1c07") if standard is Standard.PCI_DSS else uuid.uuid4()
        ),
        standard=standard,
        standard_title=STANDARD_TITLES[standard],
        period_start=_iso(start),
        period_end=_iso(end),
        generated_at=_iso(end + timedelta(minutes=4, seconds=17)),
        generated_by=generated_by,
        scope=scope,
        trigger="schedule" if generated_by.startswith("schedule:") else "api",
    )


def pci_report() -> Report:
    """A month of a file-sharing product under PCI DSS: a spraying attack, unreviewed alerts, young trail."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = datetime(2026, 11, 1, tzinfo=UTC)
    trend = _daily_trend(start, 31, 34_000)
    failed_logins = [
        [
            f"user-{i:04d}@example.com" if i != 7 else HOSTILE,
            "203.0.113.45",
            18 - i % 5,
            _iso(start + timedelta(days=17, minutes=i)),
        ]
        for i in range(40)
    ]
    sections = [
        Section(
            control_id="10.2.1.1",
            title="User access to cardholder data",
            requirement="Audit logs capture all individual user access to cardholder data.",
            status=Status.PASS,
            status_reason="All 18,432 reads of resources tagged pci_dss were recorded with the user who made them.",
            metrics={"access_events": 18_432, "distinct_users": 211, "resources_touched": 3_904},
        ),
        Section(
            control_id="10.2.1.2",
            title="Actions by administrators",
            requirement="Audit logs capture all actions taken by any individual with administrative access.",
            status=Status.ATTENTION,
            status_reason=(
                "3 administrative actions carried no compliance tag, so they fall outside the cardholder-data scope."
            ),
            metrics={"admin_actions": 146, "untagged_admin_actions": 3},
            evidence=[
                EvidenceTable(
                    title="Untagged administrative actions",
                    columns=["timestamp", "user_id", "event_type", "resource_path"],
                    rows=[
                        [
                            _iso(start + timedelta(days=3, hours=2)),
                            "ops-admin@example.com",
                            "admin_action",
                            "/settings/retention",
                        ],
                        [
                            _iso(start + timedelta(days=11, hours=22, minutes=5)),
                            "ops-admin@example.com",
                            "permission_change",
                            "/teams/finance/members",
                        ],
                        [
                            _iso(start + timedelta(days=27, hours=9)),
                            "root-automation",
                            "admin_action",
                            "/billing/export?format=csv&range=all",
                        ],
                    ],
                )
            ],
        ),
        Section(
            control_id="10.2.1.3",
            title="Access to audit logs",
            requirement="Audit logs capture all access to audit logs.",
            status=Status.PASS,
            status_reason="Every read and export of the audit trail (57) was itself recorded.",
            metrics={"audit_log_reads": 51, "audit_log_exports": 6},
        ),
        Section(
            control_id="10.2.1.4",
            title="Invalid logical access attempts",
            requirement="Audit logs capture all invalid logical access attempts.",
            status=Status.ATTENTION,
            status_reason=(
                "1,218 failed logins, 640 of them on 18 October from one address (password spraying alert raised)."
            ),
            metrics={"failed_logins": 1_218, "failed_authorizations": 92, "distinct_sources": 37, "spraying_alerts": 1},
            evidence=[
                EvidenceTable(
                    title="Failed logins by user (top sources)",
                    columns=["user_id", "ip_address", "failures", "last_attempt"],
                    rows=failed_logins,
                )
            ],
        ),
        Section(
            control_id="10.2.1.5",
            title="Changes to identification and authentication credentials",
            requirement=(
                "Audit logs capture all changes to identification and authentication credentials, including new "
                "accounts and elevation of privileges."
            ),
            status=Status.PASS,
            status_reason="412 credential changes recorded, each with the user and outcome.",
            metrics={"password_changes": 301, "mfa_changes": 77, "api_keys_created": 21, "privilege_elevations": 13},
        ),
        Section(
            control_id="10.2.1.6",
            title="Start, stop or pause of audit logs",
            requirement="Audit logs capture initialization, stopping or pausing of the audit logs.",
            status=Status.PASS,
            status_reason=(
                "The trail ran without a gap: no hour of the period is missing events while the product was in use."
            ),
            metrics={"gaps_over_1h": 0, "longest_quiet_period": "52 min"},
        ),
        Section(
            control_id="10.2.1.7",
            title="Creation and deletion of system-level objects",
            requirement="Audit logs capture creation and deletion of system-level objects.",
            status=Status.PASS,
            status_reason="2,974 creations and 1,106 deletions recorded.",
            metrics={"created": 2_974, "deleted": 1_106},
        ),
        Section(
            control_id="10.2.2",
            title="Details recorded for each event",
            requirement=(
                "Each record holds the user, the type of event, date and time, success or failure, origination and the"
                " affected resource."
            ),
            status=Status.PASS,
            status_reason=(
                "99.7% of records hold all six details; the rest are system events without an origin address."
            ),
            metrics={
                "completeness_pct": 99.7,
                "records_checked": 1_043_221,
                "missing_ip_address": 3_129,
                "missing_user": 0,
            },
            evidence=[
                EvidenceTable(
                    title="Completeness per field",
                    columns=["field", "present", "missing", "percent"],
                    rows=[
                        ["user_id", 1_043_221, 0, 100.0],
                        ["event_type", 1_043_221, 0, 100.0],
                        ["timestamp", 1_043_221, 0, 100.0],
                        ["status", 1_043_221, 0, 100.0],
                        ["ip_address", 1_040_092, 3_129, 99.7],
                        ["resource_path", 1_041_887, 1_334, 99.87],
                    ],
                )
            ],
        ),
        Section(
            control_id="10.5.1",
            title="Audit log history retained",
            requirement=(
                "Retain audit log history for at least 12 months, with at least the most recent three months "
                "immediately available."
            ),
            status=Status.ATTENTION,
            status_reason=(
                "The oldest record is 143 days old: the trail is younger than 12 months, so the 12-month history "
                "cannot be shown yet."
            ),
            metrics={
                "oldest_record": _iso(start - timedelta(days=112)),
                "oldest_record_days": 143,
                "online_days": 143,
                "retention_policy_days": 400,
            },
            notes="Not a failure: the system started recording on 10 June 2026 and no record has been removed.",
        ),
        Section(
            control_id="10.4.1",
            title="Daily review of audit logs",
            requirement="Security events and the logs of critical components are reviewed at least once daily.",
            status=Status.FAIL,
            status_reason="2 critical alerts stayed unacknowledged for more than 24 hours.",
            metrics={
                "alerts": 48,
                "acknowledged_within_24h": 44,
                "unacknowledged": 2,
                "median_time_to_ack": "3 h 12 min",
            },
            evidence=[
                EvidenceTable(
                    title="Alert reviews",
                    columns=["alert", "severity", "raised_at", "acknowledged_by", "acknowledged_at"],
                    rows=[
                        [
                            "password_spraying 203.0.113.45",
                            "critical",
                            _iso(start + timedelta(days=17, hours=2, minutes=14)),
                            None,
                            None,
                        ],
                        [
                            "bulk_download mallory@example.com",
                            "critical",
                            _iso(start + timedelta(days=23, hours=19)),
                            None,
                            None,
                        ],
                        [
                            "privilege_escalation dave@example.com",
                            "high",
                            _iso(start + timedelta(days=9, hours=10)),
                            "auditor@example.com",
                            _iso(start + timedelta(days=9, hours=11, minutes=2)),
                        ],
                        [
                            "off_hours_access carol@example.com",
                            "medium",
                            _iso(start + timedelta(days=4, hours=3)),
                            "auditor@example.com",
                            _iso(start + timedelta(days=4, hours=8, minutes=40)),
                        ],
                    ],
                    truncated=True,
                )
            ],
        ),
    ]
    events_by_type = {
        "file_download": 402_118,
        "file_view": 311_920,
        "file_upload": 141_004,
        "user_login": 98_210,
        "user_logout": 61_377,
        "file_delete": 14_882,
        "file_share": 8_930,
        "permission_change": 1_212,
        "password_change": 301,
        "data_export": 290,
        "admin_action": 146,
        "mfa_enabled": 77,
        "api_key_created": 21,
        "account_created": 733,
    }
    total = sum(events_by_type.values())
    return Report(
        metadata=_metadata(Standard.PCI_DSS, start, end, "schedule:monthly-pci_dss", compliance_tag="pci_dss"),
        summary=Summary(
            total_events=total,
            distinct_users=1_874,
            failures=Failures(count=sum(b.failures for b in trend), rate=sum(b.failures for b in trend) / total),
            alerts_by_severity={"critical": 2, "high": 9, "medium": 23, "low": 14},
            risk_trend=trend,
            trend_granularity="day",
            events_by_type=events_by_type,
            overall_status=worst([s.status for s in sections]),
        ),
        sections=sections,
        integrity=Integrity(
            valid=True,
            checked=1_043_221,
            method=(
                "Recomputed the SHA-256 checksum of every event from seq 7,311,002 to 8,354,222 and checked each link "
                "to its predecessor."
            ),
            digest=Digest(
                digest_seq=1_742,
                tree_size=8_354_222,
                root_hash="9f2c5e1ab04d7731c8e6f0a2b95d4c13e7a8f6d2c1b0a99e8d7c6b5a4f3e2d1c",
                created_at=_iso(end - timedelta(minutes=12)),
                signing_key_id="arn:aws:kms:eu-west-1:123456789012:key/4d2a7c1e-90b3-4f5e-a1d8-7b6c5e4f3a21",
            ),
        ),
        notable_events=[
            NotableEvent(
                event_id=str(uuid.uuid4()),
                seq=7_911_311 + i,
                timestamp=_iso(start + timedelta(days=17, hours=2, minutes=3 + i)),
                event_type="user_login",
                user_id=f"user-{i:04d}@example.com",
                ip_address="203.0.113.45",
                resource_path="/auth/login",
                status="failure",
                security_level="high",
                why="Part of the password-spraying burst (alert 6c1f…)",
            )
            for i in range(3)
        ]
        + [
            NotableEvent(
                event_id=str(uuid.uuid4()),
                seq=8_120_004,
                timestamp=_iso(start + timedelta(days=23, hours=19, minutes=2)),
                event_type="data_export",
                user_id="mallory@example.com",
                ip_address="198.51.100.23",
                resource_path="/files/cardholders/2026-Q3-settlements.csv",
                status="success",
                security_level="critical",
                why="Bulk download: 1,920 files in 10 minutes",
            ),
            NotableEvent(
                event_id=str(uuid.uuid4()),
                seq=7_410_877,
                timestamp=_iso(start + timedelta(days=9, hours=10)),
                event_type="permission_change",
                user_id="dave@example.com",
                ip_address="192.0.2.77",
                resource_path=HOSTILE,
                status="success",
                security_level="high",
                why="Granted himself the admin role",
            ),
        ],
        empty=False,
    )


def gdpr_report() -> Report:
    """Two days under GDPR (hourly trend): an erasure request, an export, a breach-candidate alert; no digest yet."""
    start = datetime(2026, 11, 24, tzinfo=UTC)
    end = start + timedelta(days=2)
    trend = []
    for hour in range(48):
        office = 8 <= hour % 24 <= 18
        events = (1_400 if office else 180) + (hour * 37) % 250
        alerts = 1 if hour in {14, 15, 38} else 0
        trend.append(
            RiskBucket(
                bucket_start=_iso(start + timedelta(hours=hour)),
                events=events,
                failures=events // 60 + (90 if hour == 38 else 0),
                alerts=alerts,
                max_risk_score=8.4 if hour == 38 else (5.2 if alerts else None),
            )
        )
    sections = [
        Section(
            control_id="Art. 5(1)(e)",
            title="Storage limitation",
            requirement="Personal data is kept no longer than necessary for the purposes it is processed for.",
            status=Status.PASS,
            status_reason=(
                "No personal-data event is older than the 365-day retention policy; 12,880 were redacted on schedule."
            ),
            metrics={"policy_days": 365, "oldest_personal_data_days": 361, "redacted_in_period": 12_880},
        ),
        Section(
            control_id="Art. 15",
            title="Right of access (exports)",
            requirement="Data subjects obtain a copy of their personal data on request.",
            status=Status.PASS,
            status_reason="2 access requests answered within the period.",
            evidence=[
                EvidenceTable(
                    title="Subject access exports",
                    columns=["subject", "requested_at", "completed_at", "outcome"],
                    rows=[
                        [
                            "subject-8812",
                            _iso(start + timedelta(hours=9)),
                            _iso(start + timedelta(hours=9, minutes=3)),
                            "success",
                        ],
                        [
                            "subject-1207",
                            _iso(start + timedelta(hours=31)),
                            _iso(start + timedelta(hours=31, minutes=1)),
                            "success",
                        ],
                    ],
                )
            ],
        ),
        Section(
            control_id="Art. 17",
            title="Right to erasure",
            requirement="Personal data is erased without undue delay when a data subject asks for it.",
            status=Status.ATTENTION,
            status_reason="1 erasure request is still running after 26 hours (legal hold on 3 events).",
            metrics={"erasure_requests": 3, "completed": 2, "pending": 1},
            evidence=[
                EvidenceTable(
                    title="Erasure requests",
                    columns=["subject", "requested_at", "completed_at", "events_redacted", "outcome"],
                    rows=[
                        [
                            "subject-3391",
                            _iso(start + timedelta(hours=2)),
                            _iso(start + timedelta(hours=2, minutes=1)),
                            1_284,
                            "success",
                        ],
                        [
                            "subject-0042",
                            _iso(start + timedelta(hours=11)),
                            _iso(start + timedelta(hours=11, minutes=4)),
                            77,
                            "success",
                        ],
                        ["subject-7788", _iso(start + timedelta(hours=20)), None, 0, "held: legal hold LH-2026-014"],
                    ],
                )
            ],
        ),
        Section(
            control_id="Art. 30",
            title="Records of processing",
            requirement="Processing of personal data is recorded.",
            status=Status.PASS,
            status_reason="Every access to resources tagged gdpr is recorded with its subject and purpose.",
            metrics={"personal_data_events": 9_113, "subjects": 1_022},
        ),
        Section(
            control_id="Art. 32",
            title="Security of processing",
            requirement="Appropriate technical measures ensure integrity and confidentiality of processing.",
            status=Status.PASS,
            status_reason="The chain verified intact for the period.",
            metrics={"chain_valid": True},
        ),
        Section(
            control_id="Art. 33",
            title="Breach-candidate alerts",
            requirement="Personal-data breaches are notified to the authority within 72 hours of becoming aware.",
            status=Status.FAIL,
            status_reason="A critical bulk-download alert on personal data is 10 hours old and not yet acknowledged.",
            metrics={
                "breach_candidates": 1,
                "hours_since_detection": 10.2,
                "notification_deadline": _iso(start + timedelta(hours=38 + 72)),
            },
            evidence=[
                EvidenceTable(
                    title="Breach-candidate alerts",
                    columns=["rule", "severity", "detected_at", "subject_count", "status"],
                    rows=[["bulk_download", "critical", _iso(start + timedelta(hours=38, minutes=7)), 412, "open"]],
                )
            ],
        ),
    ]
    events_by_type = {
        "file_view": 21_337,
        "file_download": 11_905,
        "user_login": 4_410,
        "file_upload": 3_008,
        "data_export": 2,
        "data_erasure": 3,
    }
    total = sum(events_by_type.values())
    return Report(
        metadata=_metadata(Standard.GDPR, start, end, "dpo@example.com", compliance_tag="gdpr"),
        summary=Summary(
            total_events=total,
            distinct_users=1_022,
            failures=Failures(count=sum(b.failures for b in trend), rate=sum(b.failures for b in trend) / total),
            alerts_by_severity={"critical": 1, "medium": 2},
            risk_trend=trend,
            trend_granularity="hour",
            events_by_type=events_by_type,
            overall_status=worst([s.status for s in sections]),
        ),
        sections=sections,
        integrity=Integrity(
            valid=True, checked=40_665, method="Recomputed every checksum and link in the period.", digest=None
        ),
        notable_events=[
            NotableEvent(
                event_id=str(uuid.uuid4()),
                seq=55_001,
                timestamp=_iso(start + timedelta(hours=38, minutes=2)),
                event_type="file_download",
                user_id="contractor-17",
                ip_address="2001:db8::17",
                resource_path="/hr/employees/contracts-2026.zip",
                status="success",
                security_level="critical",
                why="412 personal-data files in 6 minutes",
            )
        ],
        empty=False,
    )


def empty_report() -> Report:
    """A week with no events at all, after a tampered record: the report is valid and says so."""
    start = datetime(2026, 11, 16, tzinfo=UTC)
    end = start + timedelta(days=7)
    sections = [
        Section(
            control_id="A.8.15",
            title="Logging",
            requirement=(
                "Logs that record activities, exceptions, faults and other relevant events are produced, stored, "
                "protected and analysed."
            ),
            status=Status.ATTENTION,
            status_reason="No event was recorded in the period: check that the applications are sending events.",
            metrics={"events": 0},
        ),
        Section(
            control_id="A.5.28",
            title="Collection of evidence",
            requirement="Evidence is identified, collected and preserved.",
            status=Status.FAIL,
            status_reason="The chain is broken at seq 812: evidence collected before it cannot be relied on.",
            metrics={"first_invalid_seq": 812},
        ),
    ]
    return Report(
        metadata=_metadata(Standard.ISO_27001, start, end, "schedule:weekly-iso_27001"),
        summary=Summary(
            total_events=0,
            distinct_users=0,
            failures=Failures(count=0, rate=0.0),
            alerts_by_severity={},
            risk_trend=[],
            events_by_type={},
            overall_status=worst([s.status for s in sections]),
        ),
        sections=sections,
        integrity=Integrity(
            valid=False,
            checked=811,
            first_invalid_seq=812,
            reason="The checksum of seq 812 does not match its content (modified).",
            method="Recomputed every checksum and link up to the period's end.",
        ),
        notable_events=[],
        empty=True,
    )


# --- tests ------------------------------------------------------------------------------------------


def test_pci_report_renders_cleanly_in_chromium(browser: Browser) -> None:
    """Given a month of PCI DSS evidence, when opened in chromium, then it loads cleanly and shows the verdicts."""
    report = pci_report()
    page, _, _ = _render_and_look(browser, report, "pci_dss")

    assert page.title().startswith("PCI DSS v4.0, Requirement 10 compliance report")
    assert page.get_by_role("heading", level=1).inner_text() == "PCI DSS v4.0, Requirement 10"
    header = page.locator("header.report-header").inner_text()
    assert "Fail" in header
    assert "1 of 10 controls failed; 3 more need attention." in header
    assert "5f0c1a7e-2b9d-4c61-9e3a-8d4f6b2a1c07" in header
    assert "schedule:monthly-pci_dss" in header
    # Every control appears with its status in words.
    section = page.locator("#control-10-4-1")
    assert (
        section.get_by_role("heading", level=3).inner_text().replace("\n", " ") == "10.4.1 Daily review of audit logs"
    )
    assert "Fail" in section.locator(".badge").inner_text()
    assert "Attention" in page.locator("#control-10-5-1 .badge").inner_text()
    assert page.locator("section.control").count() == len(report.sections)
    # The integrity panel names the digest.
    integrity = page.locator("#integrity").inner_text()
    assert "9f2c5e1ab04d7731c8e6f0a2b95d4c13e7a8f6d2c1b0a99e8d7c6b5a4f3e2d1c" in integrity
    assert "8,354,222" in integrity
    # Seven charts (status, four trend panels, types, severities), each an accessible image with a name.
    charts = page.locator("svg[role=img]")
    assert charts.count() == 7
    assert page.locator("#chart-alerts > title").text_content() == "Alerts by severity"
    # The 40-row table shows 25 rows and says how many were left out.
    spraying = page.locator("#control-10-2-1-4 table tbody tr")
    assert spraying.count() == MAX_EVIDENCE_ROWS
    assert "15 more rows not shown here." in page.locator("#control-10-2-1-4").inner_text()
    # The hostile strings are text, not markup: no script element, and the text is visible as typed.
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert HOSTILE in page.locator("#notable").inner_text()
    page.close()


def test_gdpr_report_renders_hourly_trend_and_no_digest(browser: Browser) -> None:
    """Given two days of GDPR evidence and no digest yet, when opened, then it says so and charts hours."""
    page, _, _ = _render_and_look(browser, gdpr_report(), "gdpr")

    assert page.get_by_role("heading", level=1).inner_text() == "GDPR (Regulation (EU) 2016/679)"
    assert "No signed digest yet." in page.locator("#integrity").inner_text()
    assert (page.locator("#chart-events > title").text_content() or "") == "Events per hour"
    assert "Attention" in page.locator("#control-art-17 .badge").inner_text()
    assert "held: legal hold LH-2026-014" in page.locator("#control-art-17").inner_text()
    assert "Fail" in page.locator("#control-art-33 .badge").inner_text()
    page.close()


def test_empty_period_renders_the_empty_state(browser: Browser) -> None:
    """Given a period without events and a broken chain, when opened, then both are plain to see."""
    page, _, _ = _render_and_look(browser, empty_report(), "iso_27001-empty")

    summary = page.locator("#summary").inner_text()
    assert "No events in this period." in summary
    assert "no activity to chart" in summary
    assert "broken at seq 812" in summary
    assert "Broken" in page.locator("#integrity").inner_text()
    assert page.locator("#chart-events").count() == 0
    assert "No events in this period." in page.locator("#notable").inner_text()
    page.close()


@pytest.fixture
def reports_bucket(configured: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The reports function against the test database and a moto bucket (as in test_reports.py)."""
    with moto_account():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("AUDIT_REPORTS_BUCKET", BUCKET)
        get_settings.cache_clear()
        reports_handler._store.cache_clear()
        yield BUCKET
        reports_handler._store.cache_clear()


def test_reports_generated_from_a_seeded_database_render_cleanly(
    browser: Browser, reports_bucket: str, transport: PostgresTransport
) -> None:
    """Given the seeded scenario of test_reports.py, when the API makes SOX and GDPR reports, then the HTML
    stored in S3 opens cleanly and shows the verdicts the scenario implies (the SoD conflict fails SOX)."""
    scenario = seed(transport)
    for standard, failing, title in (
        ("sox", "ITGC-SOD", "SOX Section 404 IT general controls"),
        ("gdpr", None, "GDPR (Regulation (EU) 2016/679)"),
    ):
        body = {"standard": standard, "start": scenario.start.isoformat(), "end": scenario.end.isoformat()}
        answer = invoke(reports_handler.lambda_handler, proxy_event("POST", "/reports", body=body))
        assert answer.status == 201, answer.body
        key = answer.body["formats"]["html"]["key"]
        html = boto3.client("s3").get_object(Bucket=reports_bucket, Key=key)["Body"].read()

        page, _, _ = _look(browser, html, f"seeded-{standard}")

        assert page.get_by_role("heading", level=1).inner_text() == title
        assert page.locator("section.control").count() >= 4
        if failing:
            anchor = "control-" + failing.lower()
            assert "Fail" in page.locator(f"#{anchor} .badge").inner_text()
            assert "Fail" in page.locator(".overall .badge").inner_text()
        assert "No signed digest yet." in page.locator("#integrity").inner_text()
        # The seeded events, plus one "report generated" event per report made before this one.
        assert answer.body["total_events"] >= scenario.total
        assert page.locator(".kpi-value").first.inner_text() == f"{answer.body['total_events']:,}"
        assert page.locator("svg[role=img]").count() == 7
        page.close()


def test_a_missing_browser_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no chromium on PATH, when the browser is looked for, then the test fails naming `make install`."""
    monkeypatch.setattr(shutil, "which", lambda _name: None)

    with pytest.raises(pytest.fail.Exception, match=r"run `make install`"):
        chromium_executable()
