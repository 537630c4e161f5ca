"""Settings and the choice of transport (no database needed)."""

from __future__ import annotations

import pytest

from audit_common.db import PostgresTransport, PostgrestTransport, transport_from_settings
from audit_common.errors import ConfigurationError
from audit_common.settings import Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "AUDIT_DATABASE_URL",
        "SUPABASE_URL",
        "AUDIT_SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "AUDIT_SUPABASE_SERVICE_ROLE_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


class TestTransportChoice:
    def test_database_url_wins(self) -> None:
        """Given both a URL and Supabase settings, When choosing, Then Postgres is used."""
        settings = Settings(
            database_url="postgresql://x@127.0.0.1/db",
            supabase_url="https://p.supabase.co",
            supabase_service_role_key="k",
        )
        assert isinstance(transport_from_settings(settings), PostgresTransport)

    def test_supabase_settings_give_postgrest(self) -> None:
        """Given only Supabase settings, When choosing, Then the PostgREST transport is used."""
        settings = Settings(supabase_url="https://p.supabase.co", supabase_service_role_key="k")
        assert isinstance(transport_from_settings(settings), PostgrestTransport)

    def test_nothing_configured_names_the_settings(self) -> None:
        """Given no settings, When choosing, Then the error says which variables to set."""
        with pytest.raises(ConfigurationError, match="DATABASE_URL"):
            transport_from_settings(Settings())


def test_supabase_names_from_the_seed_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the seed's SUPABASE_URL / SUPABASE_SERVICE_ROLE_KEY, When settings load, Then they are used."""
    monkeypatch.setenv("SUPABASE_URL", "https://p.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "sb-secret-key-123")
    settings = Settings()
    assert settings.supabase_url == "https://p.supabase.co"
    assert settings.supabase_service_role_key is not None
    assert "sb-secret-key-123" not in repr(settings)
