"""The integrity section: the period's chain links checked in SQL, a checksum sample recomputed here,
and the newest signed digest.

Recomputing every checksum of a million events (RFC 8785 canonical JSON) runs at about 24k events/s
in Python: too slow for a report's 30 s budget, and `audit-trail verify` exists for it. So the links
of every event in the period's seq range are recomputed in SQL (SHA-256 over prev_hash || checksum,
no gap, each prev_hash the chain_hash before it), and the checksums of evenly spread windows of
events are recomputed here from their canonical JSON. `method` says exactly which.
"""

from __future__ import annotations

from typing import Any, Final

from audit_common.db import Transport
from audit_common.verification import verify_chain
from reports.model import Digest, Integrity

SAMPLE_WINDOWS: Final = 4
SAMPLE_WINDOW_EVENTS: Final = 250


def _windows(first: int, last: int) -> list[tuple[int, int]]:
    """Up to SAMPLE_WINDOWS windows of SAMPLE_WINDOW_EVENTS seqs spread over [first, last], first and last included."""
    span = last - first + 1
    if span <= SAMPLE_WINDOWS * SAMPLE_WINDOW_EVENTS:
        return [(first, last)]
    step = (span - SAMPLE_WINDOW_EVENTS) // (SAMPLE_WINDOWS - 1)
    starts = [first + i * step for i in range(SAMPLE_WINDOWS - 1)] + [last - SAMPLE_WINDOW_EVENTS + 1]
    return [(start, start + SAMPLE_WINDOW_EVENTS - 1) for start in starts]


def _digest(transport: Transport) -> tuple[Digest | None, dict[str, Any] | None]:
    latest: dict[str, Any] | None = transport.call("latest_digest", {})
    if not latest:
        return None, None
    digest = Digest(
        digest_seq=int(latest["digest_seq"]),
        tree_size=int(latest["tree_size"]),
        root_hash=str(latest["root_hash"]),
        created_at=str(latest["created_at"]),
        signing_key_id=latest.get("signing_key_id"),
    )
    return digest, latest


def check_integrity(transport: Transport, min_seq: int | None, max_seq: int | None) -> Integrity:
    """Verify the chain over the period's seq range [min_seq, max_seq] and fetch the newest digest."""
    digest, raw_digest = _digest(transport)
    anchored = ""
    digest_problem: str | None = None
    if digest is not None and raw_digest is not None and digest.tree_size > 0:
        # The digest names the chain_hash at its tree_size: the stored chain must still have it.
        state = transport.call("chain_state", {"p_before_seq": digest.tree_size + 1})
        if state["prev_chain_hash"] != raw_digest.get("chain_hash"):
            digest_problem = f"the chain_hash at seq {digest.tree_size} differs from the newest digest's"
        anchored = (
            f" The newest digest (#{digest.digest_seq}, tree_size {digest.tree_size}) names the chain_hash "
            f"at seq {digest.tree_size}: {'it differs from the stored one' if digest_problem else 'it matches'}"
            " (its signature is checked by `audit-trail verify`)."
        )
    elif digest is None:
        anchored = " No signed digest exists yet."
    if min_seq is None or max_seq is None:
        return Integrity(
            valid=digest_problem is None,
            checked=0,
            first_invalid_seq=digest.tree_size if digest_problem and digest else None,
            reason="chain_hash_mismatch" if digest_problem else None,
            method="No events in the period, so no links to check." + anchored,
            digest=digest,
        )

    links = transport.call("report_chain_links", {"p_from_seq": min_seq, "p_to_seq": max_seq})
    checked, expected = int(links["checked"]), int(links["expected"])
    first_invalid: int | None = links["first_invalid_seq"]
    reason: str | None = links["reason"]
    if first_invalid is None and checked != expected:
        first_invalid, reason = max_seq, "missing"

    windows = _windows(min_seq, max_seq)
    sampled = 0
    if first_invalid is None:
        for start, stop in windows:
            result = verify_chain(transport, from_seq=start, to_seq=stop, max_rows=stop - start + 1)
            sampled += result.checked
            if not result.valid:
                first_invalid, reason = result.first_invalid_seq, result.reason
                break
    if first_invalid is None and digest_problem and digest is not None:
        first_invalid, reason = digest.tree_size, "chain_hash_mismatch"

    method = (
        f"Links of all {expected} events with seq {min_seq}..{max_seq} (the period's seq range) recomputed in SQL: "
        "seq without gaps, prev_hash equal to the chain_hash before it, chain_hash = SHA-256(prev_hash || checksum). "
        f"Checksums recomputed from RFC 8785 canonical JSON for {sampled} events in "
        f"{len(windows)} window(s) ({', '.join(f'{a}..{b}' for a, b in windows)}); redacted events are checked by "
        "link only. `audit-trail verify` recomputes every checksum." + anchored
    )
    return Integrity(
        valid=first_invalid is None,
        checked=checked,
        first_invalid_seq=first_invalid,
        reason=reason,
        method=method,
        digest=digest,
    )
