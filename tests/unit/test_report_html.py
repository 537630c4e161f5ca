"""The report's HTML page, rendered from model instances: content, escaping, states, truncation, charts."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from reports import svg
from reports.html import MAX_EVIDENCE_ROWS, MAX_NOTABLE_EVENTS, format_value, humanize, render_html
from reports.model import (
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
)

SCRIPT = "<script>alert(1)</script>"
VOID = {"meta", "link", "br", "img", "input", "hr", "wbr", "source", "col", "area", "base", "embed", "track"}
# SVG shapes the chart builder writes self-closed.
SELF_CLOSED = {"line", "rect", "circle", "polygon", "polyline", "path"}


class Page(HTMLParser):
    """The rendered page, parsed: tags seen, visible text, attributes, and whether tags balance."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self._skip = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "style":
            self._skip += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._skip -= 1
        if not self.stack or self.stack[-1] != tag:
            self.unbalanced.append(f"</{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.rstrip("_")) == v for k, v in attrs.items())]


def section(control_id: str = "10.2.1.4", status: Status = Status.PASS, **overrides: Any) -> Section:
    values: dict[str, Any] = {
        "control_id": control_id,
        "title": "Invalid logical access attempts",
        "requirement": "Audit logs capture all invalid logical access attempts.",
        "status": status,
        "status_reason": "12 failed logins, none in a burst.",
        "metrics": {"failed_logins": 12, "completeness_pct": 99.5, "oldest_record": "2026-06-11T00:00:00Z"},
        "evidence": [],
    }
    values.update(overrides)
    return Section(**values)


def make_report(**overrides: Any) -> Report:
    """A small, valid report; keyword arguments replace top-level parts."""
    values: dict[str, Any] = {
        "metadata": Metadata(
            report_id="0b7e2f7c-7a51-4d0e-8f0e-3c2d1b0a9f88",
            standard=Standard.PCI_DSS,
            standard_title="PCI DSS v4.0, Requirement 10",
            period_start="2026-11-01T00:00:00Z",
            period_end="2026-11-08T00:00:00Z",
            generated_at="2026-11-08T00:03:12Z",
            generated_by="schedule:weekly-pci_dss",
            scope={"compliance_tag": "pci_dss"},
            trigger="schedule",
        ),
        "summary": Summary(
            total_events=12_345,
            distinct_users=321,
            failures=Failures(count=123, rate=123 / 12_345),
            alerts_by_severity={"high": 2, "low": 5},
            risk_trend=[
                RiskBucket(
                    bucket_start=f"2026-11-0{day}T00:00:00Z",
                    events=1_000 + day,
                    failures=day,
                    alerts=day % 2,
                    max_risk_score=None if day % 2 == 0 else 6.5,
                )
                for day in range(1, 8)
            ],
            trend_granularity="day",
            events_by_type={"file_download": 9_000, "user_login": 3_000, "file_delete": 345},
            overall_status=Status.ATTENTION,
        ),
        "sections": [section(), section("10.5.1", Status.ATTENTION, title="Audit log history retained")],
        "integrity": Integrity(
            valid=True,
            checked=12_345,
            method="Recomputed every checksum and link in the period.",
            digest=Digest(
                digest_seq=42,
                tree_size=99_000,
                root_hash="ab" * 32,
                created_at="2026-11-07T23:00:00Z",
                signing_key_id="alias/audit-digest",
            ),
        ),
        "notable_events": [
            NotableEvent(
                event_id="e1",
                seq=77,
                timestamp="2026-11-03T04:05:06Z",
                event_type="user_login",
                user_id="mallory",
                ip_address="203.0.113.9",
                resource_path="/auth/login",
                status="failure",
                security_level="high",
                why="Part of a password-spraying burst",
            )
        ],
        "empty": False,
    }
    values.update(overrides)
    return Report(**values)


def test_page_is_a_complete_self_contained_document() -> None:
    """Given a report, when rendered, then it is one balanced HTML5 document that loads nothing and runs nothing."""
    html = render_html(make_report())
    page = Page(html)

    assert html.startswith("<!DOCTYPE html>")
    assert page.unbalanced == []
    assert page.stack == []
    assert page.find("html", lang="en")
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp
    assert str(csp[0]["content"]).startswith("default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    assert page.find("script") == []
    # Nothing to fetch: the only link is the empty data: icon, no src attributes, no URL but the SVG namespace.
    assert [a.get("href") for a in page.find("link")] == ["data:,"]
    assert not any("src" in attrs for _, attrs in page.tags)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "@media print" in html
    assert '<meta name="viewport"' in html


def test_header_and_summary_show_the_reports_identity_and_numbers() -> None:
    """Given a report, when rendered, then standard, period, generation and summary numbers are on the page."""
    page = Page(render_html(make_report()))
    text = page.visible

    assert page.find("title")
    assert "PCI DSS v4.0, Requirement 10 compliance report, 2026-11-01 00:00:00 UTC to 2026-11-08 00:00:00 UTC" in text
    for expected in (
        "0b7e2f7c-7a51-4d0e-8f0e-3c2d1b0a9f88",
        "2026-11-08 00:03:12 UTC",
        "schedule:weekly-pci_dss (scheduled run)",
        "audit-trail-reports 1.0.0",
        "Compliance tag: pci_dss",
        "(end exclusive, 7 days)",
        "12,345 Events",
        "321 Distinct users",
        "123 Failed actions 1.0% of events",
        "7 Security alerts 2 high, 5 low",
        "1/2 Controls passing",
        "1 of 2 controls needs attention; none failed.",
    ):
        assert expected in text, expected
    # Headings form one hierarchy: one h1, then h2s, with h3s only below them.
    levels = [int(tag[1]) for tag, _ in page.tags if re.fullmatch(r"h[1-6]", tag)]
    assert levels.count(1) == 1
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))


