"""Retention, legal holds and GDPR erasure on the real database and moto S3 (Object Lock)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import psycopg
import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag

from audit_common import event_store
from audit_common.db import PostgresTransport
from audit_common.errors import InvalidInput, NotFound
from audit_common.integrity import event_checksum
from audit_common.integrity.seal import payload_commitment, private_object
from audit_common.models import AuditEventIn
from audit_common.verification import verify_chain
from retention import gdpr, runner
from retention.archive import Archiver, open_private
from retention.handler import lambda_handler
from tests.support.apigw import invoke, proxy_event
from tests.support.aws import archive_bucket
from tests.support.events import make_event, one

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=8 * 365)  # past the 7-year default
RECENT = NOW - timedelta(days=30)


@pytest.fixture
def bucket() -> Iterator[str]:
    with archive_bucket() as name:
        yield name


def ev(n: int, at: datetime, **fields: Any) -> dict[str, Any]:
    return make_event(n, **{"event_id": f"r-{n}", "timestamp": at.isoformat(), "compliance_tags": [], **fields})


def store(transport: PostgresTransport, events: list[dict[str, Any]]) -> None:
    event_store.store_events(transport, [AuditEventIn.model_validate(e) for e in events])


def run(transport: PostgresTransport, bucket: str, **limits: Any) -> runner.RunResult:
    return runner.run_retention(
        transport, Archiver(bucket, lock_days=30), triggered_by="test", limits=runner.RunLimits(**limits)
    )


def redacted(db: psycopg.Connection[Any]) -> set[str]:
    return {r[0] for r in db.execute("select event_id from audit.audit_events where redacted_at is not null")}


def objects(bucket: str, suffix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in listed if o["Key"].endswith(suffix))


class TestRun:
    def test_past_retention_is_archived_then_redacted_and_the_rest_untouched(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str
    ) -> None:
        """Given old, young and held events, When retention runs, Then only old unheld ones are redacted."""
        store(transport, [ev(n, OLD + timedelta(minutes=n)) for n in range(30)])
        store(transport, [ev(100 + n, RECENT) for n in range(10)])
        store(
            transport,
            [
                ev(200, OLD, user_id="litigant"),
                ev(201, OLD, resource_path="/legal/case-7/memo.pdf"),
                ev(202, OLD, compliance_tags=["hipaa"]),
            ],
        )
        db.execute(
            "insert into audit.legal_holds (user_id, reason, created_by)"
            " values ('litigant', 'case 7 discovery', 'legal')"
        )
        db.execute(
            "insert into audit.legal_holds (resource_prefix, reason, created_by) values ('/legal/', 'case 7', 'legal')"
        )
        db.execute(
            "insert into audit.legal_holds (compliance_tag, reason, created_by, held_until)"
            " values ('hipaa', 'OCR audit', 'legal', now() + interval '1 year')"
        )

        result = run(transport, bucket, batch_events=7)

        assert redacted(db) == {f"r-{n}" for n in range(30)}
        assert (result.status, result.archived, result.redacted, result.held_back) == ("completed", 30, 30, 3)
        assert len(objects(bucket, ".jsonl.gz")) == 5  # 30 events in batches of 7
        verified = verify_chain(transport)
        # 43 events and one chained redaction record per batch redacted (5 batches of at most 7)
        assert verified.valid and verified.redacted == 30 and verified.checked == 43 + 5
        records = [
            details
            for (details,) in db.execute(
                "select details from audit.audit_events where action = 'events_redacted' order by seq"
            ).fetchall()
        ]
        assert [record["count"] for record in records] == [7, 7, 7, 7, 2]
        assert sum(last - first + 1 for record in records for first, last in record["seqs"]) == 30

    def test_archive_matches_manifest_and_reproduces_the_checksums(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str
    ) -> None:
        """Given an archived batch, When read back, Then its SHA-256 is the manifest's and every line re-seals."""
        store(transport, [ev(n, OLD + timedelta(seconds=n), details={"n": n, "pi": 3.14159}) for n in range(12)])
        run(transport, bucket)
        s3 = boto3.client("s3")
        [object_key] = objects(bucket, ".jsonl.gz")
        [manifest_key] = objects(bucket, ".manifest.json")
        body = s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()
        manifest = orjson.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())

        assert hashlib.sha256(body).hexdigest() == manifest["sha256"]
        assert one(db, "select sha256 from audit.retention_batches") == (manifest["sha256"],)
        lines = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
        assert [line["seq"] for line in lines] == list(range(1, 13))
        assert all(event_checksum(line).hex() == line["checksum"] for line in lines)
        assert (manifest["first_seq"], manifest["last_seq"], manifest["count"]) == (1, 12, 12)
        assert manifest["last_chain_hash"] == lines[-1]["chain_hash"]
        # The private part is sealed under the user's archive key; opened, it is the event's own and its
        # commitment holds.
        assert not {"user_email", "ip_address", "details", "seal_salt"} & set(lines[0])
        for line in lines:
            (key,) = one(db, "select data_key from audit.subject_keys where user_id = %s", (line["user_id"],))
            row = open_private(line, bytes(key))
            assert row["details"]["pi"] == 3.14159
            assert (
                payload_commitment(bytes.fromhex(row["seal_salt"]), private_object(row)).hex()
                == row["payload_commitment"]
            )

    def test_an_erasure_shreds_what_the_archive_holds_of_the_subject(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str
    ) -> None:
        """Given a subject's events archived by retention (Object Lock: the archive cannot be edited), When the
        subject is erased, Then their archive key is gone and no key the database holds opens their lines, while
        the lines still reproduce their checksums."""
        store(transport, [ev(n, OLD + timedelta(seconds=n), user_id="leaver" if n < 3 else "stayer") for n in range(6)])
        run(transport, bucket)
        s3 = boto3.client("s3")
        [object_key] = objects(bucket, ".jsonl.gz")
        lines = [
            orjson.loads(line)
            for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()).splitlines()
        ]
        gdpr.erase_subject(transport, "leaver", actor="admin:dpo")

        assert one(db, "select count(*) from audit.subject_keys where user_id = 'leaver'") == (0,)
        keys = [bytes(key) for (key,) in db.execute("select data_key from audit.subject_keys").fetchall()]
        for line in lines:
            assert event_checksum(line).hex() == line["checksum"]
            opened = 0
            for key in keys:
                with contextlib.suppress(InvalidTag):
                    open_private(line, key)
                    opened += 1
            assert opened == (0 if line["user_id"] == "leaver" else 1)

    def test_archived_objects_cannot_be_deleted(self, transport: PostgresTransport, bucket: str) -> None:
        """Given an archive under Object Lock COMPLIANCE, When its version is deleted, Then S3 refuses."""
        store(transport, [ev(n, OLD) for n in range(3)])
        run(transport, bucket)
        s3 = boto3.client("s3")
        key = objects(bucket, ".jsonl.gz")[0]
        version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
        assert s3.head_object(Bucket=bucket, Key=key)["ObjectLockMode"] == "COMPLIANCE"
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version)

    def test_second_run_over_the_same_range_does_nothing(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str
    ) -> None:
        """Given a completed run, When retention runs again, Then nothing is archived or redacted twice."""
        store(transport, [ev(n, OLD) for n in range(5)])
        run(transport, bucket)
        again = run(transport, bucket)
        assert (again.batches_this_invocation, again.archived, again.redacted) == (0, 0, 0)
        assert len(objects(bucket, ".jsonl.gz")) == 1

    def test_interrupted_after_archive_resumes_without_archiving_again(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Given a run killed after its first archive, When the next run starts, Then it redacts, once archived."""
        store(transport, [ev(n, OLD + timedelta(seconds=n)) for n in range(10)])

        def killed(*_args: Any) -> None:
            raise TimeoutError("Lambda timed out")

        with monkeypatch.context() as patch:
            patch.setattr(runner, "_redact", killed)
            with pytest.raises(TimeoutError):
                run(transport, bucket, batch_events=4)
        assert redacted(db) == set()
        assert one(db, "select status, archived from audit.retention_runs") == ("running", 4)

        resumed = run(transport, bucket, batch_events=4)

        assert resumed.resumed is True and resumed.status == "completed"
        assert redacted(db) == {f"r-{n}" for n in range(10)}
        assert len(objects(bucket, ".jsonl.gz")) == 3  # batches 1-4, 5-8, 9-10: the first not written twice
        assert one(db, "select count(*) from audit.retention_runs") == (1,)

    def test_crash_between_upload_and_record_reuses_the_object(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Given a run killed between the upload and its record, When rerun, Then there is no second object."""
        store(transport, [ev(n, OLD) for n in range(3)])
        real_call = transport.call

        def fail_record(function: str, args: Any = None) -> Any:
            if function == "retention_record_batch":
                raise ConnectionError("database went away")
            return real_call(function, args)

        with monkeypatch.context() as patch:
            patch.setattr(transport, "call", fail_record)
            with pytest.raises(ConnectionError):
                run(transport, bucket)
        run(transport, bucket)

        assert len(objects(bucket, ".jsonl.gz")) == 1
        assert redacted(db) == {"r-0", "r-1", "r-2"}

    def test_longest_applicable_policy_wins(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], bucket: str
    ) -> None:
        """Given 100-day-old events tagged cis, and cis+sox, When retention runs, Then only the cis-only one goes."""
        hundred_days = NOW - timedelta(days=100)
        store(
            transport,
            [
                ev(1, hundred_days, compliance_tags=["cis"]),
                ev(2, hundred_days, compliance_tags=["cis", "sox"]),
                ev(3, hundred_days),
            ],
        )
        run(transport, bucket)
        assert redacted(db) == {"r-1"}


