"""The report as one self-contained HTML5 page: inline CSS, inline SVG charts, no script, no external asset.

Why Jinja2 rather than string building: with `autoescape=True` every value is escaped unless it is
explicitly marked safe, so a `<script>` in a user_id or a resource_path (audit events are
attacker-controlled text) renders as text even where a template author forgets to think about it. The
only values marked safe are the charts, which `reports.svg` builds from escaped parts. The page's
Content-Security-Policy (no script, no network at all but inline styles and data: images) is a second
line of defence should anything slip through.

The template is `templates/report.html.j2`; this module prepares what the template shows (formatted
times and numbers, truncated tables, the charts) so the template stays free of logic.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from reports import svg
from reports.model import EvidenceTable, Report, Section, Status

__all__ = ["MAX_EVIDENCE_ROWS", "MAX_NOTABLE_EVENTS", "render_html"]

# Long tables would bury the page; the JSON and CSV files carry every row.
MAX_EVIDENCE_ROWS: Final = 25
MAX_NOTABLE_EVENTS: Final = 50
# Events by type: the biggest types, the rest summed into one bar.
MAX_EVENT_TYPE_BARS: Final = 10

TEMPLATES: Final = Path(__file__).parent / "templates"

STATUS_LABELS: Final = {Status.PASS: "Pass", Status.ATTENTION: "Attention", Status.FAIL: "Fail"}
# A shape as well as a colour, so status never depends on colour alone.
STATUS_ICONS: Final = {Status.PASS: "✓", Status.ATTENTION: "!", Status.FAIL: "✕"}
STATUS_COLORS: Final = {Status.PASS: "#1a7f37", Status.ATTENTION: "#bf8700", Status.FAIL: "#cf222e"}
SEVERITIES: Final = ("critical", "high", "medium", "low")
SEVERITY_COLORS: Final = {"critical": "#a40e26", "high": "#cf222e", "medium": "#bc4c00", "low": "#6e7781"}
TRIGGER_LABELS: Final = {"api": "on demand, via the API", "schedule": "scheduled run"}


@dataclass(frozen=True)
class Cell:
    """A table cell as shown: its text and how to set it (`num` right-aligned, `time` unbroken)."""

    text: str
    kind: str = "text"


@dataclass(frozen=True)
class TableView:
    """An evidence table as shown: at most MAX_EVIDENCE_ROWS rows, and what was left out."""

    title: str
    columns: list[tuple[str, str]]
    rows: list[list[Cell]]
    omitted: int
    more_upstream: bool


def render_html(report: Report) -> str:
    """Render a report as a complete, self-contained HTML5 document (UTF-8 text)."""
    template = _environment().get_template("report.html.j2")
    sections = report.sections
    counts = {status: sum(1 for s in sections if s.status is status) for status in Status}
    return template.render(
        report=report,
        meta=report.metadata,
        summary=report.summary,
        integrity=report.integrity,
        sections=sections,
        counts=counts,
        overall_sentence=_overall_sentence(report.summary.overall_status, counts, len(sections)),
        period_length=_period_length(report.metadata.period_start, report.metadata.period_end),
        alerts_total=sum(report.summary.alerts_by_severity.values()),
        severities=_severity_rows(report.summary.alerts_by_severity),
        controls=[
            (s, anchor, [_table_view(t) for t in s.evidence])
            for s, anchor in zip(sections, _anchors(sections), strict=True)
        ],
        Status=Status,
        notable=report.notable_events[:MAX_NOTABLE_EVENTS],
        notable_omitted=max(0, len(report.notable_events) - MAX_NOTABLE_EVENTS),
        charts=_charts(report, counts),
        trend_rows=_trend_rows(report),
        unit="hour" if report.summary.trend_granularity == "hour" else "day",
        event_type_rows=sorted(report.summary.events_by_type.items(), key=lambda kv: (-kv[1], kv[0])),
        scope=[(humanize(key), _scope_text(value)) for key, value in sorted(report.metadata.scope.items())],
        trigger_label=TRIGGER_LABELS.get(report.metadata.trigger, report.metadata.trigger),
    )


@cache
def _environment() -> Environment:
    """One Jinja2 environment per process (templates compile once per cold start)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        when=format_time,
        num=format_number,
        pct=format_rate,
        label=humanize,
        value=format_value,
        status_label=STATUS_LABELS.__getitem__,
        status_icon=STATUS_ICONS.__getitem__,
    )
    return env


