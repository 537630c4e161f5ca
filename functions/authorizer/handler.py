"""Lambda REQUEST authorizer of the audit API: who is calling, and which routes they may call.

A Supabase access token (JWT) or a writer token arrives as `Authorization: Bearer ...`. A token
that does not verify raises `Unauthorized`, the one message API Gateway turns into 401; a verified
token whose role may not use the API gets a Deny policy (403); otherwise an Allow policy listing
the role's routes, and the principal in the context for the handlers.

Each refusal is recorded in the chain (PCI DSS 10.2.1.4, invalid access attempts) before the
answer. A request without any Authorization header never reaches this function: API Gateway
answers it 401 itself, and only its access log keeps it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from audit_common.access import authorize
from audit_common.access_log import record_access
from audit_common.auth import Forbidden, Principal, SupabaseJwtVerifier, Unauthorized, authenticate
from audit_common.db import get_transport, read_secret
from audit_common.errors import AuditError, ConfigurationError
from audit_common.guard import access_request, request_route
from audit_common.headers import header
from audit_common.observability import logger, metrics
from audit_common.settings import Settings, get_settings
from authorizer.policy import allow, deny


def verifier_from_settings(settings: Settings) -> SupabaseJwtVerifier:
    """The JWT verifier the settings describe: JWKS when set, else the project's JWT secret."""
    if settings.jwks_url:
        return SupabaseJwtVerifier(
            jwks_url=settings.jwks_url, issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    if secret is None and settings.jwt_secret_arn:
        secret = read_secret(settings.jwt_secret_arn, settings.secret_max_age_seconds)
    if not secret:
        raise ConfigurationError("no JWT key configured: set AUDIT_JWKS_URL, or AUDIT_JWT_SECRET_ARN")
    return SupabaseJwtVerifier(secret=secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience)


@lru_cache(maxsize=1)
def verifier() -> SupabaseJwtVerifier:
    """The process-wide verifier (its JWKS cache survives warm invocations)."""
    return verifier_from_settings(get_settings())


def _record_refusal(event: dict[str, Any], reason: str, principal: Principal | None = None) -> None:
    try:
        record_access(get_transport(), access_request(event), principal, refused_because=reason)
    except (AuditError, ValueError) as exc:  # ValueError: pydantic's ValidationError, should a record not build
        # The answer is a refusal either way; failing to record it must not turn it into a 500.
        logger.error("refused attempt not recorded", extra={"error": str(exc)})
        metrics.add_metric(name="RefusalNotRecorded", unit="Count", value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Authenticate the request and answer with the principal's policy."""
    method_arn = str(event["methodArn"])
    try:
        principal = authenticate(header(event.get("headers"), "authorization"), verifier(), get_transport())
    except Unauthorized as refused:
        logger.info("request refused", extra={"reason": refused.message, "resource": event.get("resource")})
        metrics.add_metric(name="AuthorizerRefused", unit="Count", value=1)
        _record_refusal(event, refused.message)
        raise Exception("Unauthorized") from refused  # the exact message API Gateway maps to 401
    except Forbidden as refused:
        logger.info("request forbidden", extra={"reason": refused.message, "resource": event.get("resource")})
        metrics.add_metric(name="AuthorizerForbidden", unit="Count", value=1)
        _record_refusal(event, refused.message)
        return deny("anonymous", method_arn)
    logger.info("request authenticated", extra={"principal": principal.label, "resource": event.get("resource")})
    try:
        authorize(principal, *request_route(event))
    except Forbidden as refused:
        # The policy below does not list this route, so API Gateway answers 403; record the attempt
        # now, since the function behind the route never sees it. (Later attempts with the same token
        # within the cache TTL meet the cached policy and reach only the API's access log.)
        metrics.add_metric(name="AuthorizerRouteRefused", unit="Count", value=1)
        _record_refusal(event, refused.message, principal)
    return allow(principal, method_arn)
