"""Ready-made loggers: `AuditLoggerFactory` and the seed's `setup_*_audit_logger()` coroutines.

Each setup reads `AuditConfig` from the environment (AUDIT_API_URL, DATABASE_URL, SUPABASE_URL...),
fills in its preset for every field the environment and the arguments left unset, and initializes
the logger. A wrong address or token raises at once; a destination that is merely down is logged
and the logger starts anyway, buffering under its overflow policy until the destination is back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from audit_common.models import ComplianceStandard
from audit_trail.config import AuditConfig, OverflowPolicy
from audit_trail.logger import AuditLogger

PRODUCTION: Final[dict[str, Any]] = {
    "environment": "production",
    "batch_size": 100,
    "flush_interval_seconds": 1.0,
    "buffer_limit": 10_000,
    "overflow_policy": OverflowPolicy.BLOCK,
}
DEVELOPMENT: Final[dict[str, Any]] = {
    "environment": "development",
    "batch_size": 20,
    "flush_interval_seconds": 0.2,
    "buffer_limit": 1_000,
    # A laptop without the API running should not freeze the app: drop, count, warn.
    "overflow_policy": OverflowPolicy.DROP,
    "retry_max_seconds": 5.0,
    "close_timeout_seconds": 5.0,
}
COMPLIANCE: Final[dict[str, Any]] = {
    **PRODUCTION,
    # Evidence first: wait longer for room rather than lose an event, and report alerts.
    "block_timeout_seconds": 120.0,
    "close_timeout_seconds": 120.0,
    "enable_security_detection": True,
}


def _with_preset(config: AuditConfig | None, preset: dict[str, Any], overrides: dict[str, Any]) -> AuditConfig:
    base = config if config is not None else AuditConfig(**overrides)
    unset = {name: value for name, value in preset.items() if name not in base.model_fields_set}
    return base.model_copy(update=unset) if unset else base


class AuditLoggerFactory:
    """Builds loggers from a configuration (not yet initialized: call `initialize()`)."""

    @staticmethod
    def create_logger(config: AuditConfig | None = None) -> AuditLogger:
        """A logger for `config` (default: from the environment)."""
        return AuditLogger(config if config is not None else AuditConfig())

    @staticmethod
    def create_file_management_logger(config: AuditConfig | None = None) -> AuditLogger:
        """The seed's name for `create_logger`: a logger for a file-management application."""
        return AuditLoggerFactory.create_logger(config)

    @staticmethod
    def create_production_logger(config: AuditConfig | None = None, **overrides: Any) -> AuditLogger:
        """Production preset: batches of 100, 1 s flush, 10 000 events buffered, block when full."""
        return AuditLogger(_with_preset(config, PRODUCTION, overrides))

    @staticmethod
    def create_development_logger(config: AuditConfig | None = None, **overrides: Any) -> AuditLogger:
        """Development preset: small fast batches, 1 000 events buffered, drop (with a warning) when full."""
        return AuditLogger(_with_preset(config, DEVELOPMENT, overrides))

    @staticmethod
    def create_compliance_logger(
        standards: Sequence[ComplianceStandard | str], config: AuditConfig | None = None, **overrides: Any
    ) -> AuditLogger:
        """Compliance preset: production's, events tagged with `standards` by default, alerts on."""
        preset = {**COMPLIANCE, "compliance_standards": list(standards)}
        return AuditLogger(_with_preset(config, preset, overrides))


async def setup_production_audit_logger(config: AuditConfig | None = None, **overrides: Any) -> AuditLogger:
    """An initialized production logger (configuration from the environment unless given)."""
    audit_logger = AuditLoggerFactory.create_production_logger(config, **overrides)
    await audit_logger.initialize(require_reachable=False)
    return audit_logger


async def setup_development_audit_logger(config: AuditConfig | None = None, **overrides: Any) -> AuditLogger:
    """An initialized development logger."""
    audit_logger = AuditLoggerFactory.create_development_logger(config, **overrides)
    await audit_logger.initialize(require_reachable=False)
    return audit_logger


async def setup_compliance_audit_logger(
    standards: Sequence[ComplianceStandard | str], config: AuditConfig | None = None, **overrides: Any
) -> AuditLogger:
    """An initialized compliance logger whose events carry `standards` unless they name their own."""
    audit_logger = AuditLoggerFactory.create_compliance_logger(standards, config, **overrides)
    await audit_logger.initialize(require_reachable=False)
    return audit_logger
