"""The event half of `audit-trail verify` without a database: the checksum shortcut, Merkle stitching, COPY parsing."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_common.integrity import SEALED_FIELDS, MerkleFrontier, event_checksum, merkle_root
from audit_trail.verify import Failure, Report
from audit_trail.verify_scan import (
    MerkleStitcher,
    SealedRowError,
    _parse_block,
    quick_checksum,
    reference_checksum,
    row_matches,
)
from tests.support.events import make_event

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


def row_of(event: dict[str, Any], redacted: bool = False) -> list[Any]:
    """A row as audit_trail.verify_scan.read_rows yields it (hashes as hex)."""
    checksum = event_checksum(event).hex()
    return [1, checksum, "00" * 32, "11" * 32, redacted, *(event.get(name) for name in SEALED_FIELDS)]


def stored_event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """An event in the shape the database returns it (sealed text, objects never null)."""
    event = make_event(n, **overrides)
    event["timestamp"] = "2026-11-27T08:00:00.000000Z"
    event.setdefault("details", {})
    event.setdefault("metadata", {})
    event.setdefault("compliance_tags", [])
    event.setdefault("parent_event_id", None)
    return event


def test_the_shortcut_is_the_reference_on_plain_events() -> None:
    """Given an event with only strings and integers, Then the orjson shortcut gives the very checksum."""
    row = row_of(stored_event(3, details={"file_size": 10, "path": "/a/b"}, compliance_tags=["sox", "gdpr"]))
    assert quick_checksum(row) == reference_checksum(row) == bytes.fromhex(row[1])
    assert row_matches(row, bytes.fromhex(row[1]))


@settings(max_examples=300, deadline=None)
@given(details=st.dictionaries(json_keys, json_values, max_size=4), metadata=st.dictionaries(json_keys, json_values))
def test_the_verdict_is_always_the_reference_verdict(details: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Given any details and metadata (floats, integers beyond 2**53, keys above U+FFFF), Then a row matches its
    own reference checksum and nothing else, whether or not the shortcut's bytes were RFC 8785's."""
    row = row_of(stored_event(5, details=details, metadata=metadata))
    sealed = bytes.fromhex(row[1])

    assert row_matches(row, sealed)
    assert not row_matches(row, hashlib.sha256(b"another event").digest())


@pytest.mark.parametrize(
    ("field", "value"),
    [("action", "innocent"), ("user_id", "mallory"), ("ip_address", "10.9.9.9"), ("compliance_tags", ["hipaa"])],
)
def test_a_changed_column_does_not_match(field: str, value: Any) -> None:
    row = row_of(stored_event(2))
    row[5 + SEALED_FIELDS.index(field)] = value
    assert not row_matches(row, bytes.fromhex(row[1]))


def test_a_row_that_cannot_be_sealed_does_not_match() -> None:
    row = row_of(stored_event(2))
    row[5 + SEALED_FIELDS.index("ip_address")] = "not an address"
    assert quick_checksum(row) is None and reference_checksum(row) is None
    assert not row_matches(row, bytes.fromhex(row[1]))


def test_an_address_and_tags_are_normalised_as_sealed_object_does() -> None:
    sealed = stored_event(4, ip_address="::ffff:192.0.2.1", compliance_tags=["sox", "gdpr"])
    row = row_of(sealed)
    row[5 + SEALED_FIELDS.index("compliance_tags")] = ["gdpr", "sox", "gdpr"]
    assert quick_checksum(row) == bytes.fromhex(row[1])


# --- COPY blocks --------------------------------------------------------------------------------


def test_copy_text_escaping_of_backslashes_is_undone() -> None:
    """Given JSON rows whose strings hold backslashes and quotes, as COPY's text format sends them, Then parsed."""
    rows = [[1, "a\\b", 'q"uote', {"path": "C:\\temp\\x", "nl": "a\nb"}], [2, None, "\u00e9\U0001f600", {}]]
    block = b"".join(orjson.dumps(row).replace(b"\\", b"\\\\") + b"\n" for row in rows)
    assert _parse_block(block) == rows


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
