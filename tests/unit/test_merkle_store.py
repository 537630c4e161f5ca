"""Proofs from stored tiles and the anchor's incremental tree, against the plain RFC 6962 functions (no database).

A fake SQL API serves `merkle_material` and `anchor_checksums` from memory and records what was asked, so
these tests also pin the cost: how many leaves and nodes a proof or an hourly run touches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchor.tree import TileBuilder, extend_tree
from audit_common.integrity.merkle import consistency_proof, inclusion_proof, merkle_root
from audit_common.merkle_store import (
    TILE_SIZE,
    MerkleStore,
    TreeNotStored,
    consistency_ranges,
    inclusion_ranges,
    perfect_subtrees,
)

CHECKSUMS = [hashlib.sha256(f"event-{i}".encode()).digest() for i in range(2200)]


class FakeApi:
    """The anchor's SQL API over an in-memory chain and tile table."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.leaves_served = 0
        self.nodes_served = 0

    def call(self, function: str, args: Mapping[str, Any] | None = None) -> Any:
        args = dict(args or {})
        if function == "merkle_material":
            nodes = [[lv, ix, self.nodes[(lv, ix)].hex()] for lv, ix in args["p_nodes"] if (lv, ix) in self.nodes]
            self.nodes_served += len(nodes)
            ranges = []
            for first, last in args["p_ranges"]:
                self.leaves_served += last - first + 1
                ranges.append({"checksums": b"".join(CHECKSUMS[first - 1 : min(last, self.size)]).hex()})
            return {"nodes": nodes, "ranges": ranges}
        if function == "anchor_checksums":
            self.leaves_served += args["p_to_seq"] - args["p_from_seq"] + 1
            return {"checksums": b"".join(CHECKSUMS[args["p_from_seq"] - 1 : args["p_to_seq"]]).hex()}
        if function == "merkle_store_nodes":
            for node in args["p_nodes"]:
                key = (node["level"], node["index"])
                assert self.nodes.get(key, bytes.fromhex(node["hash"])) == bytes.fromhex(node["hash"])
                self.nodes[key] = bytes.fromhex(node["hash"])
            return {"stored": len(args["p_nodes"])}
        raise AssertionError(function)

    def close(self) -> None:
        pass

    def tiles_complete(self) -> int:
        return sum(1 for level, _ in self.nodes if level == 8)


def anchored(size: int) -> FakeApi:
    api = FakeApi(size)
    extend_tree(api, tiles_complete=0, tree_size=size, page_events=333)
    return api


def test_perfect_subtrees_split_a_range_into_aligned_powers_of_two() -> None:
    assert perfect_subtrees(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_subtrees(256, 300) == [(5, 8), (3, 36), (2, 74)]
    assert perfect_subtrees(5, 5) == []


@pytest.mark.parametrize("size", [1, 2, 3, 255, 256, 257, 511, 512, 513, 1000, 1024, 2049, 2200])
def test_ranges_follow_rfc6962_path_and_proof(size: int) -> None:
    for index in {0, size // 3, size - 1}:
        assert len(inclusion_ranges(index, size)) == len(inclusion_proof(index, CHECKSUMS[:size]))
    for old in {1, size // 2, size - 1, size}:
        if old:
            assert len(consistency_ranges(old, size)) == len(consistency_proof(old, CHECKSUMS[:size]))


@pytest.mark.parametrize("size", [1, 255, 256, 257, 700, 1024, 1025, 2200])
def test_incremental_tree_equals_the_full_root_and_stores_every_tile(size: int) -> None:
    api = anchored(size)
    assert MerkleStore(api).root(size) == merkle_root(CHECKSUMS[:size])
    for (level, index), node in api.nodes.items():
        start = index << level
        assert node == merkle_root(CHECKSUMS[start : start + (1 << level)])
    assert api.tiles_complete() == size // TILE_SIZE


def test_an_hourly_run_reads_the_new_events_and_the_open_tile_only() -> None:
    api = anchored(1500)  # 5 complete tiles, 220 leaves in the open one
    api.size = 2200
    api.leaves_served = 0
    extension = extend_tree(api, tiles_complete=api.tiles_complete(), tree_size=2200, page_events=100_000)
    assert extension.root == merkle_root(CHECKSUMS[:2200])
    assert api.leaves_served == extension.leaves_read == 2200 - 5 * TILE_SIZE


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=2200), data=st.data())
def test_proofs_from_tiles_equal_proofs_over_all_checksums(size: int, data: st.DataObject) -> None:
    api = anchored(2200)
    store = MerkleStore(api)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))
    api.leaves_served = 0
    assert store.inclusion_proof(index, size) == inclusion_proof(index, CHECKSUMS[:size])
    # at most the leaf's tile and the open tile at the right edge
    assert api.leaves_served <= 2 * TILE_SIZE
    assert store.consistency_proof(old, size) == consistency_proof(old, CHECKSUMS[:size])


def test_a_tree_beyond_the_stored_tiles_is_refused() -> None:
    api = anchored(600)
    api.size = 2200
    with pytest.raises(TreeNotStored):
        MerkleStore(api).inclusion_proof(0, 2200)


def test_tile_builder_refuses_a_frontier_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="perfect subtrees"):
        TileBuilder(768, [b"\x00" * 32])
    with pytest.raises(ValueError, match="32-byte"):
        TileBuilder().append_checksums(b"\x00" * 31)
