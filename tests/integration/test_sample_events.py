"""The sample events in events/ingest work against the real handler, as `sam local invoke -e` would use them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.integrity import SEALED_FIELDS
from audit_common.models import AuditEventIn
from audit_common.settings import get_settings
from detect.handler import lambda_handler as detect_handler
from detect.sweep import lambda_handler as sweep_handler
from ingest.handler import lambda_handler
from retention.handler import lambda_handler as retention_handler
from retention.nightly import lambda_handler as nightly_handler
from tests.support.apigw import FakeLambdaContext, invoke
from tests.support.aws import archive_bucket
from tests.support.events import access_records, event_count, make_event, one

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ingest"


def replay(name: str) -> Any:
    return invoke(lambda_handler, json.loads((EVENTS / name).read_text()))


@pytest.mark.usefixtures("configured")
def test_sample_events_in_order(db: psycopg.Connection[Any]) -> None:
    """Given an empty store, When the samples are replayed in order, Then each answers as its README says."""
    first = replay("post_event.json")
    assert first.status == 201 and first.body["created"] == 1

    again = replay("post_duplicate.json")
    assert again.status == 200 and again.body["results"][0]["status"] == "duplicate"
    assert again.body["results"][0]["seq"] == first.body["results"][0]["seq"]

    batch = replay("post_batch.json")
    assert batch.status == 201 and batch.body["created"] == 3

    invalid = replay("post_invalid.json")
    assert invalid.status == 422
    assert {e["field"] for e in invalid.body["errors"]} == {"event_type", "ip_address"}
    assert event_count(db) == 4

    listed = replay("get_events.json")
    assert listed.status == 200 and listed.body["events"]
    assert all(e["user_id"] == "user-123" for e in listed.body["events"])

    one = replay("get_event.json")
    assert one.status == 200 and one.body["event_id"] == first.body["results"][0]["event_id"]

    assert replay("get_event_unknown.json").status == 404

    # the 4 events, and the access records of the two successful reads before this one
    verified = replay("verify.json")
    assert verified.status == 200 and verified.body["valid"] is True and verified.body["checked"] == 6


DETECT_EVENTS = EVENTS.parent / "detect"


@pytest.mark.usefixtures("sinks")
def test_detect_sample_events_in_order(transport: PostgresTransport, db: psycopg.Connection[Any]) -> None:
    """Given the event the webhook samples name, When the samples are replayed, Then each answers as documented."""
    sample = json.loads(json.loads((DETECT_EVENTS / "webhook_insert.json").read_text())["body"])["record"]
    event = {k: sample[k] for k in SEALED_FIELDS}
    event_store.store_events(transport, [AuditEventIn.model_validate(event)])

    def detect(name: str) -> Any:
        return invoke(detect_handler, json.loads((DETECT_EVENTS / name).read_text()))

    inserted = detect("webhook_insert.json")
    assert inserted.status == 200 and inserted.body["status"] == "analysed" and inserted.body["seq"] == 1
    assert detect("webhook_update.json").body["status"] == "ignored"
    assert detect("webhook_other_table.json").body["status"] == "ignored"
    assert detect("webhook_bad_secret.json").status == 401
    assert detect("get_alerts.json").status == 200
    assert detect("patch_alert.json").status == 404  # the sample's alert id does not exist here

    schedule = json.loads((DETECT_EVENTS / "sweep_schedule.json").read_text())
    swept = sweep_handler(schedule, FakeLambdaContext(function_name="detect-sweep"))
    # seq 2 is the access record of the GET /alerts call; the sweep analyses it like any event
    assert swept["complete"] is True and swept["watermark"] == 2
    assert one(db, "select watermark from audit.detection_state") == (2,)


RETENTION_EVENTS = EVENTS.parent / "retention"


def test_retention_sample_events(
    configured: str, transport: PostgresTransport, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given events of the samples' subject, some past retention, When the samples run, Then each does its job."""
    subject = json.loads((RETENTION_EVENTS / "export_subject.json").read_text())["pathParameters"]["user_id"]
    old = (datetime.now(UTC) - timedelta(days=3000)).isoformat()
    event_store.store_events(
        transport,
        [
            AuditEventIn.model_validate(make_event(n, user_id=subject, timestamp=old, compliance_tags=[]))
            for n in range(3)
        ],
    )

    def retention(name: str) -> Any:
        return invoke(retention_handler, json.loads((RETENTION_EVENTS / name).read_text()))

    exported = retention("export_subject.json")
    assert exported.status == 200 and exported.body["count"] == 3

    with archive_bucket() as bucket:
        monkeypatch.setenv("AUDIT_ARCHIVE_BUCKET", bucket)
        get_settings.cache_clear()
        schedule = json.loads((RETENTION_EVENTS / "nightly_schedule.json").read_text())
        nightly = nightly_handler(schedule, FakeLambdaContext(function_name="retention-nightly"))
    assert (nightly["status"], nightly["archived"], nightly["redacted"]) == ("completed", 3, 3)

    erased = retention("erase_subject.json")
    assert erased.status == 200 and erased.body["redacted"] == 0 and erased.body["already_redacted"] == 3


