"""The audit of the audit: every read of audit data, and every refused attempt, goes into the chain.

PCI DSS v4.0 10.2.1.3 asks for a record of all access to audit logs, and 10.2.1.4 of invalid access
attempts; an auditor also wants to know who pulled which events, alerts and reports. The record is an
ordinary event, sealed and chained like any other, so it is as tamper-evident as what was read.

The event_id derives from the API request id, so a retried invocation of the same request records
it once (the chain answers `duplicate`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from audit_common.auth import Principal
from audit_common.db import Transport
from audit_common.event_store import store_events
from audit_common.models import AuditEventIn, EventStatus, EventType, SecurityLevel, is_email

AUDIT_READ: Final = "audit_read"
"""The action of a successful read of audit data (counted by the PCI DSS 10.2.1.3 report section)."""
AUDIT_CHANGE: Final = "audit_change"
"""The action of a successful change made through the API (an alert acknowledged or resolved)."""
AUDIT_ACCESS_REFUSED: Final = "audit_access_refused"
"""The action of a refused request (PCI DSS 10.2.1.4)."""
ACCESS_ACTIONS: Final = (AUDIT_READ, AUDIT_CHANGE, AUDIT_ACCESS_REFUSED)
"""Every action of the API's records of its own use."""


_NOT_IN_EVENT_ID: Final = re.compile(r"[^A-Za-z0-9._:-]")


MAX_QUERY_PARAMETERS: Final = 50
"""Query parameters kept in a record (API Gateway allows ~10 KB of query; a record stays small)."""


def _text(value: str, limit: int) -> str:
    # The record copies what the caller sent, and a caller can send anything: a NUL (which the event
    # refuses, as JSONB cannot hold it) becomes U+FFFD and long values are cut, so no request can make
    # its own record invalid, and with it the answer fail.
    return value.replace("\x00", "\ufffd")[:limit]


def _ip_or_none(value: str | None) -> str | None:
    # API Gateway's test console sends "test-invoke-source-ip"; an event refuses a non-address.
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


class AccessRequest(BaseModel):
    """What the API knows about one request, independent of Lambda's event shape."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    method: str
    path: str
    resource: str
    query: Mapping[str, str] = {}
    source_ip: str | None = None
    user_agent: str | None = None


def access_event(
    request: AccessRequest,
    principal: Principal | None,
    *,
    refused_because: str | None = None,
    facts: Mapping[str, Any] | None = None,
    action: str = AUDIT_READ,
) -> AuditEventIn:
    """The event recording one access to audit data (or one refused attempt)."""
    refused = refused_because is not None
    query = list(request.query.items())
    details: dict[str, Any] = {
        "route": _text(f"{request.method.upper()} {request.resource}", 1000),
        "query": {_text(key, 200): _text(value, 1000) for key, value in query[:MAX_QUERY_PARAMETERS]},
        "role": principal.role.value if principal else None,
        "request_id": _text(request.request_id, 200),
        **(facts or {}),
    }
    if len(query) > MAX_QUERY_PARAMETERS:
        details["query_parameters_left_out"] = len(query) - MAX_QUERY_PARAMETERS
    if request.source_ip and _ip_or_none(request.source_ip) is None:
        details["source"] = _text(request.source_ip, 200)
    if refused_because is not None:
        details["reason"] = _text(refused_because, 1000)
    return AuditEventIn(
        event_id=f"{'refused' if refused else action.removeprefix('audit_')}-"
        f"{_NOT_IN_EVENT_ID.sub('_', request.request_id)[:200]}",
        event_type=EventType.SECURITY_EVENT if refused else EventType.USER_ACTIVITY,
        user_id=_text(principal.label, 255) if principal else "anonymous",
        # The email comes from the token's claims: keep it only when the event would accept it, so a
        # claim like "" can never stop the access record (and with it the answer).
        user_email=principal.email if principal and principal.email and is_email(principal.email) else None,
        ip_address=_ip_or_none(request.source_ip),
        user_agent=_text(request.user_agent or "", 1000) or None,
        resource_path=_text(request.path, 4096),
        action=AUDIT_ACCESS_REFUSED if refused else action,
        status=EventStatus.FAILURE if refused else EventStatus.SUCCESS,
        details=details,
        security_level=SecurityLevel.HIGH if refused else SecurityLevel.MEDIUM,
    )


def record_access(
    transport: Transport,
    request: AccessRequest,
    principal: Principal | None,
    *,
    refused_because: str | None = None,
    facts: Mapping[str, Any] | None = None,
    action: str = AUDIT_READ,
) -> None:
    """Append the access record to the chain (in its own SQL API call, before the answer is sent)."""
    event = access_event(request, principal, refused_because=refused_because, facts=facts, action=action)
    store_events(transport, [event])
