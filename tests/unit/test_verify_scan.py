"""The event half of `audit-trail verify` without a database: the checksum shortcut, Merkle stitching, COPY parsing."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_common.integrity import SEALED_FIELDS, MerkleFrontier, event_checksum, merkle_root
from audit_common.integrity.seal import PRIVATE_FIELDS, seal_v2
from audit_trail.verify import Failure, Report
from audit_trail.verify_scan import (
    FIELDS,
    NUMBER_PROBLEM,
    MerkleStitcher,
    SealedRowError,
    _parse_block,
    quick_row_ok,
    reference_row_ok,
    row_matches,
)
from tests.support.events import make_event

SALT = bytes(range(16))

# --- rows as the COPY query returns them -------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, -0.0, 1e21, 1e-7, 0.1, 5e-324, 2.0**53, 123456789.125]),
    st.text(max_size=8),
)
json_keys = st.one_of(st.text(max_size=6), st.sampled_from(["a", "\U0001f600", "\ue000", "z\U00010000"]))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(json_keys, children, max_size=3),
    max_leaves=8,
)


def row_of(event: dict[str, Any], *, version: int = 2, redacted: bool = False) -> list[Any]:
    """A row as audit_trail.verify_scan.read_rows yields it (hashes as hex), sealed with ``version``.

    With ``redacted`` the private fields and the salt are blanked afterwards, as audit.redact_seqs does.
    """
    if version == 2:
        commitment, checksum = seal_v2(event, SALT)
        salt: str | None = SALT.hex()
        commitment_hex: str | None = commitment.hex()
    else:
        checksum, salt, commitment_hex = event_checksum(event), None, None
    fields = [event.get(name) for name in SEALED_FIELDS]
    row = [1, checksum.hex(), "00" * 32, "11" * 32, redacted, version, salt, commitment_hex, None, *fields]
    if redacted:
        row[6] = None
        row[8] = "erasure"
        for name in PRIVATE_FIELDS:
            row[FIELDS + SEALED_FIELDS.index(name)] = {} if name in ("details", "metadata") else None
    return row


def stored_event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """An event in the shape the database returns it (sealed text, objects never null, tags sorted)."""
    event = make_event(n, **overrides)
    event["timestamp"] = "2026-11-27T08:00:00.000000Z"
    event.setdefault("details", {})
    event.setdefault("metadata", {})
    event["compliance_tags"] = sorted(set(event.get("compliance_tags") or []))
    event.setdefault("parent_event_id", None)
    return event


def column(name: str) -> int:
    return FIELDS + SEALED_FIELDS.index(name)


@pytest.mark.parametrize("version", [1, 2])
def test_the_shortcut_is_the_reference_on_plain_events(version: int) -> None:
    """Given an event with only strings and integers, Then the orjson shortcut accepts it, as the reference does."""
    row = row_of(
        stored_event(3, details={"file_size": 10, "path": "/a/b"}, compliance_tags=["sox", "gdpr"]), version=version
    )
    assert quick_row_ok(row)
    assert reference_row_ok(row, bytes.fromhex(row[1]))
    assert row_matches(row, bytes.fromhex(row[1]))


@settings(max_examples=300, deadline=None)
@given(
    details=st.dictionaries(json_keys, json_values, max_size=4),
    metadata=st.dictionaries(json_keys, json_values),
    version=st.sampled_from([1, 2]),
)
def test_the_verdict_is_always_the_reference_verdict(
    details: dict[str, Any], metadata: dict[str, Any], version: int
) -> None:
    """Given any details and metadata (floats, integers beyond 2**53, keys above U+FFFF), Then a row matches its
    own reference checksum and nothing else, whether or not the shortcut's bytes were RFC 8785's."""
    row = row_of(stored_event(5, details=details, metadata=metadata), version=version)
    sealed = bytes.fromhex(row[1])

    assert row_matches(row, sealed)
    assert not row_matches(row, hashlib.sha256(b"another event").digest())


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action", "innocent"),
        ("user_id", "mallory"),
        ("ip_address", "10.9.9.9"),
        ("compliance_tags", ["hipaa"]),
        ("user_email", "someone@else.example"),
        ("details", {"file_size": 1}),
        ("event_id", "evt-forged"),
    ],
)
def test_a_changed_column_does_not_match(field: str, value: Any, version: int) -> None:
    """Given a row with one column changed after sealing, Then neither the shortcut nor the reference accepts it."""
    row = row_of(stored_event(2), version=version)
    row[column(field)] = value
    assert not quick_row_ok(row)
    assert not row_matches(row, bytes.fromhex(row[1]))


def test_a_row_that_cannot_be_sealed_does_not_match() -> None:
    row = row_of(stored_event(2))
    row[column("ip_address")] = "not an address"
    assert not quick_row_ok(row) and not reference_row_ok(row, bytes.fromhex(row[1]))


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    ("field", "stored"),
    [
        ("ip_address", "::ffff:192.0.2.1"),  # sealed as 192.0.2.1
        ("ip_address", "192.0.2.1/32"),
        ("ip_address", "192.0.2.1/24"),
        ("compliance_tags", ["sox", "gdpr"]),  # sealed sorted
        ("compliance_tags", ["gdpr", "gdpr", "sox"]),
    ],
)
def test_values_that_only_normalise_to_the_sealed_ones_are_refused(field: str, stored: Any, version: int) -> None:
    """Given a stored value that sealing would normalise to the sealed one, Then it is refused, not normalised."""
    row = row_of(stored_event(4, ip_address="192.0.2.1", compliance_tags=["gdpr", "sox"]), version=version)
    assert row_matches(row, bytes.fromhex(row[1]))
    row[column(field)] = stored
    assert not quick_row_ok(row)
    assert not reference_row_ok(row, bytes.fromhex(row[1]))


def test_postgres_dotted_ipv6_text_reads_as_the_same_address() -> None:
    """Given ::2:3 sealed, When PostgreSQL prints it as ::0.2.0.3, Then it is the same address (one-to-one)."""
    row = row_of(stored_event(4, ip_address="::2:3"))
    row[column("ip_address")] = "::0.2.0.3"
    assert row_matches(row, bytes.fromhex(row[1]))


def test_a_redacted_v2_row_still_proves_its_kept_fields() -> None:
    """Given a version-2 row redacted as audit.redact_seqs does, Then it verifies, and an edit to a kept field
    does not, nor does a private value or the salt left behind."""
    row = row_of(stored_event(6), redacted=True)
    checksum = bytes.fromhex(row[1])
    assert quick_row_ok(row) and reference_row_ok(row, checksum)
    for field, value in (("user_id", "mallory"), ("action", "nothing"), ("resource_path", "/elsewhere")):
        edited = list(row)
        edited[column(field)] = value
        assert not row_matches(edited, checksum), field
    residue = list(row)
    residue[column("user_email")] = "zoe@example.com"
    assert not row_matches(residue, checksum)
    salted = list(row)
    salted[6] = SALT.hex()
    assert not row_matches(salted, checksum)


def test_a_redacted_v1_row_is_checked_for_blanks_only() -> None:
    """Given a version-1 row redacted (its checksum covers the erased values), Then only its blanks are checked."""
    row = row_of(stored_event(6), version=1, redacted=True)
    assert row_matches(row, bytes.fromhex(row[1]))
    row[column("ip_address")] = "10.0.0.1"
    assert not row_matches(row, bytes.fromhex(row[1]))


def test_a_flagged_number_is_never_accepted() -> None:
    """Given a row the reader flagged for an inexact number, Then neither path accepts it."""
    row = row_of(stored_event(7, details={"n": 9007199254740992}))
    row.append("details.n is not exact")
    assert len(row) == NUMBER_PROBLEM + 1
    assert not quick_row_ok(row) and not reference_row_ok(row, bytes.fromhex(row[1]))


# --- COPY blocks --------------------------------------------------------------------------------


def test_copy_text_escaping_of_backslashes_is_undone() -> None:
    """Given JSON rows whose strings hold backslashes and quotes, as COPY's text format sends them, Then parsed."""
    rows = [[1, "a\\b", 'q"uote', {"path": "C:\\temp\\x", "nl": "a\nb"}], [2, None, "\u00e9\U0001f600", {}]]
    block = b"".join(orjson.dumps(row).replace(b"\\", b"\\\\") + b"\n" for row in rows)
    assert _parse_block(block) == rows


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        (b"9007199254740993", True),
        (b"0.10000000000000001", True),
        (b"1000000000000000000000", False),  # JSONB's text of the sealed double 1e21: exact
        (b"9007199254740992", False),
        (b"0.1", False),
        (b"12.5", False),
    ],
)
def test_the_reader_flags_stored_numbers_that_only_round_to_a_double(text: bytes, flagged: bool) -> None:
    """Given JSONB text holding a number, Then the row is flagged exactly when its value is not its RFC 8785 form's."""
    fields: list[Any] = [None] * 17
    fields[SEALED_FIELDS.index("details")] = {}
    fields[SEALED_FIELDS.index("metadata")] = {}
    line = orjson.dumps([1, "a", "b", "c", False, 2, None, None, None, *fields])
    line = line.replace(b'"metadata_placeholder"', b"")
    details_at = line.index(b"{}")
    line = line[:details_at] + b'{"n": ' + text + b"}" + line[details_at + 2 :]
    (row,) = _parse_block(line + b"\n")
    assert (len(row) > NUMBER_PROBLEM) is flagged
    if flagged:
        assert "details.n" in row[NUMBER_PROBLEM]


