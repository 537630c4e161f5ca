"""Merkle roots and proofs for any tree size, from the subtree hashes the anchor stores ("tiles").

The anchor stores the hash of every completed perfect subtree of ``2**TILE_LEVEL`` = 256 leaves and
more in ``audit.merkle_nodes`` (level, index). Every hash an RFC 6962 proof or root needs is the root
of a subtree ``[start, end)`` of the tree, and every such subtree is a run of aligned perfect subtrees,
largest first (``perfect_subtrees``): those of 256 leaves or more are read from the store, the smaller
ones are computed from the leaves of at most two tiles (the one holding the leaf, and the partial tile at
the right edge). So a proof costs O(log n) stored nodes plus at most 512 checksums, whatever the history.

The proofs are plain RFC 6962 PATH/PROOF lists, identical to ``audit_common.integrity.merkle``'s
``inclusion_proof``/``consistency_proof`` over all checksums (tests/integration/test_anchor.py checks
it), and verify with ``verify_inclusion``/``verify_consistency`` or any RFC 9162 implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from audit_common.db import Transport
from audit_common.errors import Conflict
from audit_common.integrity.merkle import EMPTY_ROOT, leaf_hash, node_hash

__all__ = [
    "TILE_LEVEL",
    "TILE_SIZE",
    "MerkleStore",
    "TreeNotStored",
    "consistency_ranges",
    "fold_subtrees",
    "inclusion_ranges",
    "perfect_subtrees",
    "subtree_root_from_leaves",
]

TILE_LEVEL: Final = 8
TILE_SIZE: Final = 1 << TILE_LEVEL
NodeKey = tuple[int, int]
"""(level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""


class TreeNotStored(Conflict):
    """The stored tiles do not reach the tree size asked for (no digest covers it yet)."""


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_subtrees(start: int, end: int) -> list[NodeKey]:
    """Split leaves ``[start, end)`` into aligned perfect subtrees, left to right (largest first for the
    subtrees of an RFC 6962 tree, whose start is always a multiple of a power of two >= their size)."""
    parts: list[NodeKey] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        parts.append((level, start >> level))
        start += 1 << level
    return parts


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of a subtree from its perfect parts' roots, largest first (right to left fold)."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for part in reversed(hashes[:-1]):
        root = node_hash(part, root)
    return root


def subtree_root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree (a power-of-two count of already hashed leaves)."""
    level = list(leaf_hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def inclusion_ranges(index: int, tree_size: int) -> list[tuple[int, int]]:
    """The subtrees whose roots form RFC 6962 PATH(index, D[tree_size]), bottom-up (proof order)."""
    if not 0 <= index < tree_size:
        raise ValueError(f"index {index} is outside a tree of {tree_size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end = 0, tree_size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees whose roots form RFC 6962 PROOF(old_size, D[new_size]), in proof order."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old_size {old_size} is outside 0..{new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, remaining, whole = 0, new_size, old_size, True
    while remaining != end - start:
        middle = start + _split(end - start)
        if remaining <= middle - start:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            remaining -= middle - start
            start = middle
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


class MerkleStore:
    """Roots and proofs over the chain's checksums, read through the SQL API (``merkle_material``)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        """RFC 6962 PATH for leaf ``index`` (= seq - 1) in the tree of the first ``tree_size`` events."""
        return self.subtree_roots(inclusion_ranges(index, tree_size), tree_size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF that the tree of ``old_size`` events is a prefix of the tree of ``new_size``."""
        return self.subtree_roots(consistency_ranges(old_size, new_size), new_size)

    def root(self, tree_size: int) -> bytes:
        """The Merkle root of the first ``tree_size`` events."""
        if tree_size == 0:
            return EMPTY_ROOT
        return self.subtree_roots([(0, tree_size)], tree_size)[0]

    def subtree_roots(self, ranges: Iterable[tuple[int, int]], tree_size: int) -> list[bytes]:
        """Roots of RFC 6962 subtrees ``[start, end)`` of the tree of ``tree_size``, in one SQL API call."""
        ranges = list(ranges)
        plans = [perfect_subtrees(start, end) for start, end in ranges]
        wanted_nodes = sorted({key for plan in plans for key in plan if key[0] >= TILE_LEVEL})
        tiles = sorted(
            {(index << level) >> TILE_LEVEL for plan in plans for level, index in plan if level < TILE_LEVEL}
        )
        tile_ranges = [(tile * TILE_SIZE, min((tile + 1) * TILE_SIZE, tree_size)) for tile in tiles]
        if not ranges:
            return []
        material = self._transport.call(
            "merkle_material",
            {
                "p_nodes": [list(key) for key in wanted_nodes],
                # SQL ranges are inclusive seqs: leaf i is seq i + 1.
                "p_ranges": [[first + 1, last] for first, last in tile_ranges],
            },
        )
        nodes: dict[NodeKey, bytes] = {(int(lv), int(ix)): bytes.fromhex(h) for lv, ix, h in material["nodes"]}
        missing = [key for key in wanted_nodes if key not in nodes]
        if missing:
            raise TreeNotStored(
                f"the Merkle tree is not stored up to {tree_size} leaves (missing subtree {missing[0]}): "
                "no digest covers it yet"
            )
        leaves: dict[int, bytes] = {}
        for (first, last), stored in zip(tile_ranges, material["ranges"], strict=True):
            text: str = stored["checksums"]
            if len(text) != 64 * (last - first):
                raise TreeNotStored(f"events {first + 1}..{last} are not all stored")
            for offset in range(last - first):
                leaves[first + offset] = leaf_hash(bytes.fromhex(text[64 * offset : 64 * offset + 64]))

        def part_root(level: int, index: int) -> bytes:
            if level >= TILE_LEVEL:
                return nodes[(level, index)]
            first = index << level
            return subtree_root_from_leaves([leaves[i] for i in range(first, first + (1 << level))])

        return [fold_subtrees([part_root(level, index) for level, index in plan]) for plan in plans]
