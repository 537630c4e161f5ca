"""The test vectors of docs/integrity.md hold for the code, and the page shows the same values as the JSON."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from audit_common.api import inexact_number_errors
from audit_common.integrity import (
    EMPTY_ROOT,
    GENESIS_HASH,
    ChainVerifier,
    canonical_bytes,
    chain_hash,
    consistency_proof,
    event_checksum,
    inclusion_proof,
    merkle_root,
    sealed_object,
    verify_consistency,
    verify_inclusion,
)
from audit_common.integrity.canonical import is_exact_number
from audit_common.integrity.seal import kept_object, payload_commitment, private_object, seal_v2, sealed_object_v2

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS: dict[str, Any] = json.loads((DOCS / "integrity_vectors.json").read_text(encoding="utf-8"))
PAGE = (DOCS / "integrity.md").read_text(encoding="utf-8")
EVENTS: list[dict[str, Any]] = VECTORS["events"]
EVENTS_V2: list[dict[str, Any]] = VECTORS["events_v2"]
MERKLE: dict[str, Any] = VECTORS["merkle"]
ROOTS: dict[str, str] = MERKLE["roots"]
ROOT_SIZES = sorted(ROOTS, key=int)


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def test_there_are_enough_vectors() -> None:
    assert len(EVENTS) >= 3
    assert {"0", "1", "2", "3", "5", "6", "7", "9"} <= set(MERKLE["roots"])
    assert MERKLE["inclusion_proofs"]
    assert MERKLE["consistency_proofs"]


@pytest.mark.parametrize("vector", EVENTS, ids=[f"event{i + 1}" for i in range(len(EVENTS))])
def test_event_vectors(vector: dict[str, Any]) -> None:
    # Given the input event, then its canonical bytes, checksum and chain hash are the documented ones
    event = vector["input"]
    canonical = vector["canonical"].encode("utf-8")
    assert canonical_bytes(sealed_object(event)) == canonical
    assert rfc8785.dumps(sealed_object(event)) == canonical  # the reference implementation agrees
    assert event_checksum(event).hex() == vector["checksum"] == hashlib.sha256(canonical).hexdigest()
    assert (
        chain_hash(bytes.fromhex(vector["prev_hash"]), bytes.fromhex(vector["checksum"])).hex()
        == (vector["chain_hash"])
    )


def test_the_event_vectors_form_a_chain_from_genesis() -> None:
    prev = GENESIS_HASH
    rows = []
    for seq, vector in enumerate(EVENTS, start=1):
        assert vector["prev_hash"] == prev.hex()
        prev = bytes.fromhex(vector["chain_hash"])
        # As a database row: the sealed values plus the integrity fields
        row = {**sealed_object(vector["input"]), "seq": seq, "redacted_at": None}
        row.update({key: vector[key] for key in ("checksum", "prev_hash", "chain_hash")})
        rows.append(row)
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    assert verifier.finish(len(EVENTS), prev).valid


@pytest.mark.parametrize("vector", EVENTS_V2, ids=[f"v2-event{v['seq']}" for v in EVENTS_V2])
def test_seal_v2_vectors(vector: dict[str, Any]) -> None:
    """Given the input and its salt, Then the private text, commitment, sealed text and checksum are the documented
    ones, by the fast code and by the rfc8785 reference."""
    event, salt = vector["input"], bytes.fromhex(vector["seal_salt"])
    private = private_object(event)
    assert canonical_bytes(private) == rfc8785.dumps(private) == vector["private_canonical"].encode()
    commitment = hashlib.sha256(salt + vector["private_canonical"].encode()).digest()
    assert commitment == payload_commitment(salt, private) == bytes.fromhex(vector["payload_commitment"])
    sealed = sealed_object_v2(kept_object(event), commitment)
    assert canonical_bytes(sealed) == rfc8785.dumps(sealed) == vector["canonical"].encode()
    assert seal_v2(event, salt) == (commitment, bytes.fromhex(vector["checksum"]))
    assert hashlib.sha256(vector["canonical"].encode()).hexdigest() == vector["checksum"]
    assert (
        chain_hash(bytes.fromhex(vector["prev_hash"]), bytes.fromhex(vector["checksum"])).hex()
        == (vector["chain_hash"])
    )


def v2_rows(*, redact: bool) -> list[dict[str, Any]]:
    """The version-2 vectors as database rows, event 2 redacted (as stored afterwards) when ``redact``."""
    rows = []
    for vector in EVENTS_V2:
        row = {**sealed_object(vector["input"]), "seq": vector["seq"], "redacted_at": None, "seal_version": 2}
        row.update(
            {key: vector[key] for key in ("checksum", "prev_hash", "chain_hash", "seal_salt", "payload_commitment")}
        )
        if redact and "redacted" in vector:
            row.update(vector["redacted"]["stored"], redacted_at="2026-11-27T09:00:00.000000Z")
        rows.append(row)
    return rows


def test_the_v2_vectors_verify_as_a_chain_with_the_redaction() -> None:
    """Given the version-2 chain, its fifth event the redaction record of the second and event 2 stored redacted,
    Then it verifies: the redacted row's kept fields still give its checksum."""
    rows = v2_rows(redact=True)
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    result = verifier.finish(len(rows), bytes.fromhex(EVENTS_V2[-1]["chain_hash"]))
    assert result.valid, result.message
    assert result.redacted == 1