ANCHOR_EVENTS = EVENTS.parent / "anchor"


def test_anchor_sample_events(configured: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the event of post_event.json, When the proof sample runs before and after the hourly sample, Then it
    answers 409 (no digest yet) and then a proof that verifies against the signed root."""
    import boto3

    from anchor.handler import lambda_handler as anchor_handler
    from audit_common.integrity.merkle import verify_inclusion
    from tests.support.aws import moto_account

    assert replay("post_event.json").status == 201
    assert replay("get_proof.json").status == 409
    with moto_account():
        boto3.client("s3").create_bucket(Bucket="audit-digests-sample", ObjectLockEnabledForBucket=True)
        key = boto3.client("kms").create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        monkeypatch.setenv("AUDIT_DIGEST_BUCKET", "audit-digests-sample")
        monkeypatch.setenv("AUDIT_SIGNING_KEY_ID", key)
        get_settings.cache_clear()
        schedule = json.loads((ANCHOR_EVENTS / "hourly_schedule.json").read_text())
        anchored = anchor_handler(schedule, FakeLambdaContext(function_name="anchor"))
    assert (anchored["status"], anchored["digest_seq"], anchored["tree_size"]) == ("written", 1, 1)
    proof = replay("get_proof.json")
    assert proof.status == 200 and proof.body["leaf_index"] == 0 and proof.body["inclusion_proof"] == []
    root = bytes.fromhex(proof.body["digest"]["digest"]["root_hash"])
    assert verify_inclusion(0, 1, bytes.fromhex(proof.body["checksum"]), [], root)


AUTHORIZER_EVENTS = EVENTS.parent / "authorizer"


def test_authorizer_sample_event(configured: str, monkeypatch: pytest.MonkeyPatch, db: psycopg.Connection[Any]) -> None:
    """Given the sample REQUEST event with a placeholder token, then 401 and the attempt recorded; with a
    real writer token in its place, a policy allowing only POST /events, and the GET attempt recorded."""
    from audit_trail.local.tokens import issue_writer_token
    from authorizer import handler as authorizer

    monkeypatch.setenv("AUDIT_JWT_SECRET", "sample-event-jwt-secret-0123456789abcdef")
    get_settings.cache_clear()
    authorizer.verifier.cache_clear()
    sample = json.loads((AUTHORIZER_EVENTS / "request.json").read_text())
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.lambda_handler(sample, FakeLambdaContext(function_name="authorizer"))

    token = issue_writer_token(configured, "sample", created_by="t")
    sample["headers"]["Authorization"] = f"Bearer {token}"
    sample["requestContext"]["requestId"] += "-2"  # another request (a retried one is recorded once)
    answer = authorizer.lambda_handler(sample, FakeLambdaContext(function_name="authorizer"))
    assert answer["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/v1/POST/events"
    ]
    assert [(r["principal"], r["action"]) for r in access_records(db)] == [
        ("anonymous", "audit_access_refused"),
        ("writer:sample", "audit_access_refused"),
    ]
    authorizer.verifier.cache_clear()
