"""Flask and FastAPI apps record their requests through the SDK into the local stack's real API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from audit_trail.local.stack import LocalStack

pytestmark = [
    pytest.mark.integration,
    # Starlette's TestClient announces a future switch of HTTP client; nothing the SDK can act on.
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]


@pytest.fixture
def stack(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The local stack on this test's database; the app's environment points the SDK at it."""
    with LocalStack(database_url=db_url, port=0, data_dir=tmp_path / "stack", write_state=False) as running:
        monkeypatch.setenv("AUDIT_API_URL", running.api_url)
        # The app's credential: a writer token (the middleware only sends events, it never reads).
        monkeypatch.setenv("AUDIT_API_KEY", running.token("writer", "middleware-tests"))
        monkeypatch.setenv("AUDIT_FLUSH_INTERVAL_SECONDS", "0.05")
        yield running


def request_events(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """The recorded requests, in order."""
    return db.execute(
        "select user_id, action, resource_path, status, details->>'method', (details->>'response_status')::int, "
        "details ? 'duration_ms', host(ip_address) from audit.audit_events order by seq"
    ).fetchall()


def test_flask_app_records_every_request(stack: LocalStack, db: psycopg.Connection[Any]) -> None:
    """Given the seed's Flask integration, when requests succeed, fail and raise, then each is one event."""
    from flask import Flask

    from audit_trail.config import FlaskAuditMiddleware, setup_production_audit_logger

    app = Flask(__name__)

    # Setup audit logging
    logger = asyncio.run(setup_production_audit_logger())

    # Add Flask middleware
    audit_middleware = FlaskAuditMiddleware(app, logger, exclude_paths=("/health",))

    @app.route("/upload", methods=["POST"])
    def upload_file() -> dict[str, str]:
        # Your file upload logic here
        return {"status": "uploaded"}

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("storage offline")

    @app.route("/health")
    def health() -> str:
        return "ok"

    client = app.test_client()
    assert client.post("/upload", headers={"X-User-ID": "alice"}).json == {"status": "uploaded"}
    assert client.get("/missing?token=secret", headers={"X-User-ID": "bob"}).status_code == 404
    assert client.get("/boom").status_code == 500
    assert client.get("/health").status_code == 200
    assert logger.close_sync() == 0

    assert audit_middleware.audit_logger is logger
    assert request_events(db) == [
        ("alice", "http_request", "/upload", "success", "POST", 200, True, "127.0.0.1"),
        ("bob", "http_request", "/missing", "success", "GET", 404, True, "127.0.0.1"),
        ("anonymous", "http_request", "/boom", "failure", "GET", 500, True, "127.0.0.1"),
    ]
    details = db.execute("select details from audit.audit_events where resource_path = '/missing'").fetchone()
    assert details is not None
    assert details[0]["query_params"] == {"token": ""}  # keys kept, values not recorded by default
    failed = db.execute("select details from audit.audit_events where resource_path = '/boom'").fetchone()
    assert failed is not None
    assert failed[0]["error_type"] == "RuntimeError"


def test_fastapi_app_records_requests_with_the_asgi_middleware(stack: LocalStack, db: psycopg.Connection[Any]) -> None:
    """Given a FastAPI app with AuditASGIMiddleware, then each request is one event with its status."""
    from fastapi import FastAPI, HTTPException
    from fastapi.testclient import TestClient

    from audit_trail import AuditASGIMiddleware
    from audit_trail.config import setup_production_audit_logger

    logger = asyncio.run(setup_production_audit_logger())
    app = FastAPI()
    app.add_middleware(AuditASGIMiddleware, audit_logger=logger)

    @app.get("/files/{name}")
    async def read_file(name: str) -> dict[str, str]:
        if name == "secret":
            raise HTTPException(status_code=403, detail="no")
        return {"name": name}

    @app.get("/crash")
    async def crash() -> None:
        raise ValueError("bug")

    with TestClient(app, raise_server_exceptions=False, client=("10.0.0.7", 5555)) as client:
        assert client.get("/files/report.pdf", headers={"X-User-ID": "carol"}).json() == {"name": "report.pdf"}
        assert client.get("/files/secret", headers={"X-User-ID": "carol"}).status_code == 403
        assert client.get("/crash").status_code == 500
    assert logger.close_sync() == 0

    assert request_events(db) == [
        ("carol", "http_request", "/files/report.pdf", "success", "GET", 200, True, "10.0.0.7"),
        ("carol", "http_request", "/files/secret", "success", "GET", 403, True, "10.0.0.7"),
        ("anonymous", "http_request", "/crash", "failure", "GET", 500, True, "10.0.0.7"),
    ]


def test_seed_fastapi_middleware_as_written(stack: LocalStack, db: psycopg.Connection[Any]) -> None:
    """Given the seed's own `@app.middleware("http")` function, then it records each request too."""
    from fastapi import FastAPI, Request
    from fastapi.testclient import TestClient

    from audit_trail import AuditEventType
    from audit_trail.config import setup_production_audit_logger

    app = FastAPI()
    logger = asyncio.run(setup_production_audit_logger())

    @app.middleware("http")
    async def audit_middleware(request: Request, call_next: Any) -> Any:
        start_time = time.time()

        # Log request start
        user_id = request.headers.get("X-User-ID", "anonymous")
        event = logger.create_audit_event(
            event_type=AuditEventType.USER_ACTIVITY,
            user_id=user_id,
            action="fastapi_request",
            resource_path=request.url.path,
            ip_address=request.client.host if request.client else "unknown",
            user_agent=request.headers.get("User-Agent", "unknown"),
            details={"method": request.method, "query_params": dict(request.query_params)},
        )

        response = await call_next(request)

        # Log completion
        event.status = "success"  # type: ignore[assignment]
        event.details["response_status"] = response.status_code
        event.details["duration_ms"] = (time.time() - start_time) * 1000

        await logger.log_event(event)

        return response

    @app.get("/items")
    async def items() -> list[int]:
        return [1, 2]

    with TestClient(app, client=("192.0.2.10", 1234)) as client:
        assert client.get("/items?page=2", headers={"X-User-ID": "dave"}).json() == [1, 2]
    assert logger.close_sync() == 0

    row = db.execute(
        "select user_id, action, resource_path, status, details, host(ip_address) from audit.audit_events"
    ).fetchone()
    assert row is not None
    assert row[:4] == ("dave", "fastapi_request", "/items", "success")
    assert row[4]["query_params"] == {"page": "2"}
    assert row[4]["response_status"] == 200
    assert row[5] == "192.0.2.10"
