"""`AuditConfig`: where the SDK sends events and how it buffers them, from arguments or the environment.

Three ways to reach the audit trail, chosen in this order unless `mode` says otherwise:

- `api_url` (+ `api_key`, a writer token; + `read_api_key`, an auditor's token, for reads): the HTTP
  API (`POST /events`), the normal path for applications;
- `database_url` (`DATABASE_URL`): straight to the database's SQL API through the shared transport;
- `supabase_url` + `supabase_key` (`SUPABASE_URL`, `SUPABASE_SERVICE_ROLE_KEY`): the same SQL API over
  Supabase's REST endpoint, as the original seed was configured.

Values passed as arguments win over the environment: `AuditConfig(supabase_url=..., supabase_key=...)`
writes to Supabase even when a `DATABASE_URL` happens to be exported in the shell.

The seed imported its setup helpers and Flask middleware from this module, so they are re-exported
here lazily (`from audit_trail.config import setup_production_audit_logger` keeps working without
importing a web framework until it is asked for).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit_common.models import ComplianceStandard, LenientStandard

if TYPE_CHECKING:
    from audit_trail.factory import (
        AuditLoggerFactory,
        setup_compliance_audit_logger,
        setup_development_audit_logger,
        setup_production_audit_logger,
    )
    from audit_trail.middleware.flask import FlaskAuditMiddleware

__all__ = [
    "AuditConfig",
    "AuditLoggerFactory",
    "ConfigError",
    "DeliveryMode",
    "FlaskAuditMiddleware",
    "OverflowPolicy",
    "setup_compliance_audit_logger",
    "setup_development_audit_logger",
    "setup_production_audit_logger",
]


class ConfigError(ValueError):
    """The configuration cannot work (no destination, contradictory values)."""


class OverflowPolicy(StrEnum):
    """What `log_event` does when the buffer is full (the API is down or slower than the app)."""

    BLOCK = "block"
    """Wait for room (up to `block_timeout_seconds`, then raise `BufferFullError`): nothing accepted is lost."""
    DROP = "drop"
    """Refuse the new event at once: counted in `stats.dropped`, one warning per burst of drops."""


class DeliveryMode(StrEnum):
    """Where events go."""

    HTTP = "http"
    DATABASE = "database"
    SUPABASE = "supabase"


_TRANSPORT_FIELDS = ("api_url", "database_url", "supabase_url")


class AuditConfig(BaseSettings):
    """Everything the SDK needs; every field can also come from `AUDIT_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", validate_default=True)

    # --- destination -------------------------------------------------------------------------------
    mode: Literal["auto", "http", "database", "supabase"] = Field(
        default="auto", description="auto: api_url, else database_url, else supabase_url (arguments first)."
    )
    api_url: str | None = Field(default=None, description="Base URL of the audit trail's HTTP API.")
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("api_key", "token", "AUDIT_API_KEY", "AUDIT_TOKEN"),
        description="Sent as `Authorization: Bearer <key>` with `POST /events`: a writer token (`atw_...`).",
    )
    read_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("read_api_key", "read_token", "AUDIT_READ_API_KEY", "AUDIT_READ_TOKEN"),
        description="Bearer token for reads (get_recent_events, alerts, generate_compliance_report): an auditor's "
        "or a user's access token. Writers may only send events; unset, reads use api_key.",
    )
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("database_url", "AUDIT_DATABASE_URL", "DATABASE_URL")
    )
    database_role: str | None = Field(
        default=None, description="Role to SET LOCAL per call (e.g. service_role when logging in as postgres)."
    )
    supabase_url: str | None = Field(
        default=None, validation_alias=AliasChoices("supabase_url", "AUDIT_SUPABASE_URL", "SUPABASE_URL")
    )
    supabase_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "supabase_key", "AUDIT_SUPABASE_KEY", "AUDIT_SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_ROLE_KEY"
        ),
        description="The service role key (it bypasses RLS: keep it on servers).",
    )

    # --- what the seed configured --------------------------------------------------------------------
    environment: str = Field(default="production", max_length=64, description="Stamped into every event's metadata.")
    service_name: str | None = Field(default=None, max_length=255, description="Stamped into metadata as `source`.")
    compliance_standards: list[LenientStandard] = Field(
        default_factory=list, description="Tags given to events created without compliance_tags."
    )
    retention_days: int = Field(
        default=2555,
        ge=1,
        description="Informational: the database's retention policies decide (legal floors per standard).",
    )
    archive_bucket: str | None = Field(
        default=None, description="Direct mode, cleanup_old_events(): the Object-Locked archive bucket."
    )
    archive_lock_days: int = Field(default=2555, ge=1, le=36_500, description="Object Lock days of archives.")
    enable_streaming: bool = Field(default=True, description="Call registered streaming callbacks.")
    enable_security_detection: bool = Field(
        default=True, description="Poll alerts for callbacks that take (event, analysis)."
    )

    # --- batching, buffering, retries --------------------------------------------------------------
    batch_size: int = Field(default=100, ge=1, le=1000, description="Events per request (the API takes 1000).")
    flush_interval_seconds: float = Field(default=1.0, gt=0, le=300, description="Longest an event waits in memory.")
    buffer_limit: int = Field(default=10_000, ge=1, description="Events held in memory, in flight included.")
    overflow_policy: OverflowPolicy = OverflowPolicy.BLOCK
    block_timeout_seconds: float | None = Field(
        default=30.0, gt=0, description="How long `block` waits for room before raising; None: forever."
    )
    retry_base_seconds: float = Field(default=0.2, gt=0, le=60, description="First backoff step.")
    retry_max_seconds: float = Field(default=30.0, gt=0, le=3600, description="Backoff cap (full jitter below it).")
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    close_timeout_seconds: float = Field(
        default=30.0, ge=0, description="How long close() keeps retrying to deliver what is left."
    )
    alert_poll_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    streaming_queue_limit: int = Field(default=10_000, ge=1, description="Callback notifications waiting to run.")

    _explicit: frozenset[str] = PrivateAttr(default=frozenset())

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        # Remember what the caller passed: arguments beat the environment when choosing a destination.
        self._explicit = frozenset(name for name in _TRANSPORT_FIELDS if values.get(name) is not None)

    @model_validator(mode="after")
    def _check_backoff(self) -> AuditConfig:
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("retry_max_seconds must be at least retry_base_seconds")
        if (self.supabase_url is None) != (self.supabase_key is None) and self.mode == "supabase":
            raise ValueError("supabase mode needs both supabase_url and supabase_key")
        return self

    @property
    def default_compliance_tags(self) -> list[ComplianceStandard]:
        """Tags for events created without any."""
        return list(self.compliance_standards)

    def delivery_mode(self) -> DeliveryMode:
        """Where events go: the explicit `mode`, else the first destination given (arguments before env)."""
        if self.mode != "auto":
            mode = DeliveryMode(self.mode)
            self._require(mode)
            return mode
        order = [DeliveryMode.HTTP, DeliveryMode.DATABASE, DeliveryMode.SUPABASE]
        fields = dict(zip(order, _TRANSPORT_FIELDS, strict=True))
        # Given as arguments first, then whatever the environment holds, each group in the same order.
        for explicit_only in (True, False):
            for mode in order:
                if explicit_only and fields[mode] not in self._explicit:
                    continue
                if self._usable(mode):
                    return mode
        raise ConfigError(
            "no destination for audit events: pass api_url (or set AUDIT_API_URL), "
            "or database_url (DATABASE_URL), or supabase_url with supabase_key "
            "(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY)"
        )

    def _usable(self, mode: DeliveryMode) -> bool:
        if mode is DeliveryMode.HTTP:
            return bool(self.api_url)
        if mode is DeliveryMode.DATABASE:
            return self.database_url is not None and bool(self.database_url.get_secret_value())
        return bool(self.supabase_url) and self.supabase_key is not None

    def _require(self, mode: DeliveryMode) -> None:
        if not self._usable(mode):
            needs = {
                DeliveryMode.HTTP: "api_url",
                DeliveryMode.DATABASE: "database_url (DATABASE_URL)",
                DeliveryMode.SUPABASE: "supabase_url and supabase_key (SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY)",
            }[mode]
            raise ConfigError(f"mode={mode.value} needs {needs}")


_LAZY = {
    "AuditLoggerFactory": "audit_trail.factory",
    "setup_production_audit_logger": "audit_trail.factory",
    "setup_development_audit_logger": "audit_trail.factory",
    "setup_compliance_audit_logger": "audit_trail.factory",
    "FlaskAuditMiddleware": "audit_trail.middleware.flask",
}


def __getattr__(name: str) -> Any:
    # PEP 562: the seed imported these from `config`; load them (and Flask) only when asked for.
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'audit_trail.config' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
