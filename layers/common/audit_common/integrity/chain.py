"""The hash chain: ``chain_hash(n) = SHA-256(chain_hash(n-1) || checksum(n))``, genesis 32 zero bytes.

The database trigger computes the same value with PostgreSQL's built-in ``sha256(bytea)``; this module is
what the verifier and the tests use to recompute it.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["GENESIS_HASH", "HASH_SIZE", "chain_hash"]

HASH_SIZE: Final = 32
GENESIS_HASH: Final = bytes(HASH_SIZE)


def chain_hash(prev: bytes, checksum: bytes) -> bytes:
    """Return ``SHA-256(prev || checksum)`` over the raw 32-byte values.

    Lengths are checked because a hex string or a truncated digest passed by mistake would still
    hash, silently producing a chain nobody else can reproduce.
    """
    if len(prev) != HASH_SIZE:
        raise ValueError(f"prev must be {HASH_SIZE} bytes, got {len(prev)}")
    if len(checksum) != HASH_SIZE:
        raise ValueError(f"checksum must be {HASH_SIZE} bytes, got {len(checksum)}")
    return hashlib.sha256(prev + checksum).digest()