def test_a_record_of_a_redaction_that_did_not_happen_is_caught() -> None:
    """Given the same chain with event 2 still whole (its values restored after the record), Then the record names
    a row that is not redacted: redaction_unrecorded at seq 2."""
    rows = v2_rows(redact=False)
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    result = verifier.finish(len(rows), bytes.fromhex(EVENTS_V2[-1]["chain_hash"]))
    assert (result.reason, result.first_invalid_seq) == ("redaction_unrecorded", 2)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("user_id", "u-9999", "modified"),  # a kept field of the redacted row
        ("action", "logout", "modified"),
        ("user_email", "zoe@example.com", "redaction_incomplete"),  # an erased value put back
        ("seal_salt", "00" * 16, "redaction_incomplete"),
    ],
)
def test_the_redacted_v2_vector_catches_edits(field: str, value: str, reason: str) -> None:
    rows = v2_rows(redact=True)
    rows[1][field] = value
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    result = verifier.finish(len(rows), bytes.fromhex(EVENTS_V2[-1]["chain_hash"]))
    assert (result.reason, result.first_invalid_seq) == (reason, 2)


def test_a_redaction_without_its_record_is_caught() -> None:
    """Given event 2 redacted but the chain cut before the record (seq 5), Then it is redaction_unrecorded."""
    rows = v2_rows(redact=True)[:4]
    verifier = ChainVerifier()
    verifier.feed_many(rows)
    result = verifier.finish(4, bytes.fromhex(EVENTS_V2[3]["chain_hash"]))
    assert (result.reason, result.first_invalid_seq) == ("redaction_unrecorded", 2)


def test_leaf_definition() -> None:
    checksums = unhex(MERKLE["leaf_checksums"])
    assert checksums == [hashlib.sha256(str(i).encode("ascii")).digest() for i in range(len(checksums))]


@pytest.mark.parametrize("size", ROOT_SIZES)
def test_merkle_root_vectors(size: str) -> None:
    checksums = unhex(MERKLE["leaf_checksums"])[: int(size)]
    assert merkle_root(checksums).hex() == MERKLE["roots"][size]
    if size == "0":
        assert MERKLE["roots"][size] == EMPTY_ROOT.hex()


@pytest.mark.parametrize("vector", MERKLE["inclusion_proofs"])
def test_inclusion_proof_vectors(vector: dict[str, Any]) -> None:
    index, size = vector["index"], vector["tree_size"]
    checksums = unhex(MERKLE["leaf_checksums"])[:size]
    proof = unhex(vector["proof"])
    assert inclusion_proof(index, checksums) == proof
    assert verify_inclusion(index, size, checksums[index], proof, bytes.fromhex(MERKLE["roots"][str(size)]))


