"""The ingest API against a real, migrated PostgreSQL: write, replay, read, paginate."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from ingest.handler import lambda_handler
from tests.support.apigw import ApiResponse, invoke, proxy_event
from tests.support.events import access_records, app_event_count, event_count, make_event


def post(body: Any) -> ApiResponse:
    return invoke(lambda_handler, proxy_event("POST", "/events", body=body))


def get(path: str, **kwargs: Any) -> ApiResponse:
    return invoke(lambda_handler, proxy_event("GET", path, **kwargs))


@pytest.mark.usefixtures("configured")
class TestWrite:
    def test_single_event_is_created_and_chained_from_genesis(self, db: psycopg.Connection[Any]) -> None:
        """Given an empty store, When one event is posted, Then it is seq 1 linked to the genesis hash."""
        response = post(make_event(0))

        assert response.status == 201
        assert response.body["created"] == 1 and response.body["duplicates"] == 0
        result = response.body["results"][0]
        assert result["status"] == "created" and result["seq"] == 1
        row = db.execute(
            "select encode(prev_hash, 'hex'), encode(chain_hash, 'hex') from audit.audit_events"
        ).fetchone()
        assert row == ("00" * 32, result["chain_hash"])

    def test_replayed_batch_stores_nothing_twice(self, db: psycopg.Connection[Any]) -> None:
        """Given a stored batch, When it is replayed, Then every event answers duplicate with the same seq."""
        batch = {"events": [make_event(n) for n in range(50)]}
        first = post(batch)
        second = post(batch)

        assert first.status == 201 and first.body["created"] == 50
        assert second.status == 200
        assert second.body["created"] == 0 and second.body["duplicates"] == 50
        assert [r["status"] for r in second.body["results"]] == ["duplicate"] * 50
        assert [r["seq"] for r in second.body["results"]] == [r["seq"] for r in first.body["results"]]
        assert all(r["content_matches"] for r in second.body["results"])
        assert event_count(db) == 50

    def test_partially_new_batch_creates_only_the_new_events(self, db: psycopg.Connection[Any]) -> None:
        """Given 10 stored events, When a batch of 15 overlapping ones arrives, Then 5 are created, 10 duplicate."""
        post({"events": [make_event(n) for n in range(10)]})
        response = post({"events": [make_event(n) for n in range(5, 20)]})

        assert response.status == 200
        assert (response.body["created"], response.body["duplicates"]) == (10, 5)
        assert [r["seq"] for r in response.body["results"] if r["status"] == "created"] == list(range(11, 21))
        assert event_count(db) == 20

    def test_same_event_twice_in_one_batch_is_stored_once(self, db: psycopg.Connection[Any]) -> None:
        """Given a batch repeating an event_id, When posted, Then the second copy is a duplicate of the first."""
        response = post({"events": [make_event(1), make_event(1)]})

        assert [r["status"] for r in response.body["results"]] == ["created", "duplicate"]
        assert response.body["results"][0]["seq"] == response.body["results"][1]["seq"]
        assert event_count(db) == 1

    def test_replay_with_different_content_keeps_the_original_and_says_so(self, db: psycopg.Connection[Any]) -> None:
        """Given a stored event, When its id is reused with other content, Then the original stays and differs."""
        post(make_event(3))
        response = post(make_event(3, action="tampered_retry"))

        assert response.body["results"][0]["status"] == "duplicate"
        assert response.body["results"][0]["content_matches"] is False
        assert db.execute("select action from audit.audit_events").fetchone() == ("upload_report",)

    def test_enum_names_in_any_case_are_stored_as_values(self, db: psycopg.Connection[Any]) -> None:
        """Given enum NAMEs in mixed case, When posted, Then the stored event carries the lowercase values."""
        response = post(
            make_event(
                4,
                event_type="FILE_UPLOAD",
                security_level="High",
                compliance_tags=["PCI_DSS", "gdpr", "GDPR"],
            )
        )

        assert response.status == 201
        stored = get(f"/events/{make_event(4)['event_id']}").body
        assert (stored["event_type"], stored["security_level"]) == ("file_upload", "high")
        assert stored["compliance_tags"] == ["gdpr", "pci_dss"]

    @pytest.mark.parametrize(
        "value",
        [
            "'; DROP TABLE audit.audit_events; --",
            "1 OR 1=1",
            "$$ select pg_sleep(10) $$",
            "Robert'); DELETE FROM audit_events;--",
            "\\x00 \\u0000 %s %(x)s {}",
        ],
    )
    def test_sql_looking_strings_are_stored_verbatim(self, value: str, db: psycopg.Connection[Any]) -> None:
        """Given SQL in every text field, When posted, Then it is stored byte for byte and nothing else happens."""
        event = make_event(
            7, action=value, user_id=value, resource_path=value, user_agent=value, details={value: value}
        )
        response = post(event)

        assert response.status == 201
        stored = get(f"/events/{event['event_id']}").body
        assert (stored["action"], stored["user_id"], stored["resource_path"]) == (value, value, value)
        assert stored["details"] == {value: value}
        assert app_event_count(db) == 1
        assert [r["action"] for r in access_records(db)] == ["audit_read"]

    def test_server_assigns_event_id_and_timestamp_when_absent(self) -> None:
        """Given an event without id or timestamp, When posted, Then the server fills both."""
        event = make_event(8)
        del event["event_id"], event["timestamp"]

        response = post(event)

        assert response.status == 201
        event_id = response.body["results"][0]["event_id"]
        stored = get(f"/events/{event_id}").body
        assert stored["timestamp"].endswith("Z") and len(stored["timestamp"]) == 27

    def test_floats_and_unicode_survive_the_jsonb_round_trip(self) -> None:
        """Given numbers and text JSONB normalises, When stored and read back, Then the chain still verifies."""
        details = {
            "ratio": 0.1,
            "big": 1e21,
            "neg0": -0.0,
            "one": 1.0,
            "emoji": "\U0001f600",
            "\U0001f511": "k",
        }
        post(make_event(9, details=details))

        verify = get("/integrity/verify")
        assert verify.body["valid"] is True, verify.body
        assert verify.body["checked"] == 1


@pytest.mark.usefixtures("configured")
class TestRead:
    @pytest.fixture(autouse=True)
    def _seed(self, configured: str) -> None:
        post({"events": [make_event(n) for n in range(120)]})

    def test_get_event_returns_integrity_fields(self) -> None:
        """Given a stored event, When fetched by id, Then it carries seq, checksum and both hashes."""
        event = make_event(5)
        response = get(f"/events/{event['event_id']}")

        assert response.status == 200
        body = response.body
        assert body["seq"] == 6 and body["event_id"] == event["event_id"]
        assert len(body["checksum"]) == len(body["prev_hash"]) == len(body["chain_hash"]) == 64
        assert body["details"] == event["details"]

    def test_unknown_event_is_404_with_error_envelope(self) -> None:
        """Given no such event, When fetched, Then 404 with the error envelope."""
        response = get("/events/no-such-event")

        assert response.status == 404
        assert response.body["error"]["code"] == "not_found"
        assert "no-such-event" in response.body["error"]["message"]

    def test_cursor_pages_cover_every_event_once_newest_first(self) -> None:
        """Given 120 events, When paging by 50, Then 3 pages return all seqs once, descending."""
        seqs: list[int] = []
        cursor = None
        pages = 0
        while True:
            query = "/events?limit=50" + (f"&cursor={cursor}" if cursor else "")
            page = get(query).body
            seqs += [e["seq"] for e in page["events"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert seqs == list(range(120, 0, -1))

    def test_filters_combine(self) -> None:
        """Given mixed events, When filtering by user, type and tag, Then only matching events return."""
        body = get("/events?user_id=user-3&event_type=file_access&limit=1000").body
        expected = [
            n + 1 for n in range(120) if f"user-{n % 17}" == "user-3" and make_event(n)["event_type"] == "file_access"
        ]
        assert sorted(e["seq"] for e in body["events"]) == expected

        tagged = get("/events?compliance_tag=HIPAA&order=asc&limit=1000").body["events"]
        assert [e["seq"] for e in tagged] == [n + 1 for n in range(120) if n % 4 == 1]

    def test_time_range_is_half_open(self) -> None:
        """Given events 1 ms apart, When asking [t10, t20), Then exactly 10 events return."""
        start = make_event(10)["timestamp"].replace("+00:00", "Z")
        end = make_event(20)["timestamp"].replace("+00:00", "Z")
        body = get(f"/events?from={start}&to={end}&limit=1000").body
        assert sorted(e["seq"] for e in body["events"]) == list(range(11, 21))

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("event_type=nope", "event_type"),
            ("from=yesterday", "from"),
            ("from=2026-11-27T08:00:00", "from"),
            ("order=sideways", "order"),
        ],
    )
    def test_bad_query_parameters_are_refused_by_name(self, query: str, field: str) -> None:
        """Given a bad query parameter, When listing, Then 422 names it."""
        response = get(f"/events?{query}")
        assert response.status == 422
        assert [e["field"] for e in response.body["errors"]] == [field]

    def test_foreign_cursor_is_a_400(self) -> None:
        """Given a made-up cursor, When listing, Then 400 says the cursor is not ours."""
        response = get("/events?cursor=bm90LWEtY3Vyc29y")
        assert response.status == 400
        assert response.body["error"]["message"].startswith("cursor:")


@pytest.mark.usefixtures("configured")
def test_duplicate_far_apart_in_one_request_is_stored_once(db: psycopg.Connection[Any]) -> None:
    """Given one event_id at positions 5 and 600, When posted, Then the second is a duplicate of the first."""
    events = [make_event(n) for n in range(1000)]
    events[600] = make_event(5)

    response = post({"events": events})

    results = response.body["results"]
    assert (results[5]["status"], results[600]["status"]) == ("created", "duplicate")
    assert results[600]["seq"] == results[5]["seq"]
    assert [r["index"] for r in results] == list(range(1000))
    assert event_count(db) == 999
    assert [r["seq"] for r in results if r["status"] == "created"] == list(range(1, 1000))
