"""SDK configuration: destinations from arguments and the environment, presets, validation."""

from __future__ import annotations

import sys

import pytest
from pydantic import ValidationError

from audit_common.models import ComplianceStandard
from audit_trail.config import AuditConfig, ConfigError, DeliveryMode, OverflowPolicy
from audit_trail.factory import AuditLoggerFactory

_ENV = (
    "AUDIT_API_URL",
    "AUDIT_API_KEY",
    "AUDIT_TOKEN",
    "DATABASE_URL",
    "AUDIT_DATABASE_URL",
    "SUPABASE_URL",
    "AUDIT_SUPABASE_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
    "AUDIT_SUPABASE_KEY",
    "AUDIT_OVERFLOW_POLICY",
    "AUDIT_BATCH_SIZE",
    "AUDIT_READ_TOKEN",
    "AUDIT_READ_API_KEY",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def test_api_url_argument_means_http() -> None:
    """Given an api_url and key, when the mode is resolved, then events go over HTTP with that key."""
    config = AuditConfig(api_url="http://127.0.0.1:3000", api_key="tok")

    assert config.delivery_mode() is DeliveryMode.HTTP
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "tok"


def test_seed_environment_variables_mean_supabase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the seed's SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, then the SDK writes to Supabase."""
    monkeypatch.setenv("SUPABASE_URL", "https://project.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-key")

    config = AuditConfig()

    assert config.delivery_mode() is DeliveryMode.SUPABASE
    assert config.supabase_url == "https://project.supabase.co"
    assert config.supabase_key is not None
    assert config.supabase_key.get_secret_value() == "service-key"


def test_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given DATABASE_URL in the environment, when supabase_url/key are passed, then Supabase is used."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://somewhere/db")

    config = AuditConfig(supabase_url="https://p.supabase.co", supabase_key="k")

    assert config.delivery_mode() is DeliveryMode.SUPABASE


def test_environment_order_is_api_then_database_then_supabase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given several destinations in the environment, then the API wins, then the database."""
    monkeypatch.setenv("SUPABASE_URL", "https://p.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "k")
    monkeypatch.setenv("DATABASE_URL", "postgresql://somewhere/db")
    assert AuditConfig().delivery_mode() is DeliveryMode.DATABASE

    monkeypatch.setenv("AUDIT_API_URL", "http://api")
    assert AuditConfig().delivery_mode() is DeliveryMode.HTTP


def test_no_destination_names_every_option() -> None:
    """Given nothing configured, then the error says which settings would work."""
    with pytest.raises(ConfigError) as caught:
        AuditConfig().delivery_mode()

    message = str(caught.value)
    assert "api_url" in message
    assert "DATABASE_URL" in message
    assert "SUPABASE_SERVICE_ROLE_KEY" in message


def test_explicit_mode_needs_its_settings() -> None:
    """Given mode=supabase without a key, then the configuration is refused."""
    with pytest.raises(ValidationError, match="supabase_url and supabase_key"):
        AuditConfig(mode="supabase", supabase_url="https://p.supabase.co")
    with pytest.raises(ConfigError, match="database_url"):
        AuditConfig(mode="database", api_url="http://api").delivery_mode()


def test_seed_fields_and_lenient_standards() -> None:
    """Given the seed's custom configuration, then it parses, standards given by value or NAME."""
    config = AuditConfig(
        supabase_url="https://p.supabase.co",
        supabase_key="k",
        environment="production",
        compliance_standards=[ComplianceStandard.GDPR, "SOX"],
        retention_days=2555,
        enable_streaming=True,
        enable_security_detection=True,
    )

    assert config.compliance_standards == [ComplianceStandard.GDPR, ComplianceStandard.SOX]
    assert config.retention_days == 2555


def test_buffer_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given AUDIT_OVERFLOW_POLICY and AUDIT_BATCH_SIZE, then they are read and checked."""
    monkeypatch.setenv("AUDIT_OVERFLOW_POLICY", "drop")
    monkeypatch.setenv("AUDIT_BATCH_SIZE", "250")
    config = AuditConfig(api_url="http://api")
    assert config.overflow_policy is OverflowPolicy.DROP
    assert config.batch_size == 250

    monkeypatch.setenv("AUDIT_BATCH_SIZE", "5000")
    with pytest.raises(ValidationError, match="batch_size"):
        AuditConfig(api_url="http://api")
    with pytest.raises(ValidationError, match="retry_max_seconds"):
        AuditConfig(api_url="http://api", batch_size=10, retry_base_seconds=5, retry_max_seconds=1)


def test_presets_fill_only_what_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given AUDIT_OVERFLOW_POLICY=block, when the development preset (drop) applies, then the env wins."""
    monkeypatch.setenv("AUDIT_API_URL", "http://api")
    development = AuditLoggerFactory.create_development_logger()
    assert development.config.overflow_policy is OverflowPolicy.DROP
    assert development.config.environment == "development"

    monkeypatch.setenv("AUDIT_OVERFLOW_POLICY", "block")
    assert AuditLoggerFactory.create_development_logger().config.overflow_policy is OverflowPolicy.BLOCK

    compliance = AuditLoggerFactory.create_compliance_logger([ComplianceStandard.HIPAA])
    assert compliance.config.compliance_standards == [ComplianceStandard.HIPAA]
    event = compliance.create_audit_event(event_type="file_access", user_id="u", action="read")
    assert event.compliance_tags == [ComplianceStandard.HIPAA]


def test_import_is_light() -> None:
    """Importing the SDK and its config loads no HTTP client, database driver, boto3 or web framework."""
    import subprocess

    code = (
        "import sys, audit_trail, audit_trail.config\n"
        "from audit_trail.config import setup_production_audit_logger, FlaskAuditMiddleware\n"
        "heavy = [m for m in ('httpx', 'psycopg', 'boto3', 'flask', 'fastapi', 'starlette') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == ""


@pytest.mark.parametrize("name", ["AUDIT_READ_TOKEN", "AUDIT_READ_API_KEY"])
def test_read_token_from_the_environment(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Given a writer token and a reader token in the environment, then each lands in its own field."""
    monkeypatch.setenv("AUDIT_API_KEY", "atw_writer")
    monkeypatch.setenv(name, "eyJ.reader")

    config = AuditConfig(api_url="http://api")

    assert config.api_key is not None and config.api_key.get_secret_value() == "atw_writer"
    assert config.read_api_key is not None and config.read_api_key.get_secret_value() == "eyJ.reader"
    assert "eyJ.reader" not in repr(config)