class TestPolicies:
    @pytest.mark.parametrize(
        ("args", "fragment"),
        [
            ({"p_scope": "default", "p_scope_value": None, "p_days": 0}, "check constraint"),
            ({"p_scope": "default", "p_scope_value": None, "p_days": -5}, "check constraint"),
            ({"p_scope": "compliance_tag", "p_scope_value": "pci_dss", "p_days": 30}, "legal floor"),
            ({"p_scope": "compliance_tag", "p_scope_value": "fisma", "p_days": 400}, "unknown compliance tag"),
            ({"p_scope": "event_type", "p_scope_value": "file_teleport", "p_days": 400}, "unknown event type"),
        ],
    )
    def test_bad_policies_are_refused_and_change_nothing(
        self, transport: PostgresTransport, db: psycopg.Connection[Any], args: dict[str, Any], fragment: str
    ) -> None:
        """Given a zero, negative, below-floor or unknown policy, When set, Then refused with the reason."""
        before = db.execute("select * from audit.retention_policies order by scope, scope_value").fetchall()
        with pytest.raises(InvalidInput, match=fragment):
            transport.call("set_retention_policy", {**args, "p_actor": "admin@example.com"})
        assert db.execute("select * from audit.retention_policies order by scope, scope_value").fetchall() == before

    def test_override_below_the_floor_is_allowed_and_recorded(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given an override reason, When PCI retention is cut to 200 days, Then it is kept with who and why."""
        transport.call(
            "set_retention_policy",
            {
                "p_scope": "compliance_tag",
                "p_scope_value": "pci_dss",
                "p_days": 200,
                "p_actor": "ciso@example.com",
                "p_override_reason": "QSA-approved compensating control, ticket SEC-41",
            },
        )
        change = one(
            db,
            "select old_days, new_days, override_reason, changed_by from audit.retention_policy_changes"
            " where scope_value = 'pci_dss' order by change_id desc limit 1",
        )
        assert change == (365, 200, "QSA-approved compensating control, ticket SEC-41", "ciso@example.com")
        # one change, one row (the upsert once also logged a phantom insert)
        assert one(db, "select count(*) from audit.retention_policy_changes where scope_value = 'pci_dss'") == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("delete from audit.retention_policy_changes")


@pytest.fixture
def api(configured: str) -> str:
    return configured


class TestGdpr:
    def test_erasure_leaves_no_trace_of_email_or_ip_and_the_chain_verifies(
        self, api: str, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a subject's events, When erased, Then no email/IP/UA of theirs remains and the chain verifies."""
        subject = "subject-42"
        store(
            transport,
            [
                ev(
                    n,
                    RECENT,
                    user_id=subject,
                    user_email="s42@example.com",
                    ip_address="192.0.2.42",
                    details={"note": "s42@example.com"},
                )
                for n in range(5)
            ],
        )
        store(transport, [ev(50, RECENT, user_id="someone-else", user_email="other@example.com")])

        response = invoke(
            lambda_handler,
            proxy_event(
                "POST",
                f"/subjects/{subject}/erasure",
                resource="/subjects/{user_id}/erasure",
                path_parameters={"user_id": subject},
            ),
        )

        assert response.status == 200, response.body
        assert (response.body["redacted"], response.body["kept"]) == (5, [])
        dump = "\n".join(str(r) for r in db.execute("select * from audit.audit_events where user_id = %s", (subject,)))
        assert "s42@example.com" not in dump and "192.0.2.42" not in dump
        assert one(db, "select user_email from audit.audit_events where user_id = 'someone-else'") == (
            "other@example.com",
        )
        verified = verify_chain(transport)
        assert verified.valid and verified.redacted == 5
        recorded = one(
            db,
            "select action, details->>'subject', details->>'redacted' from audit.audit_events"
            " where action = 'gdpr_erasure'",
        )
        assert recorded == ("gdpr_erasure", subject, "5")

    def test_erasure_names_what_a_hold_or_retention_obligation_keeps(
        self, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a held event and a recent SOX event, When erased, Then both are kept and named with their ground."""
        subject = "subject-7"
        store(
            transport,
            [
                ev(1, RECENT, user_id=subject),
                ev(2, RECENT, user_id=subject, compliance_tags=["sox"]),
                ev(3, RECENT, user_id=subject, resource_path="/legal/hold/x"),
            ],
        )
        db.execute(
            "insert into audit.legal_holds (resource_prefix, reason, created_by)"
            " values ('/legal/hold/', 'case 12 hold', 'legal')"
        )

        result = gdpr.erase_subject(transport, subject, actor="dpo@example.com")

        assert result.redacted == 1
        assert sorted((k.event_id, k.ground) for k in result.kept) == [
            ("r-2", "retention_obligation"),
            ("r-3", "legal_hold"),
        ]
        sox = next(k for k in result.kept if k.event_id == "r-2")
        assert sox.tags == ["sox"] and sox.keep_until is not None

    def test_export_returns_everything_and_is_recorded(
        self, api: str, transport: PostgresTransport, db: psycopg.Connection[Any]
    ) -> None:
        """Given a subject's events, When exported, Then all come back and the export is an event in the chain."""
        store(transport, [ev(n, RECENT, user_id="subject-9") for n in range(4)])
        response = invoke(
            lambda_handler,
            proxy_event(
                "GET",
                "/subjects/subject-9/export",
                resource="/subjects/{user_id}/export",
                path_parameters={"user_id": "subject-9"},
            ),
        )
        assert response.status == 200
        assert response.body["count"] == 4 and [e["event_id"] for e in response.body["events"]] == [
            f"r-{n}" for n in range(4)
        ]
        assert one(db, "select count(*) from audit.audit_events where action = 'gdpr_export'") == (1,)

    @pytest.mark.parametrize(
        ("method", "subject", "status"),
        [
            ("GET", "nobody-here", 404),
            ("POST", "nobody-here", 404),
            ("GET", "x" * 256, 422),
            ("POST", "x" * 256, 422),
            ("POST", "bad\u0000id", 404),  # no route matches a NUL in the path
        ],
    )
    def test_bad_subject_requests_change_nothing(
        self,
        api: str,
        transport: PostgresTransport,
        db: psycopg.Connection[Any],
        method: str,
        subject: str,
        status: int,
    ) -> None:
        """Given an unknown or malformed subject, When exported or erased, Then 404/422 and no event is written."""
        store(transport, [ev(1, RECENT, user_id="someone")])
        suffix = "export" if method == "GET" else "erasure"
        response = invoke(
            lambda_handler,
            proxy_event(
                method,
                f"/subjects/{subject}/{suffix}",
                resource=f"/subjects/{{user_id}}/{suffix}",
                path_parameters={"user_id": subject},
            ),
        )
        assert response.status == status, response.body
        assert one(db, "select count(*) from audit.audit_events") == (1,)
        assert redacted(db) == set()

    def test_unknown_subject_from_the_service(self, transport: PostgresTransport) -> None:
        """Given no events of a subject, When erasure is asked of the service, Then NotFound."""
        with pytest.raises(NotFound):
            gdpr.erase_subject(transport, "ghost", actor="dpo")
