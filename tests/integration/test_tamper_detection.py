"""Tampering done behind the API's back (as a superuser, triggers off) is caught by GET /integrity/verify."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from ingest.handler import lambda_handler
from tests.support.apigw import ApiResponse, invoke, proxy_event
from tests.support.events import make_event

EVENTS = 40


def verify(query: str = "") -> ApiResponse:
    return invoke(lambda_handler, proxy_event("GET", f"/integrity/verify{query}"))


@pytest.fixture
def chain(configured: str, db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """40 stored events, and a superuser connection allowed to bypass the append-only triggers."""
    response = invoke(
        lambda_handler,
        proxy_event("POST", "/events", body={"events": [make_event(n) for n in range(EVENTS)]}),
    )
    assert response.status == 201
    db.execute("set session_replication_role = replica")  # disables triggers: what an attacker with superuser does
    return db


def test_untouched_chain_verifies(chain: psycopg.Connection[Any]) -> None:
    """Given an untouched chain, When verified, Then it is valid and every event was checked."""
    body = verify().body
    assert body["valid"] is True
    assert (body["checked"], body["head_seq"], body["first_invalid_seq"], body["reason"]) == (
        EVENTS,
        EVENTS,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [
        ("update audit.audit_events set action = 'innocent' where seq = 17", 17, "modified"),
        (
            "update audit.audit_events set details = details || '{\"file_size\": 1}' where seq = 3",
            3,
            "modified",
        ),
        (
            'update audit.audit_events set "timestamp" = "timestamp" + interval \'1 hour\' where seq = 25',
            25,
            "modified",
        ),
        ("update audit.audit_events set user_id = 'someone-else' where seq = 40", 40, "modified"),
        # The same date BC: to_char's YYYY printed both eras alike, so the served JSON did not change.
        (
            "update audit.audit_events set \"timestamp\" = (\"timestamp\" at time zone 'UTC' - interval '4051 years')"
            " at time zone 'UTC' where seq = 5",
            5,
            "modified",
        ),
        ("delete from audit.audit_events where seq = 12", 12, "missing"),
        ("delete from audit.audit_events where seq >= 39", 39, "truncated"),
        (
            "update audit.audit_events set seq = -20 where seq = 20;"
            " update audit.audit_events set seq = 20 where seq = 21;"
            " update audit.audit_events set seq = 21 where seq = -20",
            20,
            "reordered",
        ),
        (
            "update audit.audit_events set user_email = null, ip_address = null, user_agent = null,"
            " session_id = null, details = '{}', metadata = '{}' where seq = 9",
            9,
            "redacted_without_record",
        ),
        (
            "update audit.audit_events set checksum = sha256(convert_to('forged', 'UTF8')) where seq = 30",
            30,
            "chain_hash_mismatch",
        ),
    ],
    ids=[
        "edit-action",
        "edit-details",
        "edit-time",
        "edit-user",
        "edit-era",
        "delete",
        "truncate-tail",
        "swap",
        "blank",
        "checksum",
    ],
)
def test_tampering_is_caught_at_the_first_bad_seq(
    chain: psycopg.Connection[Any], tamper: str, first_bad: int, reason: str
) -> None:
    """Given a tampered row, When the chain is verified, Then verification fails naming the seq and the kind."""
    chain.execute(tamper)

    response = verify()

    assert response.status == 200
    assert response.body["valid"] is False
    assert response.body["first_invalid_seq"] == first_bad
    assert response.body["reason"] == reason
    assert str(first_bad) in response.body["message"]


def test_rewritten_payload_with_recomputed_checksum_breaks_the_link(chain: psycopg.Connection[Any]) -> None:
    """Given an edit whose checksum is recomputed too, When verified, Then the chain hash no longer matches."""
    chain.execute(
        "update audit.audit_events set action = 'x', checksum = sha256(convert_to('x', 'UTF8')) where seq = 5"
    )
    body = verify().body
    assert (body["valid"], body["first_invalid_seq"]) == (False, 5)


def test_range_verification_starts_mid_chain_and_pages(
    chain: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a range and a per-call cap, When verified, Then it links to the previous event and says where to go on."""
    from audit_common.settings import get_settings

    monkeypatch.setenv("AUDIT_VERIFY_MAX_ROWS", "10")
    get_settings.cache_clear()

    first = verify("?from_seq=11").body
    assert (first["valid"], first["checked"], first["complete"], first["next_from_seq"]) == (
        True,
        10,
        False,
        21,
    )
    # to_seq pinned: the first call's own access record (seq 41) has joined the chain meanwhile.
    rest = verify("?from_seq=31&to_seq=40").body
    assert (rest["valid"], rest["checked"], rest["complete"], rest["to_seq"]) == (True, 10, True, 40)


def test_range_after_a_deleted_event_cannot_be_linked(chain: psycopg.Connection[Any]) -> None:
    """Given the event before a range deleted, When that range is verified, Then the deleted seq is named."""
    chain.execute("delete from audit.audit_events where seq = 14")
    body = verify("?from_seq=15&to_seq=20").body
    assert (body["valid"], body["first_invalid_seq"], body["reason"]) == (False, 14, "missing")


def test_bad_range_is_refused(configured: str) -> None:
    """Given to_seq before from_seq, When verifying, Then 400 names the parameter."""
    response = verify("?from_seq=10&to_seq=2")
    assert response.status == 400 and response.body["error"]["message"].startswith("to_seq")


def test_an_inserted_event_that_links_is_named_itself(chain: psycopg.Connection[Any]) -> None:
    """Given seqs 20.. shifted up and a forged event at 20 linked properly to 19, When verified, Then the forged
    seq 20 is named as inserted (seq 21 links to 19, past it), and it is not counted as checked."""
    from audit_common.integrity import chain_hash, event_checksum

    chain.execute("update audit.audit_events set seq = -seq where seq >= 20")
    chain.execute("update audit.audit_events set seq = 1 - seq where seq < 0")
    chain.execute(
        """insert into audit.audit_events (seq, event_id, "timestamp", event_type, user_id, action, status,
                                           security_level, checksum, prev_hash, chain_hash)
           select 20, 'forged-1', "timestamp", 'permission_change', 'mallory', 'grant_role', 'success', 'high',
                  checksum, prev_hash, chain_hash
             from audit.audit_events where seq = 21"""
    )
    (event,) = chain.execute("select audit.event_json(e) from audit.audit_events e where seq = 20").fetchone()  # type: ignore[misc]
    previous = bytes(chain.execute("select chain_hash from audit.audit_events where seq = 19").fetchone()[0])  # type: ignore[index]
    checksum = event_checksum(event)
    chain.execute(
        "update audit.audit_events set checksum = %s, prev_hash = %s, chain_hash = %s where seq = 20",
        (checksum, previous, chain_hash(previous, checksum)),
    )
    # A thorough forger moves the head too, so the chain keeps accepting events (here: the API's
    # record of the verify call itself, without which it would serve no answer).
    chain.execute(
        "update audit.chain_head set seq = 41, chain_hash = (select chain_hash from audit.audit_events where seq = 41)"
    )

    body = verify().body

    assert (body["valid"], body["first_invalid_seq"], body["reason"], body["checked"]) == (False, 20, "inserted", 19)
