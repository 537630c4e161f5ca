"""Merkle tree, proofs and verifiers against RFC 6962/9162, golden vectors and an independent model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_common.integrity import (
    EMPTY_ROOT,
    MerkleFrontier,
    consistency_proof,
    consistency_proof_from_leaf_hashes,
    inclusion_proof,
    inclusion_proof_from_leaf_hashes,
    leaf_hash,
    merkle_root,
    merkle_root_from_leaf_hashes,
    node_hash,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_leaf_hash,
)

# --- an independent model, written from the RFC 6962 section 2.1 text -----------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rfc_mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw entries (leaf data)."""
    n = len(entries)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + entries[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01" + rfc_mth(entries[:k]) + rfc_mth(entries[k:]))


def rfc_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*rfc_path(m, entries[:k]), rfc_mth(entries[k:])]
    return [*rfc_path(m - k, entries[k:]), rfc_mth(entries[:k])]


def rfc_subproof(m: int, entries: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(entries)
    if m == n:
        return [] if complete else [rfc_mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*rfc_subproof(m, entries[:k], complete), rfc_mth(entries[k:])]
    return [*rfc_subproof(m - k, entries[k:], False), rfc_mth(entries[:k])]


def rfc_proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n])."""
    return rfc_subproof(m, entries, True)


def checksums(n: int) -> list[bytes]:
    """The documented simple leaves: checksum i = SHA-256 of the ASCII decimal string of i."""
    return [sha256(str(i).encode()) for i in range(n)]


CHECKSUMS = checksums(70)
ROOTS = [merkle_root(CHECKSUMS[:n]) for n in range(71)]

# --- golden vectors: transparency-dev/merkle (and google/certificate-transparency before it) ------

GOLDEN_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
GOLDEN_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (0-based leaf index, tree size, proof)
GOLDEN_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]
# (old size, new size, proof)
GOLDEN_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
GOLDEN_LEAF_HASHES = [leaf_hash(leaf) for leaf in GOLDEN_LEAVES]


def golden_root(size: int) -> bytes:
    return bytes.fromhex(GOLDEN_ROOTS[size - 1])


@pytest.mark.parametrize("size", range(1, 9))
def test_golden_roots(size: int) -> None:
    assert merkle_root_from_leaf_hashes(GOLDEN_LEAF_HASHES[:size]).hex() == GOLDEN_ROOTS[size - 1]
    assert rfc_mth(GOLDEN_LEAVES[:size]).hex() == GOLDEN_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), GOLDEN_INCLUSION)
def test_golden_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(node) for node in proof]
    assert inclusion_proof_from_leaf_hashes(index, GOLDEN_LEAF_HASHES[:size]) == expected
    assert verify_inclusion_leaf_hash(index, size, GOLDEN_LEAF_HASHES[index], expected, golden_root(size))


@pytest.mark.parametrize(("old_size", "new_size", "proof"), GOLDEN_CONSISTENCY)
def test_golden_consistency_proofs(old_size: int, new_size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(node) for node in proof]
    assert consistency_proof_from_leaf_hashes(old_size, GOLDEN_LEAF_HASHES[:new_size]) == expected
    assert verify_consistency(old_size, new_size, golden_root(old_size), golden_root(new_size), expected)


# --- against the independent model ------------------------------------------------------------------


def test_hash_prefixes() -> None:
    data = bytes(range(32))
    assert leaf_hash(data) == sha256(b"\x00" + data)
    assert node_hash(data, data[::-1]) == sha256(b"\x01" + data + data[::-1])
    assert EMPTY_ROOT == sha256(b"") == merkle_root([])


@pytest.mark.parametrize("size", range(1, 65))
def test_roots_and_proofs_match_the_rfc_model(size: int) -> None:
    entries = CHECKSUMS[:size]
    assert merkle_root(entries) == rfc_mth(entries)
    for index in range(size):
        assert inclusion_proof(index, entries) == rfc_path(index, entries)
    for old_size in range(1, size + 1):
        assert consistency_proof(old_size, entries) == rfc_proof(old_size, entries)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6, 7, 9])
def test_odd_sizes_explicitly(size: int) -> None:
    # Given the trees the RFC's split rule makes unbalanced
    entries = CHECKSUMS[:size]
    root = merkle_root(entries)
    assert root == rfc_mth(entries)
    leaves = [leaf_hash(checksum) for checksum in entries]
    # Then the root is built by splitting at the largest power of two below the size
    if size == 1:
        assert root == leaves[0]
    elif size == 2:
        assert root == node_hash(leaves[0], leaves[1])
    elif size == 3:
        assert root == node_hash(node_hash(leaves[0], leaves[1]), leaves[2])
    elif size == 5:
        assert root == node_hash(merkle_root(entries[:4]), leaves[4])
    elif size == 6:
        assert root == node_hash(merkle_root(entries[:4]), node_hash(leaves[4], leaves[5]))
    elif size == 7:
        assert root == node_hash(merkle_root(entries[:4]), merkle_root(entries[4:7]))
    else:
        assert root == node_hash(merkle_root(entries[:8]), leaves[8])
    # and every proof in it verifies
    for index in range(size):
        assert verify_inclusion(index, size, entries[index], inclusion_proof(index, entries), root)
    for old_size in range(size + 1):
        proof = consistency_proof(old_size, entries)
        assert verify_consistency(old_size, size, ROOTS[old_size], root, proof)


def test_every_proof_up_to_33_verifies() -> None:
    for size in range(1, 34):
        entries = CHECKSUMS[:size]
        for index in range(size):
            proof = inclusion_proof(index, entries)
            assert verify_inclusion(index, size, entries[index], proof, ROOTS[size])
        for old_size in range(size + 1):
            proof = consistency_proof(old_size, entries)
            assert verify_consistency(old_size, size, ROOTS[old_size], ROOTS[size], proof)


# --- the verifiers refuse everything else -------------------------------------------------------------


def flip(proof: list[bytes], position: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[position])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:position], bytes(changed), *proof[position + 1 :]]


def inclusion_mutations(index: int, size: int, proof: list[bytes]) -> list[tuple[int, int, list[bytes]]]:
    """Wrong index, wrong size, truncated, extended, reordered proofs (what a forger would try).

    Sizes near the true one are left out on purpose: the tree size is not bound by the hashes (a proof
    for leaf 0 of 3 also "verifies" for 4 leaves against the same root). It is the signed digest that
    binds ``tree_size`` to ``root_hash``; a verifier must take both from there.
    """
    other = sha256(b"other")
    mutations = [
        (index - 1, size, proof),
        (index + 1, size, proof),
        (index ^ 2, size, proof),
        (index, size * 2, proof),
        (index, size // 2, proof),
        (index, size, [*proof, other]),
        (index, size, [*proof, ROOTS[size]]),
        (index, size, [other, *proof]),
        (index, size, [ROOTS[size], *proof]),
    ]
    if proof:
        mutations += [(index, size, proof[:-1]), (index, size, proof[1:]), (index, size, proof[::-1])]
        mutations += [(index, size, [*proof[:1], other, *proof[1:]])]
    return [m for m in mutations if m[2] != proof or (m[0], m[1]) != (index, size)]


def inclusion_holds(index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    if not 0 <= index < len(CHECKSUMS):
        return verify_inclusion(index, size, CHECKSUMS[0], proof, root)
    return verify_inclusion(index, size, CHECKSUMS[index], proof, root)


def test_tampered_inclusion_proofs_are_refused() -> None:
    for size in range(1, 34):
        entries = CHECKSUMS[:size]
        for index in range(size):
            proof = inclusion_proof(index, entries)
            for bad_index, bad_size, bad_proof in inclusion_mutations(index, size, proof):
                # A mutation may land on another valid (index, size) only if the sizes' roots agree.
                if 0 <= bad_index < bad_size <= size and bad_proof == inclusion_proof(bad_index, entries[:bad_size]):
                    continue
                assert not inclusion_holds(bad_index, bad_size, bad_proof, ROOTS[size]), (index, size)
            assert not verify_inclusion(index, size, sha256(b"not it"), proof, ROOTS[size])
            assert not verify_inclusion(index, size, entries[index], proof, EMPTY_ROOT)
            if size > 1:
                assert not verify_inclusion(index, size, entries[(index + 1) % size], proof, ROOTS[size])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6, 7, 9])
def test_every_single_bit_flip_is_refused(size: int) -> None:
    entries = CHECKSUMS[:size]
    for index in range(size):
        proof = inclusion_proof(index, entries)
        for position in range(len(proof)):
            for bit in range(256):
                assert not verify_inclusion(index, size, entries[index], flip(proof, position, bit), ROOTS[size])
        for bit in range(256):
            assert not verify_inclusion(index, size, entries[index], proof, flip([ROOTS[size]], 0, bit)[0])
    for old_size in range(1, size):
        proof = consistency_proof(old_size, entries)
        for position in range(len(proof)):
            for bit in range(256):
                bad = flip(proof, position, bit)
                assert not verify_consistency(old_size, size, ROOTS[old_size], ROOTS[size], bad)
        for bit in range(256):
            bad_old = flip([ROOTS[old_size]], 0, bit)[0]
            assert not verify_consistency(old_size, size, bad_old, ROOTS[size], proof)
            bad_new = flip([ROOTS[size]], 0, bit)[0]
            assert not verify_consistency(old_size, size, ROOTS[old_size], bad_new, proof)


def test_tampered_consistency_proofs_are_refused() -> None:
    other = sha256(b"other")
    for size in range(2, 34):
        entries = CHECKSUMS[:size]
        for old_size in range(1, size):
            proof = consistency_proof(old_size, entries)
            old_root, new_root = ROOTS[old_size], ROOTS[size]
            candidates = [
                (old_size, size, old_root, new_root, []),
                (old_size, size, new_root, old_root, proof),
                (old_size, size, old_root, old_root, proof),
                (old_size, size, old_root, new_root, [*proof, other]),
                (old_size, size, old_root, new_root, [*proof, new_root]),
                (old_size, size, old_root, new_root, [other, *proof]),
                (old_size, size, old_root, new_root, [proof[0], *proof]),
                (old_size, size, old_root, new_root, [old_root, *proof]),
                (old_size, size, old_root, new_root, proof[:-1]),
                (old_size, size, old_root, new_root, proof[1:]),
                (old_size, size, old_root, new_root, proof[::-1]),
            ]
            for bad_old in (old_size - 1, old_size + 1, old_size ^ 2):
                if 0 < bad_old <= size and bad_old != old_size:
                    candidates.append((bad_old, size, old_root, new_root, proof))
            # As with inclusion, the new size is bound by the signed digest, not by the hashes: only
            # sizes that change the proof's shape or go back in time must fail on their own.
            for bad_new in (size * 2, size * 4, size // 2, old_size - 1, old_size):
                if bad_new != size:
                    candidates.append((old_size, bad_new, old_root, new_root, proof))
            for bad_old, bad_new, root_a, root_b, bad_proof in candidates:
                if (bad_old, bad_new, root_a, root_b, bad_proof) == (
                    old_size,
                    size,
                    old_root,
                    new_root,
                    proof,
                ):
                    continue
                assert not verify_consistency(bad_old, bad_new, root_a, root_b, bad_proof), (old_size, size)


HASHES = st.binary(min_size=32, max_size=32)


@settings(max_examples=400, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=70),
    data=st.data(),
)
def test_fuzzed_inclusion_proofs_are_refused(size: int, data: st.DataObject) -> None:
    entries = CHECKSUMS[:size]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, entries)
    mutation = data.draw(st.sampled_from(["flip", "drop", "add", "swap", "index", "size"]))
    bad_index, bad_size, bad_proof = index, size, list(proof)
    if mutation == "flip" and proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bad_proof = flip(proof, position, data.draw(st.integers(0, 255)))
    elif mutation == "drop" and proof:
        del bad_proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "add":
        bad_proof.insert(data.draw(st.integers(0, len(proof))), data.draw(st.binary(min_size=32, max_size=32)))
    elif mutation == "swap" and len(proof) > 1 and len(set(proof)) > 1:
        first, second = data.draw(st.lists(st.integers(0, len(proof) - 1), min_size=2, max_size=2, unique=True))
        bad_proof[first], bad_proof[second] = bad_proof[second], bad_proof[first]
    elif mutation == "index":
        bad_index = data.draw(st.integers(-5, size + 5).filter(lambda i: i != index))
    elif mutation == "size":
        # Sizes whose proofs have another length or that cannot hold the leaf (see inclusion_mutations)
        bad_size = data.draw(st.sampled_from([0, index, 2 * size, 2 * size + 1, 4 * size]))
    else:
        return
    if bad_proof == proof and (bad_index, bad_size) == (index, size):
        return
    assert not verify_inclusion(bad_index, bad_size, entries[index], bad_proof, ROOTS[size])


@settings(max_examples=400, deadline=None)
@given(size=st.integers(min_value=2, max_value=70), data=st.data())
def test_fuzzed_consistency_proofs_are_refused(size: int, data: st.DataObject) -> None:
    entries = CHECKSUMS[:size]
    old_size = data.draw(st.integers(min_value=1, max_value=size - 1))
    proof = consistency_proof(old_size, entries)
    mutation = data.draw(st.sampled_from(["flip", "drop", "add", "old", "new"]))
    bad_old, bad_new, bad_proof = old_size, size, list(proof)
    if mutation == "flip":
        position = data.draw(st.integers(0, len(proof) - 1))
        bad_proof = flip(proof, position, data.draw(st.integers(0, 255)))
    elif mutation == "drop":
        del bad_proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "add":
        bad_proof.insert(data.draw(st.integers(0, len(proof))), data.draw(st.binary(min_size=32, max_size=32)))
    elif mutation == "old":
        # The old size is bound by the old root through the proof: any other value must fail.
        bad_old = data.draw(st.integers(-1, size + 3).filter(lambda s: s != old_size))
    else:
        bad_new = data.draw(st.sampled_from([2 * size, 4 * size, size // 2, old_size - 1, old_size, -1]))
    assert not verify_consistency(bad_old, bad_new, ROOTS[old_size], ROOTS[size], bad_proof)


def test_consistency_edge_cases() -> None:
    root = ROOTS[5]
    # Equal sizes: empty proof and equal roots
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, ROOTS[4], [])
    assert not verify_consistency(5, 5, root, root, [root])
    # From the empty tree: empty proof and the empty root
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 5, root, root, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root, [EMPTY_ROOT])
    # Time travel and garbage
    assert not verify_consistency(6, 5, ROOTS[6], root, consistency_proof(5, CHECKSUMS[:6]))
    assert not verify_consistency(-1, 5, root, root, [])
    assert not verify_consistency(2, 5, ROOTS[2], root, [b"short"])
    assert not verify_consistency(2, 5, b"short", root, consistency_proof(2, CHECKSUMS[:5]))


def test_inclusion_edge_cases() -> None:
    leaf = CHECKSUMS[0]
    assert verify_inclusion(0, 1, leaf, [], leaf_hash(leaf))
    assert not verify_inclusion(0, 0, leaf, [], leaf_hash(leaf))
    assert not verify_inclusion(1, 1, leaf, [], leaf_hash(leaf))
    assert not verify_inclusion(-1, 1, leaf, [], leaf_hash(leaf))
    assert not verify_inclusion(0, 1, b"short", [], leaf_hash(b"short"))
    assert not verify_inclusion(0, 2, leaf, [b"short"], ROOTS[2])
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(3, CHECKSUMS[:3])
    with pytest.raises(ValueError, match="outside"):
        consistency_proof(4, CHECKSUMS[:3])
    with pytest.raises(ValueError, match="32 bytes"):
        merkle_root([b"short"])
    with pytest.raises(ValueError, match="32 bytes"):
        inclusion_proof(0, [b"short"])


# --- the frontier -----------------------------------------------------------------------------------


def test_frontier_equals_merkle_root_for_sizes_0_to_70() -> None:
    frontier = MerkleFrontier()
    assert frontier.root() == EMPTY_ROOT
    for size in range(1, 71):
        frontier.append(CHECKSUMS[size - 1])
        assert frontier.size == size
        assert frontier.root() == ROOTS[size] == rfc_mth(CHECKSUMS[:size])
        # The saved form holds one hash per perfect subtree, i.e. per set bit of the size
        saved = frontier.to_dict()
        assert saved["size"] == size
        assert isinstance(saved["hashes"], list)
        assert len(saved["hashes"]) == bin(size).count("1")


def test_frontier_survives_serialisation_and_keeps_growing() -> None:
    for cut in range(71):
        frontier = MerkleFrontier()
        for checksum in CHECKSUMS[:cut]:
            frontier.append(checksum)
        restored = MerkleFrontier.from_dict(frontier.to_dict())
        assert restored == frontier
        for checksum in CHECKSUMS[cut:]:
            restored.append(checksum)
        assert restored.root() == ROOTS[70]


@pytest.mark.parametrize(
    "saved",
    [
        {"size": 3, "hashes": ["00" * 32]},
        {"size": 1, "hashes": ["00" * 31]},
        {"size": -1, "hashes": []},
        {"size": True, "hashes": ["00" * 32]},
        {"size": 1, "hashes": "00" * 32},
        {"hashes": []},
        {"size": 1, "hashes": ["zz" * 32]},
    ],
)
def test_frontier_refuses_inconsistent_saved_state(saved: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one contract
        MerkleFrontier.from_dict(saved)


def test_frontier_refuses_wrong_hash_sizes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleFrontier().append(b"short")
