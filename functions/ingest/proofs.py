"""Merkle proofs against signed digests: inclusion of one event, consistency between two digests.

Proofs are assembled from the anchor's stored subtree hashes (audit_common.merkle_store) and checked
against the digest's signed root before they are served: a proof that would not verify means the
stored chain or tree changed after the digest was signed, and that is reported, not served.
"""

from __future__ import annotations

from typing import Any

from audit_common.api import ConsistencyProofResponse, InclusionProofResponse, SignedDigest
from audit_common.db import Transport
from audit_common.errors import BadRequest, Conflict, NotFound
from audit_common.integrity.digest import Digest
from audit_common.integrity.merkle import verify_consistency, verify_inclusion
from audit_common.merkle_store import MerkleStore


class ProofMismatch(Conflict):
    """The stored data no longer proves what the signed digest says: evidence of tampering."""


def signed_digest(row: dict[str, Any]) -> SignedDigest:
    """A `digests` row (audit.digest_json) as the API's SignedDigest."""
    return SignedDigest(
        digest=Digest.model_validate(row["digest"]),
        s3_key=row["s3_key"],
        signature=row["signature"],
        public_key_pem=row.get("public_key_pem"),
        public_key_s3_key=row.get("public_key_s3_key"),
    )


def _digest_row(transport: Transport, digest_seq: int | None) -> dict[str, Any]:
    if digest_seq is None:
        latest: dict[str, Any] | None = transport.call("latest_digest")
        if latest is None:
            raise Conflict("no digest has been written yet: the hourly anchor has not run")
        return latest
    row: dict[str, Any] | None = transport.call("get_digest", {"p_digest_seq": digest_seq})
    if row is None:
        raise NotFound(f"digest_seq: no digest {digest_seq}")
    return row


def inclusion(transport: Transport, event_id: str, digest_seq: int | None = None) -> InclusionProofResponse:
    """Prove the event is leaf ``seq - 1`` of a signed tree: the newest digest, or digest ``digest_seq``.

    404 for an unknown event or digest; 409 when the digest does not cover the event yet (the next
    hourly anchor will) or when the stored tree no longer matches the signed root.
    """
    event: dict[str, Any] | None = transport.call("get_event", {"p_event_id": event_id})
    if event is None:
        raise NotFound(f"event_id: no event {event_id!r}")
    seq = int(event["seq"])
    row = _digest_row(transport, digest_seq)
    tree_size = int(row["tree_size"])
    if tree_size < seq:
        raise Conflict(
            f"event seq {seq} is not covered by digest {row['digest_seq']} (tree_size {tree_size}): "
            "the next anchor run covers it"
        )
    proof = MerkleStore(transport).inclusion_proof(seq - 1, tree_size)
    checksum = bytes.fromhex(event["checksum"])
    if not verify_inclusion(seq - 1, tree_size, checksum, proof, bytes.fromhex(row["root_hash"])):
        raise ProofMismatch(
            f"event seq {seq} does not verify against the signed root of digest {row['digest_seq']}: "
            "the stored chain changed after it was signed"
        )
    return InclusionProofResponse(
        event_id=event["event_id"],
        seq=seq,
        checksum=event["checksum"],
        leaf_index=seq - 1,
        tree_size=tree_size,
        root_hash=row["root_hash"],
        inclusion_proof=[node.hex() for node in proof],
        digest=signed_digest(row),
    )


def consistency(transport: Transport, from_digest: int, to_digest: int) -> ConsistencyProofResponse:
    """Prove digest ``from_digest``'s tree is a prefix of digest ``to_digest``'s (RFC 6962 PROOF)."""
    if to_digest < from_digest:
        raise BadRequest("to: must not be smaller than from")
    old = _digest_row(transport, from_digest)
    new = _digest_row(transport, to_digest)
    old_size, new_size = int(old["tree_size"]), int(new["tree_size"])
    proof = MerkleStore(transport).consistency_proof(old_size, new_size)
    if not verify_consistency(
        old_size, new_size, bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"]), proof
    ):
        raise ProofMismatch(
            f"digests {from_digest} and {to_digest} are not consistent with the stored tree: "
            "the chain changed between them or after they were signed"
        )
    return ConsistencyProofResponse(
        old_size=old_size,
        new_size=new_size,
        old_root=old["root_hash"],
        new_root=new["root_hash"],
        consistency_proof=[node.hex() for node in proof],
        old_digest=signed_digest(old),
        new_digest=signed_digest(new),
    )