def test_sections_show_control_requirement_status_reason_metrics_and_evidence() -> None:
    """Given sections with metrics and evidence, when rendered, then each appears with its status in words."""
    evidence = EvidenceTable(
        title="Failed logins by user",
        columns=["user_id", "failures", "last_attempt"],
        rows=[["alice", 3, "2026-11-02T10:00:00Z"], ["bob", None, "2026-11-02T11:00:00Z"]],
    )
    report = make_report(
        sections=[
            section(evidence=[evidence], notes="Counted from the trail."),
            section("A.8.17", Status.FAIL, title="Clock synchronisation", status_reason="9 events 2 h off."),
            section("Art. 17", Status.PASS, title="Right to erasure", metrics={}),
        ],
        summary=make_report().summary.model_copy(update={"overall_status": Status.FAIL}),
    )
    page = Page(render_html(report))
    text = page.visible

    assert "10.2.1.4 Invalid logical access attempts" in text
    assert "Requirement: Audit logs capture all invalid logical access attempts." in text
    assert "Pass: 12 failed logins, none in a burst." in text
    assert "Fail: 9 events 2 h off." in text
    assert "Failed logins 12" in text
    assert "Completeness pct 99.5" in text
    assert "Oldest record 2026-06-11 00:00:00 UTC" in text
    assert "Failed logins by user" in text
    assert "alice 3 2026-11-02 10:00:00 UTC" in text
    assert "bob — 2026-11-02 11:00:00 UTC" in text
    assert "Counted from the trail." in text
    assert "1 of 3 controls failed; none" not in text
    assert "1 of 3 controls failed." in text
    # Status is never colour alone: every badge carries its word, and the overview counts them in words.
    assert "Pass: 2" in text
    assert "Fail: 1" in text
    assert "Attention: 0" in text
    # Anchors per section, linked from the overview table.
    for anchor in ("control-10-2-1-4", "control-a-8-17", "control-art-17"):
        assert page.find("section", id=anchor)
        assert page.find("a", href=f"#{anchor}")
    # Every table header cell has a scope.
    assert all(attrs.get("scope") in {"col", "row"} for tag, attrs in page.tags if tag == "th")
    # Numbers are right-aligned, in the header too.
    assert '<th scope="col" class="num">Failures</th>' in render_html(report)


def test_attacker_controlled_strings_render_as_text() -> None:
    """Given `<script>` in every string an event can carry, when rendered, then none becomes markup."""
    hostile_event = NotableEvent(
        event_id=SCRIPT,
        seq=1,
        timestamp=SCRIPT,
        event_type=SCRIPT,
        user_id=SCRIPT,
        ip_address=SCRIPT,
        resource_path='/a"><img src=x onerror=alert(1)>',
        status=SCRIPT,
        security_level=SCRIPT,
        why=SCRIPT,
    )
    report = make_report(
        metadata=make_report().metadata.model_copy(update={"generated_by": SCRIPT, "scope": {"tag": SCRIPT}}),
        sections=[
            section(
                control_id=f'x" onmouseover="alert(1){SCRIPT}',
                title=SCRIPT,
                metrics={SCRIPT: SCRIPT},
                evidence=[EvidenceTable(title=SCRIPT, columns=[SCRIPT], rows=[[SCRIPT]])],
            )
        ],
        summary=make_report().summary.model_copy(
            update={"events_by_type": {SCRIPT: 5}, "alerts_by_severity": {SCRIPT: 1}}
        ),
        notable_events=[hostile_event],
    )
    html = render_html(report)
    page = Page(html)

    assert page.find("script") == []
    assert page.find("img") == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Shown as typed, in the tables and inside the SVG labels.
    assert page.visible.count(SCRIPT) >= 10
    assert '/a"><img src=x onerror=alert(1)>' in page.visible
    assert page.unbalanced == []