@pytest.mark.parametrize("vector", MERKLE["consistency_proofs"])
def test_consistency_proof_vectors(vector: dict[str, Any]) -> None:
    old_size, new_size = vector["old_size"], vector["new_size"]
    checksums = unhex(MERKLE["leaf_checksums"])[:new_size]
    proof = unhex(vector["proof"])
    assert consistency_proof(old_size, checksums) == proof
    old_root = merkle_root(checksums[:old_size])
    assert verify_consistency(old_size, new_size, old_root, bytes.fromhex(MERKLE["roots"][str(new_size)]), proof)


@pytest.mark.parametrize(("text", "canonical", "ingest"), VECTORS["numbers"])
def test_number_vectors(text: str, canonical: str, ingest: str) -> None:
    """The canonical form is that of the double; ingest accepts the number iff that form has exactly its value."""
    assert canonical_bytes(json.loads(text)) == canonical.encode()
    exact = json.loads(text, parse_float=Decimal)
    assert is_exact_number(exact) is (ingest == "accepted")
    assert (Decimal(canonical) == Decimal(text)) is (ingest == "accepted")
    body = f'{{"details": {{"n": {text}}}}}'.encode()
    refused = [(e.index, e.field) for e in inexact_number_errors(body)]
    assert refused == ([] if ingest == "accepted" else [(0, "details.n")])


# --- the page cannot drift from the vectors ---------------------------------------------------------


def code_blocks(markdown: str) -> list[str]:
    return [block.strip("\n") for block in re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.DOTALL)]


def test_the_page_shows_every_event_vector() -> None:
    blocks = code_blocks(PAGE)
    for number, vector in enumerate(EVENTS, start=1):
        assert vector["canonical"] in blocks, f"event {number}: canonical bytes differ from the page"
        for field in ("checksum", "prev_hash", "chain_hash"):
            assert f"- {field}: `{vector[field]}`" in PAGE, f"event {number}: {field} differs from the page"


def test_the_page_shows_every_v2_vector() -> None:
    blocks = code_blocks(PAGE)
    for vector in EVENTS_V2:
        assert vector["canonical"] in blocks, f"v2 event {vector['seq']}: sealed text differs from the page"
        assert vector["private_canonical"] in blocks, f"v2 event {vector['seq']}: private text differs from the page"
        for field in ("seal_salt", "payload_commitment", "checksum", "chain_hash"):
            assert f"- {field}: `{vector[field]}`" in PAGE, f"v2 event {vector['seq']}: {field} differs from the page"


def test_the_page_shows_every_merkle_vector() -> None:
    for size, root in MERKLE["roots"].items():
        assert f"| {size} | `{root}` |" in PAGE
    assert MERKLE["leaf_checksums"][0] in PAGE
    for vector in MERKLE["inclusion_proofs"]:
        heading = f"Inclusion proof for leaf index {vector['index']} in the tree of size {vector['tree_size']}:"
        assert listed_after(heading) == vector["proof"]
    for vector in MERKLE["consistency_proofs"]:
        heading = f"Consistency proof from size {vector['old_size']} to size {vector['new_size']}:"
        assert listed_after(heading) == vector["proof"]


def test_the_page_shows_every_number_vector() -> None:
    for text, canonical, ingest in VECTORS["numbers"]:
        assert f"| `{text}` | `{canonical}` | {ingest} |" in PAGE


def listed_after(heading: str) -> list[str]:
    """The hashes of the numbered list that follows ``heading`` on the page."""
    assert heading in PAGE, heading
    after = PAGE.split(heading, 1)[1].lstrip("\n")
    hashes = []
    for line in after.splitlines():
        match = re.fullmatch(r"\d+\. `([0-9a-f]{64})`", line)
        if not match:
            break
        hashes.append(match.group(1))
    return hashes
