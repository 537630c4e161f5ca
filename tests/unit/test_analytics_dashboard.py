"""GET /dashboard: one self-contained page, served with a policy that allows nothing but itself and this API."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from analytics.handler import lambda_handler
from tests.support.apigw import FakeLambdaContext, proxy_event


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _get_dashboard() -> tuple[int, dict[str, str], str]:
    # the page is HTML, not JSON: read the proxy response as it is
    response = lambda_handler(proxy_event("GET", "/dashboard"), FakeLambdaContext(function_name="analytics"))
    assert response.get("isBase64Encoded") is False
    # Powertools' REST resolver answers with multiValueHeaders
    headers = {name.lower(): values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    return response["statusCode"], headers, response["body"]


def _sha(block: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"


def test_dashboard_is_served_as_html_with_a_hash_pinned_policy() -> None:
    """Given GET /dashboard, then the page comes with a CSP naming exactly its inline script and style."""
    status, headers, page = _get_dashboard()

    assert status == 200
    assert headers["content-type"].startswith("text/html")
    policy = dict(part.split(" ", 1) for part in headers["content-security-policy"].split("; "))
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    assert (len(scripts), len(styles)) == (1, 1)
    assert policy["script-src"] == _sha(scripts[0])
    assert policy["style-src"] == _sha(styles[0])
    assert (policy["default-src"], policy["connect-src"], policy["frame-ancestors"]) == ("'none'", "'self'", "'none'")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_dashboard_loads_nothing_from_elsewhere_and_labels_its_controls() -> None:
    """Given the page, then no tag loads a remote resource, no inline style attribute needs unsafe-inline,
    and every form control has a label."""
    _, _, page = _get_dashboard()
    collector = _Collector()
    collector.feed(page)

    assert not [a for _, a in collector.tags if (a.get("src") or a.get("href") or "").startswith(("http", "//"))]
    assert not [tag for tag, a in collector.tags if "style" in a]
    assert not [tag for tag, a in collector.tags if any(name.startswith("on") for name in a)]
    labelled = {a["for"] for tag, a in collector.tags if tag == "label" and a.get("for")}
    controls = {a["id"] for tag, a in collector.tags if tag in ("input", "select", "textarea")}
    assert controls and controls <= labelled
    assert ("html", {"lang": "en"}) in collector.tags
    # API calls are relative, so they reach the same stage the page came from (…/v1/analytics)
    assert 'api("analytics?' in page and 'fetch("/' not in page
    assert "innerHTML" not in page
    assert '"Authorization": "Bearer " + token' in page
    assert "sessionStorage" in page and "localStorage" not in page
