"""The dashboard page and the headers it is served with.

The page is static: one HTML file with its style and script inline, so the API serves it without a CDN
or a bucket. Its Content-Security-Policy allows exactly that style and script (by SHA-256), requests to
this API only (`connect-src 'self'`), and nothing else: a value that slipped into the page could not
load or send anything elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Final

PAGE: Final = Path(__file__).with_name("dashboard.html")


@cache
def dashboard_html() -> str:
    """The page's HTML (read once per process)."""
    return PAGE.read_text(encoding="utf-8")


def _hashes(tag: str, html: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks)


def content_security_policy(html: str) -> str:
    """The policy for `html`: its own inline style and script by hash, same-origin API calls, no framing."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {_hashes('script', html)}",
            f"style-src {_hashes('style', html)}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


DASHBOARD_HEADERS: Final = {
    "Content-Security-Policy": content_security_policy(dashboard_html()),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
"""Headers of every dashboard response."""
