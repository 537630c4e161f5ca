"""Risk score 0-10 of an alert (docs/detection.md, "Risk score").

    score = base(rule severity)                     low 2, medium 4, high 6, critical 8
          + event security level                    low 0, medium 0.5, high 1, critical 2
          + volume beyond the threshold             min(1, count / threshold - 1)
          + 1    first-seen IP for the user         (never seen before the window)
          + 1    outside the user's usual hours     (the hour holds < 2% of >= 20 events in 30 days)
          + 1    many accounts from one IP          (an IP rule whose events span >= 5 users: spraying)
          + 0.5  per earlier alert on the same key in 24 h, at most 1.5
    clamped to [0, 10], rounded to one decimal.

Bands (the seed's): low < 3, medium 3 to < 7, high 7 to < 10, critical 10.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

Severity = Literal["low", "medium", "high", "critical"]

RULE_BASE: Final[dict[str, float]] = {"low": 2.0, "medium": 4.0, "high": 6.0, "critical": 8.0}
LEVEL_BONUS: Final[dict[str, float]] = {"low": 0.0, "medium": 0.5, "high": 1.0, "critical": 2.0}
USUAL_HOURS_MIN_HISTORY: Final = 20
USUAL_HOURS_SHARE: Final = 0.02
SPRAY_MIN_USERS: Final = 5


def risk_score(hit: Mapping[str, Any]) -> float:
    """The score of a rule hit as `audit.detect_events` returns it (rule severity, counts, context)."""
    context: Mapping[str, Any] = hit.get("context") or {}
    score = RULE_BASE[hit["rule_severity"]] + LEVEL_BONUS.get(hit.get("security_level") or "low", 0.0)
    threshold = int(hit["threshold"])
    if threshold > 1:
        score += max(0.0, min(1.0, int(hit["event_count"]) / threshold - 1))
    if context.get("first_seen_ip"):
        score += 1
    if outside_usual_hours(context):
        score += 1
    if (context.get("distinct_users") or 0) >= SPRAY_MIN_USERS:
        score += 1
    score += min(1.5, 0.5 * int(context.get("prior_alerts_24h") or 0))
    return round(min(10.0, max(0.0, score)), 1)


def outside_usual_hours(context: Mapping[str, Any]) -> bool:
    """Whether the event's hour of day is one the user is rarely active in (needs some history)."""
    total = int(context.get("user_events_30d") or 0)
    same_hour = int(context.get("user_events_same_hour_30d") or 0)
    return total >= USUAL_HOURS_MIN_HISTORY and same_hour / total < USUAL_HOURS_SHARE


def severity_band(score: float) -> Severity:
    """The seed's bands: low < 3, medium < 7, high < 10, critical 10."""
    if score >= 10:
        return "critical"
    if score >= 7:
        return "high"
    if score >= 3:
        return "medium"
    return "low"
