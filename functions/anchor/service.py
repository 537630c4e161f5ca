"""One anchor run: extend the Merkle tree to the chain head, sign a digest, lock it in S3, record it.

Safe to retry and to run twice at once, because a digest's S3 key depends only on its digest_seq and
S3 writes it only if nothing is there yet:

* crash before the S3 write: nothing was published; the retry signs a fresh digest N;
* crash after the S3 write, before ``record_digest``: the retry finds digest N in the bucket, checks
  its signature, its links to digest N-1 and its root against the stored tree, and records *that*
  digest instead of signing another one (which would fork the chain: two signed digests N);
* two runs at once: one wins the conditional write, the other adopts the winner's digest;
* crash after ``record_digest``: the run was complete; the retry writes digest N+1.

An hour without events still writes a digest (tree_size unchanged, null event times), so a gap in the
digests is a missing digest, not a quiet hour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from anchor.digest_store import StoredDigest
from anchor.signer import SigningKey
from anchor.tree import extend_tree
from audit_common.db import Transport
from audit_common.errors import Conflict
from audit_common.integrity.digest import (
    GENESIS_CHAIN_HASH_HEX,
    Digest,
    DigestFormatError,
    digest_bytes,
    digest_key,
    digest_timestamp,
    parse_digest,
    public_key_key,
    public_key_pem,
    verify_signature,
)


class AnchorConflict(Conflict):
    """The bucket holds a digest for the next digest_seq that does not continue the chain: needs a human."""


class Signer(Protocol):
    """What the run needs from KMS (anchor.signer.KmsSigner)."""

    @property
    def key(self) -> SigningKey:
        """The signing key."""
        ...

    def public_key_der(self, key_id: str) -> bytes:
        """Public key of a key named in a digest."""
        ...

    def sign(self, message: bytes) -> str:
        """Base64 signature."""
        ...


class Store(Protocol):
    """What the run needs from the digest bucket (anchor.digest_store.DigestStore)."""

    lock_days: int

    def get(self, key: str) -> StoredDigest | None:
        """The object at key, or None."""
        ...

    def put_digest(self, key: str, body: bytes, signature: str, retain_until: datetime) -> bool:
        """Conditional write; False when the key exists."""
        ...

    def put_public_key(self, key: str, pem: str, retain_until: datetime) -> bool:
        """Conditional write; False when the key exists."""
        ...


@dataclass(frozen=True)
class AnchorResult:
    """What a run did."""

    status: Literal["written", "adopted"]
    digest_seq: int
    tree_size: int
    new_events: int
    root_hash: str
    s3_key: str
    leaves_read: int
    nodes_stored: int
    recorded: Literal["recorded", "already_recorded"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def run_anchor(
    transport: Transport,
    signer: Signer,
    store: Store,
    *,
    chain_id: str,
    page_events: int = 50_000,
    now: Callable[[], datetime] = _utcnow,
) -> AnchorResult:
    """Write, sign, lock and record the next digest (or adopt the one an interrupted run left in S3)."""
    state: dict[str, Any] = transport.call("anchor_state")
    last: dict[str, Any] | None = state["last_digest"]
    digest_seq = 1 if last is None else int(last["digest_seq"]) + 1
    key = digest_key(chain_id, digest_seq)

    existing = store.get(key)
    if existing is not None:
        return _adopt(transport, signer, store, existing, last, chain_id, digest_seq, page_events)

    previous_tree_size = 0 if last is None else int(last["tree_size"])
    tree_size = int(state["head_seq"])
    extension = extend_tree(
        transport, tiles_complete=int(state["tiles_complete"]), tree_size=tree_size, page_events=page_events
    )
    times = transport.call("anchor_event_times", {"p_after_seq": previous_tree_size, "p_to_seq": tree_size})
    moment = now()
    period_end = digest_timestamp(moment)
    first_start = times["first_received_at"] or period_end
    signing_key = signer.key
    digest = Digest(
        chain_id=chain_id,
        digest_seq=digest_seq,
        tree_size=tree_size,
        root_hash=extension.root.hex(),
        chain_hash=state["head_chain_hash"] if tree_size else GENESIS_CHAIN_HASH_HEX,
        previous_tree_size=previous_tree_size,
        # The previous window's end exactly as it was signed: the windows tile without gap or overlap.
        period_start=first_start if last is None else last["digest"]["period_end"],
        period_end=period_end,
        oldest_event_time=times["oldest_event_time"],
        newest_event_time=times["newest_event_time"],
        created_at=period_end,
        previous_digest_key=None if last is None else last["s3_key"],
        previous_digest_signature=None if last is None else last["signature"],
        signing_key_id=signing_key.key_id,
        signing_algorithm=signing_key.algorithm,
    )
    body = digest_bytes(digest)
    signature = signer.sign(body)
    # Check our own signature before publishing it: a wrong key or algorithm must not reach the bucket.
    if not verify_signature(body, signature, signing_key.public_key_der, signing_key.algorithm):
        raise AnchorConflict(f"KMS signature by {signing_key.key_id} does not verify with its public key")
    retain_until = moment + timedelta(days=store.lock_days)
    pem = public_key_pem(signing_key.public_key_der)
    pem_key = public_key_key(chain_id, signing_key.key_id)
    store.put_public_key(pem_key, pem, retain_until)
    if not store.put_digest(key, body, signature, retain_until):
        # Another run wrote digest N between our look and our write: continue from its digest.
        winner = store.get(key)
        if winner is None:
            raise AnchorConflict(f"{key} was refused as existing but cannot be read")
        return _adopt(transport, signer, store, winner, last, chain_id, digest_seq, page_events)
    recorded = _record(transport, digest, key, signature, pem, pem_key)
    return AnchorResult(
        status="written",
        digest_seq=digest_seq,
        tree_size=tree_size,
        new_events=tree_size - previous_tree_size,
        root_hash=digest.root_hash,
        s3_key=key,
        leaves_read=extension.leaves_read,
        nodes_stored=extension.nodes_stored,
        recorded=recorded,
    )


def _adopt(
    transport: Transport,
    signer: Signer,
    store: Store,
    existing: StoredDigest,
    last: dict[str, Any] | None,
    chain_id: str,
    digest_seq: int,
    page_events: int,
) -> AnchorResult:
    """Record the digest N an earlier run put in S3, after checking that it continues the chain."""
    try:
        digest = parse_digest(existing.body)
    except DigestFormatError as exc:
        raise AnchorConflict(f"{existing.key} is not a digest this system wrote: {exc}") from None
    expected_links = (
        (digest_seq, chain_id, 0, None, None)
        if last is None
        else (digest_seq, chain_id, int(last["tree_size"]), last["s3_key"], last["signature"])
    )
    links = (
        digest.digest_seq,
        digest.chain_id,
        digest.previous_tree_size,
        digest.previous_digest_key,
        digest.previous_digest_signature,
    )
    if links != expected_links:
        raise AnchorConflict(f"{existing.key} does not follow the last recorded digest: {links} != {expected_links}")
    public_key = signer.public_key_der(digest.signing_key_id)
    if not verify_signature(existing.body, existing.signature, public_key, digest.signing_algorithm):
        raise AnchorConflict(f"{existing.key}: its metadata signature does not verify with {digest.signing_key_id}")
    # The head and tiles as they are now: a competing run may have moved both since this run looked.
    state: dict[str, Any] = transport.call("anchor_state")
    if digest.tree_size > int(state["head_seq"]):
        raise AnchorConflict(f"{existing.key} covers {digest.tree_size} events, the chain has {state['head_seq']}")
    extension = extend_tree(
        transport, tiles_complete=int(state["tiles_complete"]), tree_size=digest.tree_size, page_events=page_events
    )
    if extension.root.hex() != digest.root_hash:
        raise AnchorConflict(f"{existing.key}: its root is not the chain's Merkle root at {digest.tree_size}")
    pem = public_key_pem(public_key)
    pem_key = public_key_key(chain_id, digest.signing_key_id)
    recorded = _record(transport, digest, existing.key, existing.signature, pem, pem_key)
    return AnchorResult(
        status="adopted",
        digest_seq=digest_seq,
        tree_size=digest.tree_size,
        new_events=digest.tree_size - digest.previous_tree_size,
        root_hash=digest.root_hash,
        s3_key=existing.key,
        leaves_read=extension.leaves_read,
        nodes_stored=extension.nodes_stored,
        recorded=recorded,
    )


def _record(
    transport: Transport, digest: Digest, key: str, signature: str, pem: str, pem_key: str
) -> Literal["recorded", "already_recorded"]:
    result = transport.call(
        "record_digest",
        {
            "p_digest": digest.model_dump(mode="json"),
            "p_s3_key": key,
            "p_signature": signature,
            "p_public_key_pem": pem,
            "p_public_key_s3_key": pem_key,
        },
    )
    status: Literal["recorded", "already_recorded"] = result["status"]
    return status
