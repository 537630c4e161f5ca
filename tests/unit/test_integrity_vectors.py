"""The test vectors of docs/integrity.md hold for the code, and the page shows the same values as the JSON."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import rfc8785

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

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS: dict[str, Any] = json.loads((DOCS / "integrity_vectors.json").read_text(encoding="utf-8"))
PAGE = (DOCS / "integrity.md").read_text(encoding="utf-8")
EVENTS: list[dict[str, Any]] = VECTORS["events"]
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


@pytest.mark.parametrize(("text", "canonical"), VECTORS["numbers"])
def test_number_vectors(text: str, canonical: str) -> None:
    assert canonical_bytes(json.loads(text)) == canonical.encode()


# --- the page cannot drift from the vectors ---------------------------------------------------------


def code_blocks(markdown: str) -> list[str]:
    return [block.strip("\n") for block in re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.DOTALL)]


def test_the_page_shows_every_event_vector() -> None:
    blocks = code_blocks(PAGE)
    for number, vector in enumerate(EVENTS, start=1):
        assert vector["canonical"] in blocks, f"event {number}: canonical bytes differ from the page"
        for field in ("checksum", "prev_hash", "chain_hash"):
            assert f"- {field}: `{vector[field]}`" in PAGE, f"event {number}: {field} differs from the page"


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
    for text, canonical in VECTORS["numbers"]:
        assert f"| `{text}` | `{canonical}` |" in PAGE


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
