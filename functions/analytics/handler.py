"""Analytics Lambda (API): `GET /analytics`, security trends computed in SQL, and `GET /dashboard`, the
page that draws them. Parsing and mapping only.

Access (`/analytics`: auditor or admin; `/dashboard`: anyone, the page signs in with a Supabase JWT; see
layers/common/audit_common/access.py) is enforced by the API's authorizer once it is wired; the routes
themselves stay thin calls.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AwareDatetime

from analytics.config import get_analytics_settings
from analytics.dashboard import DASHBOARD_HEADERS, dashboard_html
from analytics.model import AnalyticsOut
from analytics.service import AnalyticsService, resolve_period
from audit_common.db import get_transport
from audit_common.http import ERROR_RESPONSES, api_lambda_handler, create_resolver

app = create_resolver()

BucketName = Literal["5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "7d"]


@app.get(
    "/analytics",
    summary="Security trends for a period, in time buckets",
    description="Events by type and outcome, failed logins, after-hours activity, new IP addresses per user, "
    "alerts by rule and severity, the risk-score histogram, the riskiest users and addresses, and the chain "
    "and detection state. Defaults: the last 24 hours, and the smallest bucket giving at most 300 buckets.",
    responses=ERROR_RESPONSES,
    tags=["analytics"],
)
def get_analytics(
    start: Annotated[AwareDatetime | None, Query(alias="from", description="Inclusive start, with zone")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="Exclusive end, with zone; default now")] = None,
    bucket: Annotated[BucketName | None, Query(description="Bucket size; default chosen from the period")] = None,
) -> AnalyticsOut:
    """The trends of [from, to)."""
    settings = get_analytics_settings()
    period = resolve_period(start, end, bucket, settings)
    return AnalyticsService(get_transport(), settings).trends(period)


@app.get(
    "/dashboard",
    summary="The security dashboard (one self-contained HTML page)",
    description="Signs in with a Supabase access token kept in the tab's session storage, then calls "
    "/analytics, /alerts and /reports with it. No third-party resource is loaded.",
    responses={200: {"description": "The page", "content": {"text/html": {}}}},
    tags=["analytics"],
)
def get_dashboard() -> Response[str]:
    """The page; its inline script and style are pinned by hash in its Content-Security-Policy."""
    return Response(
        status_code=200, content_type="text/html; charset=utf-8", body=dashboard_html(), headers=dict(DASHBOARD_HEADERS)
    )


lambda_handler = api_lambda_handler(app)
"""API Gateway proxy event in, proxy response out."""