def test_a_block_that_is_not_json_is_an_error_not_a_verdict() -> None:
    with pytest.raises(SealedRowError):
        _parse_block(b"[1, 2\n")


# --- Merkle roots from chunks --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 70), chunk_bits=st.integers(0, 4), data=st.data())
def test_stitched_roots_are_the_roots_of_the_whole_tree(size: int, chunk_bits: int, data: st.DataObject) -> None:
    """Given leaves cut into aligned chunks, each with its own frontier, Then the stitched root at every size is
    the RFC 6962 root of that prefix."""
    checksums = [hashlib.sha256(str(n).encode()).digest() for n in range(size)]
    cuts = set(data.draw(st.lists(st.integers(1, max(size, 1)), max_size=6))) & set(range(1, size + 1))
    stitcher = MerkleStitcher(chunk_bits)
    chunk = 1 << chunk_bits
    for start in range(0, size, chunk):
        local = MerkleFrontier()
        for index in range(start, min(size, start + chunk)):
            local.append(checksums[index])
            if index + 1 in cuts:
                hashes = local.to_dict()["hashes"]
                assert isinstance(hashes, list)
                stack = [bytes.fromhex(node) for node in hashes]
                assert stitcher.root_with(local.size, stack) == merkle_root(checksums[: index + 1])
        if local.size == chunk:
            stitcher.add_chunk(local.root())
    assert stitcher.root_with(0, []) == merkle_root(checksums[: stitcher.size])


