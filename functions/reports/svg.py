"""Small, dependency-light SVG charts for self-contained HTML pages (reports now, the dashboard later).

Every chart is returned as `markupsafe.Markup`, so a Jinja2 template with autoescape inserts it as it
is, while every label, title and value that went into it was escaped on the way in: the element
builder `_el` escapes attribute values and text children unless they are already `Markup`. Labels come
from audit events (attacker-controlled strings), so nothing here ever formats a caller's string into
markup by hand.

Charts are accessible images: `role="img"`, a `<title>` and a `<desc>` referenced by
`aria-labelledby`, and the values printed as text beside the bars (colour is never the only carrier of
meaning). They scale with their container through `viewBox`; the caller's CSS sets the width.

Public helpers:
- `line_chart`: one or more series over ordered buckets (lines, shaded areas or columns), with a
  "nice" y axis, gridlines, thinned x labels, an axis caption and a legend when there is more than one
  series. Small multiples (one chart per measure, same buckets) read better than one chart with
  measures of very different sizes.
- `bar_chart`: horizontal bars with the label on the left and the value at the bar's end.
- `stacked_bar`: one horizontal bar split into parts (e.g. pass / attention / fail) that stretches to
  its container; the caller prints the legend with the counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

__all__ = ["Bar", "Series", "bar_chart", "line_chart", "nice_ticks", "stacked_bar"]

# Shared look: the page's font, muted axes, dark text (contrast >= 4.5:1 on white).
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'DejaVu Sans', sans-serif"
TEXT = "#1f2328"
MUTED = "#59636e"
GRID = "#d1d9e0"
AXIS = "#818b98"


@dataclass(frozen=True)
class Series:
    """One series of a time chart. `None` values leave a gap (the bucket had nothing to measure).

    style: "line", "area" (a line with the area under it shaded) or "columns" (one bar per bucket,
    best for sparse counts and maxima); `dashed` applies to lines.
    """

    name: str
    values: Sequence[float | None]
    color: str
    style: Literal["line", "area", "columns"] = "line"
    dashed: bool = False


@dataclass(frozen=True)
class Bar:
    """One bar (or one part of a stacked bar)."""

    label: str
    value: float
    color: str


Child = str | Markup | None

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9:-]*\Z")


def _el(tag: str, attrs: Mapping[str, object] | None = None, *children: Child) -> Markup:
    """An element with escaped attribute values and escaped text children (Markup children pass as is).

    Attribute names use `_` for `-` (`font_size` -> `font-size`); a trailing `_` is dropped (`class_`).
    Attributes whose value is None are left out. Tag and attribute names come from this module's code,
    never from data; they are checked anyway so the builder cannot be turned into an injection.
    """
    names = [tag]
    rendered: list[Markup] = []
    for name, value in (attrs or {}).items():
        if value is None:
            continue
        key = name.rstrip("_").replace("_", "-")
        names.append(key)
        rendered.append(Markup(' {}="{}"').format(key, _num(value) if isinstance(value, float) else value))
    if not all(_NAME.match(n) for n in names):
        raise ValueError(f"not an SVG name: {names}")
    attributes = Markup("").join(rendered)
    body = Markup("").join(escape(child) for child in children if child is not None)
    if not body and tag not in {"title", "desc", "text"}:
        return Markup("<{}{}/>").format(tag, attributes)
    return Markup("<{}{}>{}</{}>").format(tag, attributes, body, tag)


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros (smaller, diff-friendly markup)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _fmt_value(value: float) -> str:
    """A value label: integers with thousands separators, other numbers with one decimal."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Evenly spaced ticks from 0 to a "nice" ceiling at or above `maximum` (steps of 1, 2, 2.5 or 5 x 10^n).

    >>> nice_ticks(87)
    [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    """
    if maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if maximum >= 1 and step < 1:
        step = 1.0
    top = math.ceil(maximum / step - 1e-9) * step
    return [round(i * step, 10) for i in range(round(top / step) + 1)]


def _svg(
    chart_id: str, title: str, desc: str, width: int, height: int, *body: Markup, aspect: str = "xMinYMin meet"
) -> Markup:
    """The outer <svg>: an accessible image named by its <title> and described by its <desc>."""
    return _el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {width} {height}",
            "width": width,
            "height": height,
            "role": "img",
            "aria_labelledby": f"{chart_id}-title {chart_id}-desc",
            "id": chart_id,
            "class_": "chart-svg",
            "font_family": FONT,
            "font_size": 12,
            "preserveAspectRatio": aspect,
        },
        _el("title", {"id": f"{chart_id}-title"}, title),
        _el("desc", {"id": f"{chart_id}-desc"}, desc),
        *body,
    )


def _legend(items: Sequence[tuple[str, str, bool]], x: float, y: float) -> Markup:
    """A one-line legend: a swatch (a dash for dashed lines) and the name, left to right."""
    out: list[Markup] = []
    cursor = x
    for name, color, dashed in items:
        if dashed:
            out.append(
                _el(
                    "line",
                    {
                        "x1": cursor,
                        "y1": y - 4,
                        "x2": cursor + 16,
                        "y2": y - 4,
                        "stroke": color,
                        "stroke_width": 2.5,
                        "stroke_dasharray": "4 3",
                    },
                )
            )
        else:
            out.append(_el("rect", {"x": cursor, "y": y - 9, "width": 16, "height": 10, "rx": 2, "fill": color}))
        out.append(_el("text", {"x": cursor + 22, "y": y, "fill": TEXT}, name))
        # Approximate text width: enough for the page's sans-serif at 12 px.
        cursor += 22 + 7 * len(name) + 18
    return _el("g", {"class_": "legend"}, *out)


def _axes(
    *,
    ticks: Sequence[float],
    y_at: Callable[[float], float],
    x_at: Callable[[int], float],
    x_labels: Sequence[str],
    y_label: str,
    box: tuple[float, float, float, float],
    max_x_labels: int,
    label_steps: Sequence[int],
) -> list[Markup]:
    """Gridlines with y tick values, the y caption, and thinned x labels with their tick marks."""
    left, top, plot_w, plot_h = box
    body: list[Markup] = []
    for tick in ticks:
        y = y_at(tick)
        body.append(_el("line", {"x1": left, "y1": y, "x2": left + plot_w, "y2": y, "stroke": GRID}))
        body.append(_el("text", {"x": left - 8, "y": y + 4, "text_anchor": "end", "fill": MUTED}, _fmt_value(tick)))
    body.append(_el("text", {"x": 0, "y": top - 14, "text_anchor": "start", "fill": MUTED}, y_label))
    # About 7 units per character at this font size, plus a gap.
    label_room = 7 * max((len(label) for label in x_labels), default=1) + 12
    fits = max(1, min(max_x_labels, int(plot_w // label_room)))
    needed = math.ceil(len(x_labels) / fits)
    step = next((k for k in label_steps if k >= needed), needed)
    for i in range(0, len(x_labels), step):
        x = x_at(i)
        body.append(_el("line", {"x1": x, "y1": top + plot_h, "x2": x, "y2": top + plot_h + 4, "stroke": AXIS}))
        body.append(_el("text", {"x": x, "y": top + plot_h + 18, "text_anchor": "middle", "fill": MUTED}, x_labels[i]))
    return body


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    y_max: float | None = None,
    width: int = 400,
    height: int = 190,
    max_x_labels: int = 6,
    label_steps: Sequence[int] = (1, 2, 3, 4, 6, 7, 12, 14, 24, 28, 48, 56, 96, 168),
) -> Markup:
    """A chart of one or more series over ordered buckets (x_labels), with a y axis starting at 0.

    `y_max` fixes the axis ceiling (e.g. 10 for a risk score); otherwise it is the data's maximum
    rounded up to a nice number. Bucket labels are printed every k-th bucket from the first, k the
    smallest of `label_steps` (calendar-friendly: days, weeks, hours) that keeps them apart and at most
    `max_x_labels`. `y_label` is printed above the axis (e.g. "events per day").
    """
    left, right, top, bottom = 50, 26, 46 if len(series) > 1 else 30, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(x_labels))
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(y_max, count=5) if y_max is not None else nice_ticks(max(values, default=0.0), count=4)
    ceiling = ticks[-1] or 1.0
    has_columns = any(s.style == "columns" for s in series)
    # Columns need a slot per bucket; lines run edge to edge.
    slot = plot_w / n

    def x_at(i: int) -> float:
        if has_columns:
            return left + slot * (i + 0.5)
        return left + (plot_w / 2 if n <= 1 else plot_w * i / (n - 1))

    def y_at(v: float) -> float:
        return top + plot_h * (1 - min(max(v, 0.0), ceiling) / ceiling)

    body = _axes(
        ticks=ticks,
        y_at=y_at,
        x_at=x_at,
        x_labels=x_labels,
        y_label=y_label,
        box=(left, top, plot_w, plot_h),
        max_x_labels=max_x_labels,
        label_steps=label_steps,
    )
    for s in series:
        if s.style == "columns":
            col_w = max(1.0, slot * 0.7)
            for i, v in enumerate(s.values[:n]):
                if v is None or v <= 0:
                    continue
                y = y_at(v)
                body.append(
                    _el(
                        "rect",
                        {"x": x_at(i) - col_w / 2, "y": y, "width": col_w, "height": top + plot_h - y, "fill": s.color},
                        _el("title", None, f"{x_labels[i]}: {_fmt_value(v)}"),
                    )
                )
            continue
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values[:n]):
            if v is None:
                runs.append([])
            else:
                runs[-1].append((x_at(i), y_at(v)))
        for run in (r for r in runs if r):
            points = " ".join(f"{_num(x)},{_num(y)}" for x, y in run)
            if s.style == "area" and len(run) > 1:
                base = _num(top + plot_h)
                area = f"{_num(run[0][0])},{base} {points} {_num(run[-1][0])},{base}"
                body.append(_el("polygon", {"points": area, "fill": s.color, "fill_opacity": 0.14}))
            if len(run) > 1:
                body.append(
                    _el(
                        "polyline",
                        {
                            "points": points,
                            "fill": "none",
                            "stroke": s.color,
                            "stroke_width": 2,
                            "stroke_linejoin": "round",
                            "stroke_dasharray": "5 4" if s.dashed else None,
                        },
                    )
                )
            if len(run) == 1 or n <= 16:  # markers while they stay distinguishable (and for lone points)
                body.extend(_el("circle", {"cx": x, "cy": y, "r": 2.5, "fill": s.color}) for x, y in run)
    body.append(_el("line", {"x1": left, "y1": top + plot_h, "x2": left + plot_w, "y2": top + plot_h, "stroke": AXIS}))
    if len(series) > 1:
        body.append(_legend([(s.name, s.color, s.dashed) for s in series], left, 14))
    return _svg(chart_id, title, desc, width, height, *body)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    bars: Sequence[Bar],
    width: int = 400,
    bar_height: int = 18,
    gap: int = 10,
    label_width: int = 140,
    value_format: Callable[[float], str] = _fmt_value,
) -> Markup:
    """Horizontal bars, one per row: label on the left (shortened with an ellipsis), value after the bar."""
    top = 8
    value_room = 60
    plot_w = width - label_width - value_room
    height = top * 2 + max(1, len(bars)) * (bar_height + gap) - gap
    peak = max((b.value for b in bars), default=0.0) or 1.0
    max_chars = max(4, label_width // 7)
    body: list[Markup] = []
    for i, bar in enumerate(bars):
        y = top + i * (bar_height + gap)
        label = bar.label if len(bar.label) <= max_chars else bar.label[: max_chars - 1] + "…"
        bar_w = max(plot_w * bar.value / peak, 2 if bar.value > 0 else 0)
        body.append(
            _el(
                "text",
                {"x": label_width - 8, "y": y + bar_height / 2 + 4, "text_anchor": "end", "fill": TEXT},
                _el("title", None, bar.label) if label != bar.label else None,
                label,
            )
        )
        body.append(_el("rect", {"x": label_width, "y": y, "width": plot_w, "height": bar_height, "fill": "#f6f8fa"}))
        if bar_w:
            body.append(
                _el(
                    "rect",
                    {"x": label_width, "y": y, "width": bar_w, "height": bar_height, "rx": 2, "fill": bar.color},
                )
            )
        body.append(
            _el(
                "text",
                {"x": label_width + bar_w + 6, "y": y + bar_height / 2 + 4, "fill": TEXT, "font_weight": 600},
                value_format(bar.value),
            )
        )
    return _svg(chart_id, title, desc, width, height, *body)


def stacked_bar(
    *,
    chart_id: str,
    title: str,
    desc: str,
    parts: Sequence[Bar],
    width: int = 1000,
    height: int = 20,
) -> Markup:
    """One horizontal bar split into parts proportional to their values (e.g. pass / attention / fail).

    The bar stretches to its container (`preserveAspectRatio="none"`; give it a CSS height), so it holds
    no text: the caller prints a legend with the counts next to it, and `desc` says the same in words.
    """
    total = sum(p.value for p in parts)
    body: list[Markup] = []
    x = 0.0
    for part in parts:
        if part.value <= 0 or total <= 0:
            continue
        w = width * part.value / total
        body.append(
            _el(
                "rect",
                {"x": x, "y": 0, "width": w, "height": height, "fill": part.color},
                _el("title", None, f"{part.label}: {_fmt_value(part.value)}"),
            )
        )
        # A white divider keeps neighbouring parts apart without relying on their colours.
        if x > 0:
            body.append(
                _el(
                    "line",
                    {
                        "x1": x,
                        "y1": 0,
                        "x2": x,
                        "y2": height,
                        "stroke": "#fff",
                        "stroke_width": 3,
                        "vector_effect": "non-scaling-stroke",
                    },
                )
            )
        x += w
    if total <= 0:
        body.append(_el("rect", {"x": 0, "y": 0, "width": width, "height": height, "fill": "#f6f8fa"}))
    return _svg(chart_id, title, desc, width, height, *body, aspect="none")