def test_long_tables_are_cut_with_a_note() -> None:
    """Given 40 evidence rows and 60 notable events, when rendered, then the page shows the first ones and says so."""
    table = EvidenceTable(
        title="Failed logins",
        columns=["user_id", "failures"],
        rows=[[f"user-{i:02d}", i] for i in range(40)],
        truncated=True,
    )
    events = [make_report().notable_events[0].model_copy(update={"seq": i, "user_id": f"who-{i}"}) for i in range(60)]
    page = Page(render_html(make_report(sections=[section(evidence=[table])], notable_events=events)))
    text = page.visible

    assert "user-24" in text
    assert "user-25" not in text
    assert MAX_EVIDENCE_ROWS == 25
    assert "15 more rows not shown here." in text
    assert "The report itself keeps only the first rows of this table." in text
    assert f"who-{MAX_NOTABLE_EVENTS - 1}" in text
    assert f"who-{MAX_NOTABLE_EVENTS}" not in text
    assert "10 more notable events not shown here" in text


def test_empty_period_says_so() -> None:
    """Given a period without events, when rendered, then the page says so instead of drawing empty charts."""
    report = make_report(
        summary=Summary(
            total_events=0,
            distinct_users=0,
            failures=Failures(count=0, rate=0.0),
            alerts_by_severity={"low": 0, "medium": 0, "high": 0, "critical": 0},
            # As the service makes it: every bucket of the period, all zero.
            risk_trend=[
                RiskBucket(bucket_start=f"2026-11-01T{h:02d}:00:00Z", events=0, failures=0, alerts=0) for h in range(24)
            ],
            trend_granularity="hour",
            events_by_type={},
            overall_status=Status.ATTENTION,
        ),
        notable_events=[],
        empty=True,
    )
    html = render_html(report)
    text = Page(html).visible

    assert "No events in this period. The audit trail holds no event between" in text
    assert "no activity to chart" in text
    assert 'id="chart-events"' not in html
    assert "0 Events" in text
    assert "0 Failed actions no events" in text
    # Severity bars still show (zeros are evidence too).
    assert 'id="chart-alerts"' in html
    assert "Critical" in text


def test_integrity_without_digest_and_broken_chain() -> None:
    """Given a broken chain and no digest, when rendered, then both are stated plainly."""
    report = make_report(
        integrity=Integrity(
            valid=False,
            checked=811,
            first_invalid_seq=812,
            reason="seq 812: checksum mismatch (modified)",
            method="Full recompute.",
            digest=None,
        )
    )
    text = Page(render_html(report)).visible

    assert "No signed digest yet." in text
    assert "The chain is broken. seq 812: checksum mismatch (modified)" in text
    assert "First invalid seq 812" in text
    assert "Broken" in text
    assert "broken at seq 812" in text


def test_integrity_with_digest_names_it() -> None:
    """Given a digest, when rendered, then its seq, size, root, time and key are on the page with verify steps."""
    text = Page(render_html(make_report())).visible

    assert "Intact" in text
    assert "Digest seq 42" in text
    assert "Tree size 99,000 events" in text
    assert "ab" * 32 in text
    assert "alias/audit-digest" in text
    assert "sha256sum 0b7e2f7c-7a51-4d0e-8f0e-3c2d1b0a9f88.html" in text
    assert "audit-trail verify" in text


def test_charts_are_accessible_images() -> None:
    """Given a report, when rendered, then every chart is an img with a title and a description it points at."""
    html = render_html(make_report())
    page = Page(html)
    charts = page.find("svg")

    assert {c["id"] for c in charts} == {
        "chart-status",
        "chart-events",
        "chart-failures",
        "chart-alerts-trend",
        "chart-risk",
        "chart-types",
        "chart-alerts",
    }
    for chart in charts:
        assert chart["role"] == "img"
        title_id, desc_id = str(chart["aria-labelledby"]).split()
        assert page.find("title", id=title_id)
        assert page.find("desc", id=desc_id)
    assert "Events per day, 7 days from 01 Nov to 07 Nov: highest 1,007 on 07 Nov; 7,028 in total." in html
    assert "Pass: 1, Attention: 1, Fail: 0 of 2." in html


