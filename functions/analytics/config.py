"""The analytics settings (environment, prefix AUDIT_ANALYTICS_), parsed once, lazily."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AnalyticsSettings(BaseSettings):
    """Limits of `GET /analytics` and the working-hours window that defines "after hours".

    Kept beside the function rather than in audit_common.settings: only this function reads them.
    """

    model_config = SettingsConfigDict(env_prefix="AUDIT_ANALYTICS_", extra="ignore", frozen=True)

    max_period_days: int = Field(default=400, ge=1, le=3660, description="Longest period one request may ask for.")
    max_buckets: int = Field(default=1000, ge=10, le=1000, description="Most buckets one answer may hold.")
    target_buckets: int = Field(
        default=300, ge=10, le=1000, description="When no bucket is given, the smallest that gives at most this many."
    )
    default_period_hours: int = Field(default=24, ge=1, le=24 * 400, description="Period when no `from` is given.")
    workday_start: Annotated[int, Field(ge=0, le=24)] = 8
    workday_end: Annotated[int, Field(ge=0, le=24)] = 18
    workdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default=[1, 2, 3, 4, 5], min_length=1, description="ISO weekdays that are working days (1 = Monday)."
    )
    timezone: str = Field(default="UTC", description="IANA zone of the working hours.")
    top: int = Field(default=10, ge=1, le=100, description="Rows in each top list.")
    verify_tail: int = Field(default=1000, ge=0, le=100_000, description="Newest chain links recomputed per call.")
    refresh_max_events: int = Field(
        default=500_000, ge=0, le=1_000_000, description="Events one call may add to the rollups (0: never refresh)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _hours_in_order(self) -> AnalyticsSettings:
        if self.workday_start > self.workday_end:
            raise ValueError("workday_start must not be after workday_end")
        return self


@lru_cache(maxsize=1)
def get_analytics_settings() -> AnalyticsSettings:
    """The process-wide analytics settings (tests clear the cache after changing the environment)."""
    return AnalyticsSettings()
