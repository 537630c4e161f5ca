"""Settings parsed from the environment once, lazily (importing this module reads nothing)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the event store is and how to reach it.

    The Postgres transport is used when a database URL is available (directly, or from the
    Secrets Manager secret named by `AUDIT_DATABASE_SECRET_ARN` in Lambda); otherwise the
    Supabase (PostgREST) transport when the project URL and service role key are available.
    """

    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AUDIT_DATABASE_URL", "DATABASE_URL")
    )
    database_secret_arn: str | None = None
    database_role: str | None = Field(
        default=None,
        description="Role to SET LOCAL for every call (e.g. service_role when the login role is broader).",
    )
    supabase_url: str | None = Field(default=None, validation_alias=AliasChoices("AUDIT_SUPABASE_URL", "SUPABASE_URL"))
    supabase_service_role_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AUDIT_SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SERVICE_ROLE_KEY"),
    )
    supabase_key_secret_arn: str | None = None
    connect_timeout_seconds: int = Field(default=5, ge=1, le=60)
    statement_timeout_ms: int = Field(default=20_000, ge=100, le=900_000)
    secret_max_age_seconds: int = Field(default=300, ge=0)
    verify_max_rows: int = Field(default=200_000, ge=1, description="Rows one /integrity/verify call checks.")
    webhook_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret the database webhook must present (X-Audit-Webhook-Secret)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="The webhook secret itself: for the local stack and tests only, never in Lambda."
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="Supabase JWT secret (HS256): for the local stack and tests; in Lambda use the ARN."
    )
    jwt_secret_arn: str | None = Field(default=None, description="Secrets Manager secret holding the JWT secret.")
    jwks_url: str | None = Field(
        default=None, description="Supabase JWKS (ES256/RS256 signing keys); used instead of the JWT secret when set."
    )
    jwt_issuer: str | None = Field(default=None, description="Expected `iss`: https://<ref>.supabase.co/auth/v1.")
    jwt_audience: str = Field(default="authenticated", description="Expected `aud` of Supabase access tokens.")
    event_bus_name: str | None = Field(default=None, description="EventBridge bus that receives every alert.")
    alert_topic_arn: str | None = Field(default=None, description="SNS topic that receives high and critical alerts.")
    sweep_batch_events: int = Field(default=500, ge=1, le=10_000)
    archive_bucket: str | None = Field(default=None, description="Object-Locked S3 bucket for retention archives.")
    archive_lock_days: int = Field(default=2555, ge=1, le=36_500, description="Object Lock retention of archives.")
    retention_batch_events: int = Field(default=2000, ge=1, le=10_000, description="Events per archive object.")
    retention_redact_events: int = Field(default=500, ge=1, le=5_000, description="Events per redaction transaction.")
    sweep_time_budget_seconds: int = Field(default=240, ge=1, le=900)
    digest_bucket: str | None = Field(default=None, description="Object-Locked S3 bucket for signed digests (anchor).")
    digest_lock_days: int = Field(default=2555, ge=1, le=36_500, description="Object Lock retention of digests.")
    signing_key_id: str | None = Field(
        default=None, description="KMS asymmetric SIGN_VERIFY key (ARN, id or alias) that signs digests."
    )
    chain_id: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="Names the chain in digests and their S3 keys (one chain per database).",
    )
    anchor_page_events: int = Field(default=50_000, ge=256, le=100_000, description="Checksums per anchor read.")
    reports_bucket: str | None = Field(default=None, description="S3 bucket that receives compliance reports.")
    reports_kms_key_id: str | None = Field(
        default=None, description="KMS key for the reports' SSE (aws:kms); without it SSE-S3 (AES256)."
    )
    report_url_expiry_seconds: int = Field(
        default=900, ge=60, le=43_200, description="Default lifetime of a report's presigned download URL."
    )
    report_url_max_expiry_seconds: int = Field(
        default=43_200, ge=60, le=604_800, description="Longest `expires_in` a caller may ask for."
    )
    report_max_period_days: int = Field(default=366, ge=1, le=3_660, description="Longest period one report covers.")
    report_clock_skew_seconds: int = Field(
        default=300, ge=1, le=86_400, description="Timestamp vs received_at beyond this is a clock finding (A.8.17)."
    )
    report_csv_page_rows: int = Field(default=10_000, ge=100, le=50_000, description="Events per CSV page query.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call `get_settings.cache_clear()`)."""
    return Settings()