# --- the report ---------------------------------------------------------------------------------


def test_the_report_summary_and_json() -> None:
    report = Report(chain_id="c-1", head_seq=1200, events_checked=1200, events_total=1200, redacted=312)
    assert report.summary() == "1200/1200 events valid, 312 redacted"
    report.digests_checked, report.digests_valid, report.digests_total = True, 24, 24
    assert report.summary() == "24/24 digests valid, 1200/1200 events valid, 312 redacted"
    report.failure = Failure("root_mismatch", None, 7, "digest 7 signed another root")
    document = report.as_dict()
    assert (document["valid"], document["reason"], document["first_invalid_seq"], document["digest_seq"]) == (
        False,
        "root_mismatch",
        None,
        7,
    )
    assert report.lines()[-1] == "FAILED at digest 7: root_mismatch: digest 7 signed another root"


def test_the_row_layout_names_match_the_literals_the_shortcut_uses() -> None:
    """The shortcut indexes rows with literals for speed; they must be the layout's names."""
    from audit_trail import verify_scan

    assert (verify_scan.REDACTED, verify_scan.SEAL_VERSION, verify_scan.SEAL_SALT, verify_scan.COMMITMENT) == (
        4,
        5,
        6,
        7,
    )
    assert (verify_scan.REDACTION_REASON, verify_scan.FIELDS, verify_scan.NUMBER_PROBLEM) == (8, 9, 26)
    assert (
        [verify_scan.FIELDS + SEALED_FIELDS.index(name) for name in ("event_type", "action", "details")]
        == [
            verify_scan.EVENT_TYPE,
            verify_scan.ACTION,
            verify_scan.DETAILS,
        ]
        == [11, 19, 21]
    )
    assert (verify_scan.IP_ADDRESS, verify_scan.TAGS, verify_scan.METADATA) == (15, 23, 25)
