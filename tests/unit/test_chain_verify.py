"""The hash chain and the streaming verifier: every failure kind, at the edges of a range too."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from audit_common.integrity import (
    GENESIS_HASH,
    ChainVerifier,
    FailureKind,
    VerificationResult,
    chain_hash,
    event_checksum,
)

Row = dict[str, Any]


def make_event(seq: int) -> Row:
    """A realistic stored event, as the SQL API returns it (without integrity fields)."""
    return {
        "seq": seq,
        "event_id": f"evt-{seq:04d}",
        "timestamp": f"2026-11-27T08:{seq // 60:02d}:{seq % 60:02d}.{seq:06d}Z",
        "event_type": "file_download" if seq % 2 else "user_login",
        "user_id": f"user-{seq % 3}",
        "user_email": f"user{seq % 3}@example.com",
        "session_id": f"sess-{seq % 5}",
        "ip_address": "2001:db8::1" if seq % 4 == 0 else "192.0.2.7",
        "user_agent": "Mozilla/5.0",
        "resource_path": f"/files/{seq}.pdf",
        "resource_id": f"file-{seq}",
        "action": "download",
        "status": "success" if seq % 7 else "failure",
        "details": {"bytes": seq * 1024, "ratio": seq / 7, "name": f"Fichier n°{seq}"},
        "security_level": "low",
        "compliance_tags": ["gdpr", "iso_27001"],
        "parent_event_id": None,
        "metadata": {},
        "redacted_at": None,
        "redaction_reason": None,
    }


def seal(rows: list[Row], prev: bytes = GENESIS_HASH) -> list[Row]:
    """Give rows their checksum, prev_hash and chain_hash, the way the database trigger does."""
    for row in rows:
        checksum = event_checksum(row)
        row["checksum"] = checksum.hex()
        row["prev_hash"] = prev.hex()
        prev = chain_hash(prev, checksum)
        row["chain_hash"] = prev.hex()
    return rows


def make_chain(length: int) -> list[Row]:
    return seal([make_event(seq) for seq in range(1, length + 1)])


def redact(row: Row, reason: str = "retention") -> None:
    """What the redaction SQL function does: blank the payload, keep the integrity fields, record it."""
    for field in ("user_email", "ip_address", "user_agent", "session_id", "resource_path"):
        row[field] = None
    row["details"] = {}
    row["metadata"] = {}
    row["redacted_at"] = "2033-11-27T00:00:00.000000Z"
    row["redaction_reason"] = reason


def verify(rows: list[Row], **kwargs: Any) -> VerificationResult:
    verifier = ChainVerifier(**kwargs)
    verifier.feed_many(rows)
    return verifier.result()


def renumber(rows: list[Row], first: int = 1) -> list[Row]:
    """Give rows consecutive seqs, as a forger with database access would (seq is not sealed)."""
    for offset, row in enumerate(rows):
        row["seq"] = first + offset
    return rows


CHAIN = make_chain(12)


@pytest.fixture
def rows() -> list[Row]:
    return copy.deepcopy(CHAIN)


def assert_failure(result: VerificationResult, kind: FailureKind, seq: int, checked: int | None = None) -> None:
    assert not result.valid
    assert result.reason == kind.value
    assert result.first_invalid_seq == seq
    assert result.message
    # Rows before the failure were verified, nothing after (a chain starting at seq 1 by default)
    assert result.checked == (seq - 1 if checked is None else checked)


# --- chain hash -----------------------------------------------------------------------------------


def test_chain_hash_is_sha256_of_the_raw_concatenation() -> None:
    checksum = hashlib.sha256(b"event").digest()
    assert bytes(32) == GENESIS_HASH
    assert chain_hash(GENESIS_HASH, checksum) == hashlib.sha256(bytes(32) + checksum).digest()


@pytest.mark.parametrize(("prev", "checksum"), [(bytes(31), bytes(32)), (bytes(32), bytes(33)), (b"", b"")])
def test_chain_hash_checks_lengths(prev: bytes, checksum: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        chain_hash(prev, checksum)


# --- valid chains ---------------------------------------------------------------------------------


def test_a_valid_chain_verifies(rows: list[Row]) -> None:
    result = verify(rows)
    assert result == VerificationResult(
        valid=True,
        checked=12,
        redacted=0,
        first_invalid_seq=None,
        reason=None,
        message=None,
        last_seq=12,
        last_chain_hash=rows[-1]["chain_hash"],
    )
    assert result.as_dict()["valid"] is True


def test_an_empty_range_is_valid() -> None:
    result = verify([])
    assert result.valid
    assert result.checked == 0
    assert result.last_seq == 0
    assert result.last_chain_hash == GENESIS_HASH.hex()


def test_a_range_starting_mid_chain(rows: list[Row]) -> None:
    # Given the chain hash of seq 5 (from a previous run or a signed digest)
    start = bytes.fromhex(rows[4]["chain_hash"])
    result = verify(rows[5:], expected_prev_hash=start, expected_first_seq=6)
    assert result.valid
    assert result.checked == 7
    assert result.last_seq == 12


def test_a_range_starting_mid_chain_from_the_wrong_point(rows: list[Row]) -> None:
    result = verify(rows[5:], expected_prev_hash=bytes.fromhex(rows[3]["chain_hash"]), expected_first_seq=6)
    assert_failure(result, FailureKind.INSERTED, 6, checked=0)


def test_paged_feeding_gives_the_same_result(rows: list[Row]) -> None:
    rows[7]["details"] = {"bytes": 0}
    verifier = ChainVerifier()
    for start in range(0, 12, 5):
        verifier.feed_many(rows[start : start + 5])
    assert verifier.result() == verify(rows)


def test_hashes_as_raw_bytes_are_accepted(rows: list[Row]) -> None:
    for row in rows:
        for field in ("checksum", "prev_hash", "chain_hash"):
            row[field] = bytes.fromhex(row[field])
    assert verify(rows).valid


# --- modified ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 6, 12])
def test_a_modified_payload(rows: list[Row], seq: int) -> None:
    rows[seq - 1]["details"]["bytes"] += 1
    assert_failure(verify(rows), FailureKind.MODIFIED, seq)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "mallory"),
        ("timestamp", "2026-11-27T08:00:06.000007Z"),
        ("ip_address", "192.0.2.8"),
        ("compliance_tags", ["gdpr"]),
        ("event_type", "FILE_DOWNLOAD"),
        ("timestamp", "not a time"),
        ("details", "not an object"),
    ],
)
def test_any_modified_field(rows: list[Row], field: str, value: Any) -> None:
    rows[5][field] = value
    assert_failure(verify(rows), FailureKind.MODIFIED, 6)


def test_seq_and_received_at_are_not_sealed(rows: list[Row]) -> None:
    rows[5]["received_at"] = "2030-01-01T00:00:00Z"
    assert verify(rows).valid


# --- chain_hash_mismatch ---------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 6, 12])
def test_a_rewritten_checksum(rows: list[Row], seq: int) -> None:
    # Given a forger who modified the payload and stored its new checksum, but not the chain hash
    row = rows[seq - 1]
    row["user_id"] = "mallory"
    row["checksum"] = event_checksum(row).hex()
    assert_failure(verify(rows), FailureKind.CHAIN_HASH_MISMATCH, seq)


@pytest.mark.parametrize("value", ["ab" * 32, "not hex", "AB" * 31, None, 42])
def test_a_bad_stored_chain_hash(rows: list[Row], value: Any) -> None:
    rows[5]["chain_hash"] = value
    assert_failure(verify(rows), FailureKind.CHAIN_HASH_MISMATCH, 6)


def test_a_garbled_checksum(rows: list[Row]) -> None:
    rows[5]["checksum"] = "zz" * 32
    assert_failure(verify(rows), FailureKind.CHAIN_HASH_MISMATCH, 6)


def test_a_row_rewritten_with_all_its_hashes_breaks_the_next_link(rows: list[Row]) -> None:
    # Given a forger who recomputed checksum and chain_hash of seq 6
    rows[5]["user_id"] = "mallory"
    seal([rows[5]], prev=bytes.fromhex(rows[4]["chain_hash"]))
    # Then seq 7 no longer links (seq 6 itself is self-consistent)
    assert_failure(verify(rows), FailureKind.INSERTED, 7)


def test_a_rewritten_tail_is_caught_by_the_chain_head(rows: list[Row]) -> None:
    # Given a forger who rewrote seq 10 and re-sealed everything after it
    head = bytes.fromhex(rows[-1]["chain_hash"])
    rows[9]["user_id"] = "mallory"
    seal(rows[9:], prev=bytes.fromhex(rows[8]["chain_hash"]))
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    # Then only the independently kept head (a signed digest) reveals it
    result = verifier.finish(12, head)
    assert not result.valid
    assert result.reason == FailureKind.TRUNCATED.value
    assert result.first_invalid_seq == 12


# --- missing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 6, 11])
def test_a_missing_row(rows: list[Row], seq: int) -> None:
    del rows[seq - 1]
    assert_failure(verify(rows), FailureKind.MISSING, seq)


def test_several_missing_rows(rows: list[Row]) -> None:
    del rows[3:6]
    result = verify(rows)
    assert_failure(result, FailureKind.MISSING, 4)
    assert result.message is not None
    assert "4..6" in result.message


def test_a_missing_first_row_of_a_mid_chain_range(rows: list[Row]) -> None:
    result = verify(rows[6:], expected_prev_hash=bytes.fromhex(rows[4]["chain_hash"]), expected_first_seq=6)
    assert not result.valid
    assert result.reason == FailureKind.MISSING.value
    assert result.first_invalid_seq == 6


def test_a_deleted_row_with_renumbered_seqs_does_not_link(rows: list[Row]) -> None:
    del rows[5]
    renumber(rows)
    assert_failure(verify(rows), FailureKind.INSERTED, 6)


# --- reordered -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 6, 11])
def test_two_swapped_rows(rows: list[Row], seq: int) -> None:
    # Given rows seq and seq+1 swapped, seqs renumbered so the order by seq shows the swap
    rows[seq - 1], rows[seq] = rows[seq], rows[seq - 1]
    renumber(rows)
    assert_failure(verify(rows), FailureKind.REORDERED, seq)


def test_rows_out_of_seq_order(rows: list[Row]) -> None:
    rows[5], rows[6] = rows[6], rows[5]
    assert_failure(verify(rows), FailureKind.REORDERED, 6)


# --- inserted --------------------------------------------------------------------------------------


def forged(seq: int, prev: bytes) -> Row:
    row = make_event(seq)
    row["user_id"] = "mallory"
    return seal([row], prev=prev)[0]


@pytest.mark.parametrize("position", [0, 6, 12])
def test_an_inserted_row_that_does_not_link(rows: list[Row], position: int) -> None:
    rows.insert(position, forged(position + 1, hashlib.sha256(b"anything").digest()))
    renumber(rows)
    assert_failure(verify(rows), FailureKind.INSERTED, position + 1)


def test_an_inserted_row_that_links_breaks_the_next_link(rows: list[Row]) -> None:
    # Given a forged seq 7 properly linked to seq 6
    rows.insert(6, forged(7, bytes.fromhex(rows[5]["chain_hash"])))
    renumber(rows)
    # Then the original seq 7, now seq 8, links to seq 6: the forged row is named, and not counted
    assert_failure(verify(rows), FailureKind.INSERTED, 7, checked=6)


def test_an_inserted_redacted_row_is_not_counted_as_redacted(rows: list[Row]) -> None:
    # Given a forged, "redacted" seq 7 properly linked to seq 6
    row = forged(7, bytes.fromhex(rows[5]["chain_hash"]))
    redact(row)
    rows.insert(6, row)
    renumber(rows)
    # Then it is the inserted one, and the counts leave it out
    result = verify(rows)
    assert_failure(result, FailureKind.INSERTED, 7, checked=6)
    assert result.redacted == 0


def test_a_duplicated_seq(rows: list[Row]) -> None:
    rows.insert(6, copy.deepcopy(rows[5]))
    assert_failure(
        verify(rows), FailureKind.INSERTED, 6, checked=5
    )  # neither of the two rows with seq 6 counts as verified


# --- truncated -------------------------------------------------------------------------------------


def test_finish_at_the_head(rows: list[Row]) -> None:
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    assert verifier.finish(12, bytes.fromhex(rows[-1]["chain_hash"])).valid


@pytest.mark.parametrize("kept", [0, 1, 11])
def test_a_truncated_chain(rows: list[Row], kept: int) -> None:
    head = bytes.fromhex(rows[-1]["chain_hash"])
    verifier = ChainVerifier()
    verifier.feed_many(rows[:kept])
    result = verifier.finish(12, head)
    assert_failure(result, FailureKind.TRUNCATED, kept + 1)
    assert result.last_seq == kept


def test_finish_needs_rows_only_up_to_the_head(rows: list[Row]) -> None:
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    with pytest.raises(ValueError, match="past the head"):
        verifier.finish(10, bytes.fromhex(rows[9]["chain_hash"]))


def test_finish_keeps_an_earlier_failure(rows: list[Row]) -> None:
    rows[2]["action"] = "delete"
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    assert_failure(verifier.finish(20, bytes(32)), FailureKind.MODIFIED, 3)


# --- redaction -------------------------------------------------------------------------------------


def test_recorded_redactions_keep_the_chain_valid(rows: list[Row]) -> None:
    for row in rows[:4] + rows[-1:]:
        redact(row)
    result = verify(rows)
    assert result.valid
    assert result.redacted == 5
    assert result.checked == 12


def test_a_redacted_row_still_has_to_link(rows: list[Row]) -> None:
    redact(rows[5])
    rows[5]["prev_hash"] = "00" * 32
    assert_failure(verify(rows), FailureKind.INSERTED, 6)


def test_a_redacted_row_still_has_to_hash(rows: list[Row]) -> None:
    redact(rows[5])
    rows[5]["checksum"] = "11" * 32
    assert_failure(verify(rows), FailureKind.CHAIN_HASH_MISMATCH, 6)


@pytest.mark.parametrize("seq", [1, 6, 12])
def test_a_blanked_row_without_a_redaction_record(rows: list[Row], seq: int) -> None:
    redact(rows[seq - 1])
    rows[seq - 1]["redacted_at"] = None
    assert_failure(verify(rows), FailureKind.REDACTED_WITHOUT_RECORD, seq)


# --- the verifier's own contract --------------------------------------------------------------------


def test_verification_stops_at_the_first_failure(rows: list[Row]) -> None:
    rows[2]["action"] = "delete"
    rows[8]["action"] = "delete"
    verifier = ChainVerifier()
    for row in rows:
        verifier.feed(row)
    assert_failure(verifier.result(), FailureKind.MODIFIED, 3)


def test_feed_many_stops_consuming_at_the_first_failure(rows: list[Row]) -> None:
    rows[2]["action"] = "delete"
    consumed: list[int] = []

    def stream() -> Any:
        for row in rows:
            consumed.append(row["seq"])
            yield row

    verifier = ChainVerifier()
    verifier.feed_many(stream())
    assert consumed == [1, 2, 3, 4]  # seq 3 is judged when seq 4 (the lookahead) arrives


def test_failed_tells_a_paging_caller_to_stop(rows: list[Row]) -> None:
    rows[2]["action"] = "delete"
    verifier = ChainVerifier()
    verifier.feed_many(rows[:3])
    assert not verifier.failed  # seq 3 awaits its lookahead row
    verifier.feed_many(rows[3:6])
    assert verifier.failed
    assert_failure(verifier.result(), FailureKind.MODIFIED, 3)


def test_result_closes_the_verifier(rows: list[Row]) -> None:
    verifier = ChainVerifier()
    verifier.feed(rows[0])
    verifier.result()
    with pytest.raises(RuntimeError):
        verifier.feed(rows[1])


def test_a_row_without_seq_is_a_caller_error(rows: list[Row]) -> None:
    del rows[0]["seq"]
    with pytest.raises(ValueError, match="seq"):
        verify(rows)


@pytest.mark.parametrize(("prev", "first"), [(bytes(31), 1), (bytes(32), 0)])
def test_bad_starting_points_are_refused(prev: bytes, first: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - two messages, one contract
        ChainVerifier(expected_prev_hash=prev, expected_first_seq=first)


def test_failure_kinds_are_the_documented_ones() -> None:
    assert {kind.value for kind in FailureKind} == {
        "modified",
        "chain_hash_mismatch",
        "missing",
        "reordered",
        "inserted",
        "truncated",
        "redacted_without_record",
        "digest_missing",
        "digest_altered",
        "signature_invalid",
        "root_mismatch",
        "rows_past_head",
        "head_rolled_back",
        "redaction_unrecorded",
        "redaction_incomplete",
        "not_canonical",
        "digest_overwritten",
        "key_untrusted",
        "digests_stale",
        "digest_discontinuous",
    }


def test_two_rows_with_one_seq_are_inserted_whichever_comes_first(rows: list[Row]) -> None:
    """Given a second row stored with seq 2 (garbled or a copy), Then the verdict is inserted at 2 in either order."""
    twin = copy.deepcopy(rows[1])
    twin["chain_hash"] = hashlib.sha256(b"garbled").hexdigest()
    for pair in ([twin, rows[1]], [rows[1], twin]):
        result = verify([rows[0], *pair, *rows[2:]])
        assert (result.reason, result.first_invalid_seq) == ("inserted", 2)
