"""Merkle tree over event checksums, per RFC 6962 section 2.1 (equivalently RFC 9162 section 2.1).

Leaf ``i`` of a tree is the checksum of the event with ``seq = i + 1``. Hashes:
``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``; a tree of ``n > 1``
leaves splits at ``k``, the largest power of two strictly smaller than ``n``; the empty tree's root
is ``SHA-256("")``. The prefixes keep a leaf from being passed off as an inner node (second preimage).

Proofs are produced by the RFC 6962 PATH and PROOF definitions and checked by the RFC 9162 verification
algorithms (sections 2.1.3.2 and 2.1.4.2), which a third party can implement from the RFC alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "MerkleFrontier",
    "consistency_proof",
    "consistency_proof_from_leaf_hashes",
    "inclusion_proof",
    "inclusion_proof_from_leaf_hashes",
    "leaf_hash",
    "merkle_root",
    "merkle_root_from_leaf_hashes",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_leaf_hash",
]

_HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """Return ``SHA-256(0x00 || data)``; in this project ``data`` is an event checksum."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _identity(value: bytes) -> bytes:
    return value


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != _HASH_SIZE:
        raise ValueError(f"{name} must be {_HASH_SIZE} bytes, got {len(value)}")


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size >= 2``)."""
    return 1 << ((size - 1).bit_length() - 1)


class MerkleFrontier:
    """The right edge of a Merkle tree: the roots of its perfect subtrees, largest (leftmost) first.

    A tree of ``size`` leaves is a sequence of perfect subtrees, one per set bit of ``size``; keeping
    their roots is enough to append leaves and compute the root with O(log n) memory. The anchor keeps
    one between runs (``to_dict``/``from_dict``) instead of re-reading every checksum each hour.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, checksum: bytes) -> None:
        """Append the leaf for an event checksum (32 bytes)."""
        _check_hash("checksum", checksum)
        self.append_leaf_hash(leaf_hash(checksum))

    def append_leaf_hash(self, leaf: bytes) -> None:
        """Append an already hashed leaf (``leaf_hash(data)``)."""
        _check_hash("leaf hash", leaf)
        node = leaf
        size = self._size
        # Each trailing 1 bit of the old size is a perfect subtree of the new leaf's height: merge it.
        while size & 1:
            node = node_hash(self._stack.pop(), node)
            size >>= 1
        self._stack.append(node)
        self._size += 1

    def root(self) -> bytes:
        """The root of the tree so far (``EMPTY_ROOT`` when empty)."""
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1]
        for subtree in reversed(self._stack[:-1]):
            root = node_hash(subtree, root)
        return root

    def to_dict(self) -> dict[str, object]:
        """Serialise as ``{"size": n, "hashes": [hex, ...]}`` (subtree roots, largest first)."""
        return {"size": self._size, "hashes": [node.hex() for node in self._stack]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> MerkleFrontier:
        """Restore a frontier saved with ``to_dict``; checks the hash count matches the size."""
        size = data.get("size")
        hashes = data.get("hashes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("frontier size must be a non-negative integer")
        if not isinstance(hashes, list) or not all(isinstance(item, str) for item in hashes):
            raise ValueError("frontier hashes must be a list of hex strings")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} subtree roots, not {len(hashes)}")
        stack = [bytes.fromhex(item) for item in hashes]
        for node in stack:
            _check_hash("frontier hash", node)
        frontier = cls()
        frontier._size = size
        frontier._stack = stack
        return frontier

    def __eq__(self, other: object) -> bool:
        """Two frontiers are equal when they describe the same tree."""
        if not isinstance(other, MerkleFrontier):
            return NotImplemented
        return self._size == other._size and self._stack == other._stack

    def __hash__(self) -> int:
        """Frontiers are mutable: not hashable."""
        raise TypeError("MerkleFrontier is mutable and not hashable")

    def __repr__(self) -> str:
        """Show the size and root, not every subtree."""
        return f"MerkleFrontier(size={self._size}, root={self.root().hex()})"


def merkle_root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """Root of the tree whose leaves are already hashed (O(n) time, O(log n) memory)."""
    frontier = MerkleFrontier()
    for leaf in leaf_hashes:
        frontier.append_leaf_hash(leaf)
    return frontier.root()


def merkle_root(checksums: Iterable[bytes]) -> bytes:
    """Root of the tree over event checksums in seq order (O(n) time, O(log n) memory)."""
    frontier = MerkleFrontier()
    for checksum in checksums:
        frontier.append(checksum)
    return frontier.root()


def _range_root(items: Sequence[bytes], start: int, end: int, to_leaf: Callable[[bytes], bytes]) -> bytes:
    """Root of the subtree over ``items[start:end]`` (a perfect or right-edge subtree)."""
    frontier = MerkleFrontier()
    for index in range(start, end):
        frontier.append_leaf_hash(to_leaf(items[index]))
    return frontier.root()


def _inclusion_path(index: int, items: Sequence[bytes], to_leaf: Callable[[bytes], bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), iteratively: siblings from the leaf up to the root."""
    size = len(items)
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of {size} leaves")
    siblings: list[bytes] = []
    start, end = 0, size
    # Walk down from the root; each step keeps the half holding the leaf and records the other half.
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            siblings.append(_range_root(items, middle, end, to_leaf))
            end = middle
        else:
            siblings.append(_range_root(items, start, middle, to_leaf))
            start = middle
    siblings.reverse()
    return siblings


def _consistency_path(old_size: int, items: Sequence[bytes], to_leaf: Callable[[bytes], bytes]) -> list[bytes]:
    """RFC 6962 PROOF(m, D[n]) = SUBPROOF(m, D[n], true), iteratively."""
    size = len(items)
    if not 0 <= old_size <= size:
        raise ValueError(f"old_size {old_size} is outside 0..{size}")
    if old_size in (0, size):
        return []
    nodes: list[bytes] = []
    start, end, remaining = 0, size, old_size
    # "whole" is SUBPROOF's b: true while the old tree is still a prefix subtree we were given.
    whole = True
    while remaining != end - start:
        middle = start + _split(end - start)
        if remaining <= middle - start:
            nodes.append(_range_root(items, middle, end, to_leaf))
            end = middle
        else:
            nodes.append(_range_root(items, start, middle, to_leaf))
            remaining -= middle - start
            start = middle
            whole = False
    if not whole:
        nodes.append(_range_root(items, start, end, to_leaf))
    nodes.reverse()
    return nodes


def inclusion_proof(index: int, checksums: Sequence[bytes]) -> list[bytes]:
    """Inclusion proof (RFC 6962 PATH) for leaf ``index`` (0-based, i.e. ``seq - 1``) of the tree."""
    for checksum in checksums:
        _check_hash("checksum", checksum)
    return _inclusion_path(index, checksums, leaf_hash)


def inclusion_proof_from_leaf_hashes(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Like ``inclusion_proof`` over already hashed leaves."""
    return _inclusion_path(index, leaf_hashes, _identity)


def consistency_proof(old_size: int, checksums: Sequence[bytes]) -> list[bytes]:
    """Consistency proof (RFC 6962 PROOF) that the first ``old_size`` leaves are a prefix of the tree."""
    for checksum in checksums:
        _check_hash("checksum", checksum)
    return _consistency_path(old_size, checksums, leaf_hash)


def consistency_proof_from_leaf_hashes(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Like ``consistency_proof`` over already hashed leaves."""
    return _consistency_path(old_size, leaf_hashes, _identity)


def _all_hashes(values: Iterable[object]) -> bool:
    return all(isinstance(value, bytes) and len(value) == _HASH_SIZE for value in values)


def _inclusion_proof_length(index: int, tree_size: int) -> int:
    """Length of a valid PATH: levels below the point where the paths to ``index`` and the last leaf
    meet, plus one per left sibling above it (RFC 9162 2.1.3.2 consumes exactly that many)."""
    inner = (index ^ (tree_size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion_leaf_hash(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2, over an already hashed leaf. Never raises on bad input: returns False."""
    if not (isinstance(index, int) and isinstance(tree_size, int)) or not 0 <= index < tree_size:
        return False
    if not _all_hashes((leaf, root, *proof)):
        return False
    if len(proof) != _inclusion_proof_length(index, tree_size):
        return False
    fn, sn = index, tree_size - 1
    result = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root


def verify_inclusion(index: int, tree_size: int, checksum: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Check that ``checksum`` is leaf ``index`` (0-based) of the tree of ``tree_size`` with ``root``."""
    if not _all_hashes((checksum,)):
        return False
    return verify_inclusion_leaf_hash(index, tree_size, leaf_hash(checksum), proof, root)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree ``old_root`` of ``old_size`` a prefix of ``new_root``?

    Edge cases (outside the RFC algorithm, which needs ``0 < old_size < new_size``): equal sizes need
    an empty proof and equal roots; ``old_size == 0`` needs an empty proof and ``old_root ==
    EMPTY_ROOT``. Never raises on bad input: returns False.
    """
    if not (isinstance(old_size, int) and isinstance(new_size, int)) or not 0 <= old_size <= new_size:
        return False
    if not _all_hashes((old_root, new_root, *proof)):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first_root = second_root = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first_root = node_hash(node, first_root)
            second_root = node_hash(node, second_root)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            second_root = node_hash(second_root, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first_root == old_root and second_root == new_root
