"""A report's presigned URL fetched with a real HTTP GET (urllib) from a moto S3 server, as an auditor's browser would.

moto's server serves the object but checks neither the signature nor the expiry (tests/support notes it),
so this proves the URL addresses the stored object and that the bytes are the recorded ones.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.models import AuditEventIn
from audit_common.settings import get_settings
from reports import handler as reports_handler
from tests.support.apigw import invoke, proxy_event
from tests.support.events import make_event

BUCKET = "audit-reports-served"


@pytest.fixture
def s3_server(configured: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on a free port, with the reports function pointed at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AUDIT_REPORTS_BUCKET": BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reports_handler._store.cache_clear()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        reports_handler._store.cache_clear()
        server.stop()


def test_presigned_url_serves_the_html_report(s3_server: str, transport: PostgresTransport) -> None:
    """Given a stored report, When its download_url is fetched over HTTP, Then the HTML page comes back, byte
    for byte the object whose SHA-256 the reports table recorded."""
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = [
        make_event(n, event_id=f"d-{n}", timestamp=(now - timedelta(seconds=60 - n)).isoformat()) for n in range(30)
    ]
    event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])
    body = {"standard": "iso_27001", "start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}
    created = invoke(reports_handler.lambda_handler, proxy_event("POST", "/reports", body=body))
    assert created.status == 201, created.body
    url = created.body["download_url"]
    assert url.startswith(s3_server) and created.body["download_format"] == "html"

    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the moto server's http URL)
        page = response.read()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
    assert hashlib.sha256(page).hexdigest() == created.body["formats"]["html"]["sha256"]
    text = page.decode()
    assert text.lstrip().lower().startswith("<!doctype html>")
    assert "A.8.17" in text and created.body["report_id"] in text