def parse_time(value: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime in UTC, or None when it is not one."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_time(value: str | None) -> str:
    """`2026-11-03 14:05:09 UTC` for an RFC 3339 timestamp; anything else as it is."""
    if value is None:
        return "—"
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S UTC") if parsed else value


def format_number(value: float | None) -> str:
    """Integers with thousands separators, other numbers with up to two decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def format_rate(value: float) -> str:
    """A 0..1 rate as a percentage with one decimal (`0.0423` -> `4.2%`)."""
    return f"{value * 100:.1f}%"


def humanize(key: str) -> str:
    """A metric or column key as a label: `oldest_record_days` -> `Oldest record days`; other text unchanged."""
    if not key or " " in key or not key.replace("_", "").isalnum() or key.lower() != key:
        return key
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def format_value(value: Any) -> str:
    """A metric or evidence cell (a JSON value) as text; timestamps in UTC, booleans as Yes/No."""
    if value is None:
        return "—"
    if isinstance(value, bool | int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return format_number(value)
    if isinstance(value, str):
        # Only full timestamps are reformatted; dates and free text stay as they are.
        if len(value) >= 19 and value[4:5] == "-" and value[10:11] in {"T", " "}:
            return format_time(value)
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _scope_text(value: Any) -> str:
    """A scope filter's value: lists as comma-separated words, everything else as a cell would show it."""
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    return format_value(value)


def _anchors(sections: list[Section]) -> list[str]:
    """Unique fragment ids for the sections (control ids hold dots, spaces and parentheses, and may repeat)."""
    seen: dict[str, int] = {}
    anchors = []
    for section in sections:
        slug = "-".join("".join(c if c.isalnum() else " " for c in section.control_id.lower()).split())
        base = f"control-{slug or 'section'}"
        seen[base] = seen.get(base, 0) + 1
        anchors.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return anchors


def cell(value: Any) -> Cell:
    """A JSON value as a table cell: formatted text and its kind."""
    text = format_value(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Cell(text, "num")
    if isinstance(value, str) and text != value:
        return Cell(text, "time")
    return Cell(text)


def _table_view(table: EvidenceTable) -> TableView:
    rows = [[cell(value) for value in row] for row in table.rows[:MAX_EVIDENCE_ROWS]]
    # A column is numeric (right-aligned, header too) when every filled cell in it is a number.
    kinds = []
    for index, name in enumerate(table.columns):
        filled = [row[index].kind for row in rows if index < len(row) and row[index].text != "—"]
        kinds.append((humanize(name), "num" if filled and all(k == "num" for k in filled) else "text"))
    return TableView(
        title=table.title,
        columns=kinds,
        rows=[[c if c.kind != "num" or kinds[i][1] == "num" else Cell(c.text) for i, c in enumerate(r)] for r in rows],
        omitted=max(0, len(table.rows) - MAX_EVIDENCE_ROWS),
        more_upstream=table.truncated,
    )


def _overall_sentence(overall: Status, counts: dict[Status, int], total: int) -> str:
    if total == 0:
        return "No controls were assessed."
    failed, attention = counts[Status.FAIL], counts[Status.ATTENTION]

    def need(n: int) -> str:
        return "needs" if n == 1 else "need"

    if overall is Status.PASS:
        return f"All {total} controls pass." if total > 1 else "The control passes."
    if failed:
        tail = f"; {attention} more {need(attention)} attention." if attention else "."
        return f"{failed} of {total} controls failed{tail}"
    return f"{attention} of {total} controls {need(attention)} attention; none failed."


def _period_length(start: str, end: str) -> str | None:
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None or last <= first:
        return None
    seconds = (last - first).total_seconds()
    if seconds % 86400 == 0:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    hours = seconds / 3600
    return f"{format_number(round(hours, 1))} hours"


def _severity_rows(by_severity: dict[str, int]) -> list[tuple[str, int]]:
    """Known severities in order (zeros included: an auditor wants to see 'no critical alerts'), then others."""
    known = [(sev, by_severity.get(sev, 0)) for sev in SEVERITIES]
    others = sorted((sev, n) for sev, n in by_severity.items() if sev not in SEVERITIES)
    return known + others


def _bucket_label(value: str, granularity: str, first: bool = False) -> str:
    """`03 Nov` per day; per hour `14:00`, with the date at midnight and on the first bucket."""
    parsed = parse_time(value)
    if parsed is None:
        return value
    if granularity != "hour":
        return parsed.strftime("%d %b")
    if parsed.hour == 0 and parsed.minute == 0:
        return parsed.strftime("%d %b")
    return parsed.strftime("%d %b %H:%M" if first else "%H:%M")


def _trend_rows(report: Report) -> list[tuple[str, int, int, int, str]]:
    """The risk trend as table rows (the charts' data, for screen readers and for print)."""
    granularity = report.summary.trend_granularity
    return [
        (
            format_time(b.bucket_start) if granularity == "hour" else b.bucket_start[:10],
            b.events,
            b.failures,
            b.alerts,
            format_number(b.max_risk_score),
        )
        for b in report.summary.risk_trend
    ]


def _charts(report: Report, counts: dict[Status, int]) -> dict[str, Markup]:
    summary = report.summary
    trend = summary.risk_trend
    charts: dict[str, Markup] = {}
    unit = "hour" if summary.trend_granularity == "hour" else "day"
    # An empty period has a trend of zero buckets: the page says "no events" instead of drawing flat lines.
    if trend and not report.empty:
        labels = [_bucket_label(b.bucket_start, summary.trend_granularity, i == 0) for i, b in enumerate(trend)]
        span = f"{len(trend)} {unit}s from {labels[0]} to {labels[-1]}"

        def busiest(values: list[int]) -> str:
            peak = max(range(len(values)), key=values.__getitem__)
            return f"highest {values[peak]:,} on {labels[peak]}; {sum(values):,} in total."

        events = [b.events for b in trend]
        failures = [b.failures for b in trend]
        alerts = [b.alerts for b in trend]
        scores = [b.max_risk_score for b in trend]
        scored = [s for s in scores if s is not None]
        charts["events"] = svg.line_chart(
            chart_id="chart-events",
            title=f"Events per {unit}",
            desc=f"Events per {unit}, {span}: {busiest(events)}",
            x_labels=labels,
            series=[svg.Series("Events", events, "#0969da", style="area")],
            y_label=f"events per {unit}",
        )
        charts["failures"] = svg.line_chart(
            chart_id="chart-failures",
            title=f"Failed actions per {unit}",
            desc=f"Failed actions per {unit}, {span}: {busiest(failures)}",
            x_labels=labels,
            series=[svg.Series("Failures", failures, "#cf222e", style="area")],
            y_label=f"failures per {unit}",
        )
        charts["alerts_trend"] = svg.line_chart(
            chart_id="chart-alerts-trend",
            title=f"Security alerts per {unit}",
            desc=f"Security alerts raised per {unit}, {span}: {busiest(alerts)}",
            x_labels=labels,
            series=[svg.Series("Alerts", alerts, "#8250df", style="columns")],
            y_label=f"alerts per {unit}",
        )
        charts["risk"] = svg.line_chart(
            chart_id="chart-risk",
            title=f"Highest alert risk score per {unit} (0 to 10)",
            desc=(
                f"Highest alert risk score per {unit}, {span}: at most {format_number(max(scored))} of 10; "
                f"{len(scored)} {unit}s had an alert."
                if scored
                else "No alert was raised in the period, so no risk score was recorded."
            ),
            x_labels=labels,
            series=[svg.Series("Highest risk score", scores, "#bc4c00", style="columns")],
            y_label="risk score (0-10)",
            y_max=10,
        )
    if summary.events_by_type:
        ordered = sorted(summary.events_by_type.items(), key=lambda kv: (-kv[1], kv[0]))
        bars = [svg.Bar(name, count, "#0969da") for name, count in ordered[:MAX_EVENT_TYPE_BARS]]
        rest = ordered[MAX_EVENT_TYPE_BARS:]
        if rest:
            bars.append(svg.Bar(f"{len(rest)} other types", sum(n for _, n in rest), "#818b98"))
        charts["types"] = svg.bar_chart(
            chart_id="chart-types",
            title="Events by type",
            desc="; ".join(f"{b.label}: {b.value:,}" for b in bars) + ".",
            bars=bars,
        )
    severity_rows = _severity_rows(summary.alerts_by_severity)
    charts["alerts"] = svg.bar_chart(
        chart_id="chart-alerts",
        title="Alerts by severity",
        desc="; ".join(f"{sev}: {n:,}" for sev, n in severity_rows) + ".",
        bars=[svg.Bar(sev.capitalize(), n, SEVERITY_COLORS.get(sev, "#6e7781")) for sev, n in severity_rows],
        label_width=90,
    )
    if report.sections:
        charts["status"] = svg.stacked_bar(
            chart_id="chart-status",
            title="Controls by status",
            desc=", ".join(f"{STATUS_LABELS[s]}: {counts[s]}" for s in Status) + f" of {len(report.sections)}.",
            parts=[svg.Bar(STATUS_LABELS[s], counts[s], STATUS_COLORS[s]) for s in Status],
        )
    return charts