def test_hourly_trend_is_labelled_by_hour() -> None:
    """Given an hourly trend, when rendered, then the charts and the data table speak of hours."""
    hourly = [RiskBucket(bucket_start=f"2026-11-01T{h:02d}:00:00Z", events=h, failures=0, alerts=0) for h in range(24)]
    report = make_report(
        summary=make_report().summary.model_copy(update={"risk_trend": hourly, "trend_granularity": "hour"})
    )
    html = render_html(report)

    assert "Activity and risk per hour" in html
    assert "events per hour" in html
    assert ">01 Nov</text>" in html
    assert ">04:00</text>" in html
    assert ">02:00</text>" not in html
    assert "No alert was raised in the period, so no risk score was recorded." in html


def test_repeated_control_ids_get_distinct_anchors() -> None:
    """Given two sections with the same control id, when rendered, then their ids differ."""
    page = Page(render_html(make_report(sections=[section("8.2"), section("8.2")])))

    assert page.find("section", id="control-8-2")
    assert page.find("section", id="control-8-2-2")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (True, "Yes"),
        (1234567, "1,234,567"),
        (99.5, "99.5"),
        (0.125, "0.12"),
        (3.0, "3"),
        ("2026-11-02T10:00:00+02:00", "2026-11-02 08:00:00 UTC"),
        ("2026-11-02", "2026-11-02"),
        ("free text", "free text"),
        ({"b": 1, "a": [1, 2]}, '{"a": [1, 2], "b": 1}'),
    ],
)
def test_values_are_formatted_for_people(value: Any, expected: str) -> None:
    """Given a JSON value, when formatted for a cell, then it reads naturally (times in UTC)."""
    assert format_value(value) == expected


def test_labels_from_keys() -> None:
    """Given metric keys, when humanised, then snake_case reads as words and other text is left alone."""
    assert humanize("oldest_record_days") == "Oldest record days"
    assert humanize("alerts") == "Alerts"
    assert humanize("reviewed by") == "reviewed by"
    assert humanize("Art. 17 requests") == "Art. 17 requests"


def test_nice_ticks() -> None:
    """Given a maximum, when ticks are made, then they start at 0 and end at a round number at or above it."""
    assert svg.nice_ticks(87) == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    assert svg.nice_ticks(10, count=5) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert svg.nice_ticks(3) == [0.0, 1.0, 2.0, 3.0]
    assert svg.nice_ticks(0) == [0.0, 1.0]
    assert svg.nice_ticks(40_123, count=4) == [0.0, 20_000.0, 40_000.0, 60_000.0]


def test_chart_helpers_escape_labels_and_handle_gaps() -> None:
    """Given hostile labels and missing values, when charted, then labels are text and gaps break the line."""
    bars = svg.bar_chart(chart_id="c1", title=SCRIPT, desc=SCRIPT, bars=[svg.Bar(SCRIPT, 3, "#000")])
    lines = svg.line_chart(
        chart_id="c2",
        title="t",
        desc="d",
        x_labels=["a", "b", "c", "d", "e"],
        series=[svg.Series("s", [1, 2, None, 4, 5], "#000")],
        y_label="n",
    )
    lone = svg.line_chart(
        chart_id="c3", title="t", desc="d", x_labels=["a"], series=[svg.Series("s", [7], "#000")], y_label="n"
    )

    assert SCRIPT not in bars
    # Title, description, and the label (shortened, so its full text is also in a tooltip).
    assert bars.count("&lt;script&gt;") == 4
    assert lines.count("<polyline") == 2
    assert lone.count("<circle") == 1
    with pytest.raises(ValueError, match="not an SVG name"):
        svg._el("rect onload=alert(1)")


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_text_colours_meet_wcag_aa_contrast() -> None:
    """Given the page's palette, when text colours are set on their backgrounds, then contrast is at least 4.5:1."""
    css = render_html(make_report())
    palette = dict(re.findall(r"--([a-z-]+): (#[0-9a-f]{6})", css))
    pairs = [
        ("pass", "pass-bg"),
        ("attention", "attention-bg"),
        ("fail", "fail-bg"),
        ("muted", "soft"),
        ("accent", "soft"),
        ("text", "soft"),
    ]
    for fg, bg in pairs:
        light, dark = sorted((_luminance(palette[fg]), _luminance(palette[bg])), reverse=True)
        assert (light + 0.05) / (dark + 0.05) >= 4.5, (fg, bg)
