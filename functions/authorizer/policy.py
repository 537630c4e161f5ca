"""The authorizer's answer to API Gateway: an IAM policy naming exactly the routes a role may call."""

from __future__ import annotations

from typing import Any

from audit_common.access import api_stage_arn, execute_api_arn, routes_for
from audit_common.auth import AuditRole, Principal, writer_usage_key


def allow(principal: Principal, method_arn: str) -> dict[str, Any]:
    """Allow the principal's routes (all of them, since API Gateway caches the answer per token).

    The context reaches the handler as `requestContext.authorizer`; API Gateway accepts only
    strings, numbers and booleans there, so absent values are left out rather than null.
    """
    resources = [execute_api_arn(method_arn, method, resource) for method, resource in routes_for(principal.role)]
    context: dict[str, str] = {"subject": principal.subject, "role": principal.role.value}
    if principal.email:
        context["email"] = principal.email
    if principal.token_id:
        context["token_id"] = principal.token_id
    answer: dict[str, Any] = {
        "principalId": principal.label,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resources}],
        },
        "context": context,
    }
    if principal.role is AuditRole.WRITER and principal.token_id:
        # Meters each writer in the usage plan (throttle and quota per writer, not only per stage).
        answer["usageIdentifierKey"] = writer_usage_key(principal.token_id)
    return answer


def deny(principal_id: str, method_arn: str) -> dict[str, Any]:
    """Deny every route of the API (API Gateway answers 403)."""
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": f"{api_stage_arn(method_arn)}/*"}
            ],
        },
    }
