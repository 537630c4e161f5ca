"""Verify the stored chain through the SQL API: the same walk for the HTTP route and the CLI.

The database hands out rows in seq order; every checksum and link is recomputed here, outside
the database, with the verifier of docs/integrity.md. A verifier must not trust what it checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from audit_common.api import VerifyResponse
from audit_common.db import Transport
from audit_common.errors import BadRequest
from audit_common.integrity import ChainVerifier, FailureKind

SEGMENT_ROWS = 5000


def verify_chain(
    transport: Transport,
    *,
    from_seq: int = 1,
    to_seq: int | None = None,
    max_rows: int = 200_000,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResponse:
    """Recompute every checksum and link over [from_seq, to_seq] (default: to the chain head).

    The head is read first, so events arriving during verification do not count as missing;
    a range that reaches the head also checks that no event after the last row was removed.
    A range that starts mid-chain is linked to the stored chain_hash of the event before it.
    """
    if to_seq is not None and to_seq < from_seq:
        raise BadRequest("to_seq: must not be smaller than from_seq")
    state = transport.call("chain_state", {"p_before_seq": from_seq})
    head_seq: int = state["head_seq"]
    end = head_seq if to_seq is None else min(to_seq, head_seq)
    stop = min(end, from_seq + max_rows - 1)
    prev_hex: str | None = state["prev_chain_hash"]
    if prev_hex is None:
        # The event before the range is gone, so nothing in the range can be linked to the chain.
        return VerifyResponse(
            valid=False,
            checked=0,
            redacted=0,
            first_invalid_seq=from_seq - 1,
            reason=FailureKind.MISSING.value,
            message=f"event seq {from_seq - 1} is missing: the range cannot be linked to the chain",
            chain_id=str(state["chain_id"]),
            from_seq=from_seq,
            to_seq=from_seq - 1,
            head_seq=head_seq,
            complete=True,
            next_from_seq=None,
        )

    verifier = ChainVerifier(expected_prev_hash=bytes.fromhex(prev_hex), expected_first_seq=from_seq)
    cursor = from_seq
    while cursor <= stop:
        rows = transport.call("chain_segment", {"p_from_seq": cursor, "p_to_seq": stop, "p_limit": SEGMENT_ROWS})
        if not rows:
            break
        verifier.feed_many(rows)
        if verifier.failed:
            break
        cursor = rows[-1]["seq"] + 1
        if progress is not None:
            progress(cursor - from_seq, stop - from_seq + 1)
    if stop == head_seq:
        result = verifier.finish(expected_head_seq=head_seq, expected_head_hash=bytes.fromhex(state["head_chain_hash"]))
        max_seq = state.get("max_seq")
        if result.valid and isinstance(max_seq, int) and max_seq > head_seq:
            # Rows past the head are served by the API like any other: they must not pass unread.
            result = dataclasses.replace(
                result,
                valid=False,
                first_invalid_seq=head_seq + 1,
                reason=FailureKind.ROWS_PAST_HEAD.value,
                message=f"rows are stored up to seq {max_seq} but the chain head says seq {head_seq}",
            )
    else:
        result = verifier.result()
    complete = stop == end or not result.valid
    return VerifyResponse(
        valid=result.valid,
        checked=result.checked,
        redacted=result.redacted,
        first_invalid_seq=result.first_invalid_seq,
        reason=result.reason,
        message=result.message,
        chain_id=str(state["chain_id"]),
        from_seq=from_seq,
        to_seq=stop,
        head_seq=head_seq,
        complete=complete,
        next_from_seq=None if complete else stop + 1,
    )
