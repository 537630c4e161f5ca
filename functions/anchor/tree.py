"""Extending the Merkle tree from the stored tiles, in work proportional to the new events.

The database keeps every completed perfect subtree of 256 leaves and more (``audit.merkle_nodes``).
A run restores the frontier at the end of the last complete tile from O(log n) of those nodes, appends
the leaves after it (the new events plus at most 255 already anchored ones), stores every subtree of
256 leaves or more that it completes, and folds the frontier into the root.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit_common.db import Transport
from audit_common.integrity.merkle import leaf_hash, node_hash
from audit_common.merkle_store import TILE_LEVEL, TILE_SIZE, MerkleStore, TreeNotStored, fold_subtrees, perfect_subtrees

# Nodes per merkle_store_nodes call: a page of 100,000 events completes about 780.
_NODES_PER_CALL = 5000


class TileBuilder:
    """A Merkle frontier (roots of the perfect subtrees of the tree so far, largest first) that also
    reports every perfect subtree of ``2**TILE_LEVEL`` leaves or more as it completes."""

    __slots__ = ("_stack", "completed", "size")

    def __init__(self, size: int = 0, subtree_roots: list[bytes] | None = None) -> None:
        """Start from the tree of ``size`` leaves given the roots of ``perfect_subtrees(0, size)``."""
        levels = [level for level, _ in perfect_subtrees(0, size)]
        roots = subtree_roots or []
        if len(roots) != len(levels):
            raise ValueError(f"a tree of {size} leaves has {len(levels)} perfect subtrees, got {len(roots)} roots")
        self._stack: list[tuple[int, bytes]] = list(zip(levels, roots, strict=True))
        self.size = size
        self.completed: list[tuple[int, int, bytes]] = []

    def append_checksums(self, checksums: bytes) -> None:
        """Append leaves for a run of 32-byte checksums (concatenated, in seq order)."""
        if len(checksums) % 32:
            raise ValueError("checksums must be a whole number of 32-byte values")
        stack = self._stack
        completed = self.completed
        size = self.size
        for offset in range(0, len(checksums), 32):
            node = leaf_hash(checksums[offset : offset + 32])
            level = 0
            # Each subtree on top of the stack of the new node's height merges with it.
            while stack and stack[-1][0] == level:
                node = node_hash(stack.pop()[1], node)
                level += 1
                if level >= TILE_LEVEL:
                    completed.append((level, (size + 1 - (1 << level)) >> level, node))
            stack.append((level, node))
            size += 1
        self.size = size

    def root(self) -> bytes:
        """The root of the tree so far."""
        return fold_subtrees([node for _, node in self._stack])

    def take_completed(self) -> list[tuple[int, int, bytes]]:
        """The subtrees completed since the last call (and forget them)."""
        done, self.completed = self.completed, []
        return done


@dataclass(frozen=True)
class TreeExtension:
    """The root at the target size and what the run had to do to get it."""

    tree_size: int
    root: bytes
    leaves_read: int
    nodes_stored: int


def extend_tree(transport: Transport, *, tiles_complete: int, tree_size: int, page_events: int) -> TreeExtension:
    """The Merkle root of the first ``tree_size`` events, storing every tile completed on the way.

    ``tiles_complete`` is how many 256-leaf tiles the store holds (``anchor_state``). A target inside
    the stored tiles (a digest adopted after an interrupted run) is answered from the store alone.
    """
    stored_size = tiles_complete * TILE_SIZE
    if tree_size <= stored_size:
        return TreeExtension(tree_size, MerkleStore(transport).root(tree_size), 0, 0)
    keys = perfect_subtrees(0, stored_size)
    roots: list[bytes] = []
    if keys:
        material = transport.call("merkle_material", {"p_nodes": [list(key) for key in keys], "p_ranges": []})
        found = {(int(level), int(index)): bytes.fromhex(text) for level, index, text in material["nodes"]}
        if any(key not in found for key in keys):
            raise TreeNotStored(f"stored tiles do not reach {stored_size} leaves")
        roots = [found[key] for key in keys]
    builder = TileBuilder(stored_size, roots)
    nodes_stored = 0
    next_seq = stored_size + 1
    while next_seq <= tree_size:
        last_seq = min(tree_size, next_seq + page_events - 1)
        page = transport.call("anchor_checksums", {"p_from_seq": next_seq, "p_to_seq": last_seq})
        builder.append_checksums(bytes.fromhex(page["checksums"]))
        nodes_stored += _store_nodes(transport, builder.take_completed())
        next_seq = last_seq + 1
    return TreeExtension(tree_size, builder.root(), tree_size - stored_size, nodes_stored)


def _store_nodes(transport: Transport, nodes: list[tuple[int, int, bytes]]) -> int:
    stored = 0
    for start in range(0, len(nodes), _NODES_PER_CALL):
        chunk = nodes[start : start + _NODES_PER_CALL]
        result = transport.call(
            "merkle_store_nodes",
            {"p_nodes": [{"level": level, "index": index, "hash": node.hex()} for level, index, node in chunk]},
        )
        stored += int(result["stored"])
    return stored
