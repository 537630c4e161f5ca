"""Integrity of the audit trail: canonical JSON, event checksums, the hash chain, Merkle proofs, verification.

docs/integrity.md is the normative specification; this package implements it.
"""

from audit_common.integrity.canonical import CanonicalizationError, canonical_bytes, canonical_number
from audit_common.integrity.chain import GENESIS_HASH, HASH_SIZE, chain_hash
from audit_common.integrity.merkle import (
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
from audit_common.integrity.seal import (
    SEALED_FIELDS,
    SealError,
    canonical_ip_address,
    event_checksum,
    format_timestamp,
    sealed_object,
)
from audit_common.integrity.verify import ChainVerifier, FailureKind, VerificationResult

__all__ = [
    "EMPTY_ROOT",
    "GENESIS_HASH",
    "HASH_SIZE",
    "SEALED_FIELDS",
    "CanonicalizationError",
    "ChainVerifier",
    "FailureKind",
    "MerkleFrontier",
    "SealError",
    "VerificationResult",
    "canonical_bytes",
    "canonical_ip_address",
    "canonical_number",
    "chain_hash",
    "consistency_proof",
    "consistency_proof_from_leaf_hashes",
    "event_checksum",
    "format_timestamp",
    "inclusion_proof",
    "inclusion_proof_from_leaf_hashes",
    "leaf_hash",
    "merkle_root",
    "merkle_root_from_leaf_hashes",
    "node_hash",
    "sealed_object",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_leaf_hash",
]
