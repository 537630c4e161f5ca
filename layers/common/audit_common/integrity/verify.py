"""Streaming verification of a range of the hash chain, as rows come from the database's SQL API.

Used by ``GET /integrity/verify`` and by the offline ``audit-trail verify``. Rows are fed in seq order,
one page at a time if need be; memory stays constant. Each row is checked for, in this order:

1. its ``seq`` follows the previous one (``missing`` on a gap; a repeated seq is ``inserted``);
2. its ``prev_hash`` is the previous row's ``chain_hash`` (else ``reordered`` when it and the next row
   are an adjacent swap, ``inserted`` naming the previous row when this one links to the row before
   that, otherwise ``inserted`` naming this row);
3. ``chain_hash == SHA-256(prev_hash || checksum)`` (``chain_hash_mismatch``);
4. the stored values are exactly the sealed form (``not_canonical``: ``audit_common.integrity.stored``);
5. a redacted row holds no private value and no salt (``redaction_incomplete``);
6. the checksum recomputed under the row's seal version equals ``checksum`` (``modified``, or
   ``redacted_without_record`` when the payload looks blanked but no redaction was recorded). For seal
   version 2 the payload commitment is recomputed from the salt and the private fields first (unless the row
   is redacted: then the stored commitment stands in for them, and the kept fields are still checked). A
   redacted version-1 row can only be checked for its links: its checksum covers the erased values.

At ``finish()`` (a range that reaches the chain head) the redaction rule is applied too: every redacted row
must be named by a later redaction record (``redaction_unrecorded``, ``audit_common.integrity.redaction``).
The digest kinds (``digest_missing``, ``digest_altered``, ``signature_invalid``, ``root_mismatch``)
are found by the offline verifier, which also compares the events with the signed digests.
Verification stops at the first failure. Step 2 needs one row of lookahead, so a row is judged when
the next one arrives or when ``result()``/``finish()`` is called.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from audit_common.integrity.chain import GENESIS_HASH, HASH_SIZE
from audit_common.integrity.redaction import RedactionLedger
from audit_common.integrity.seal import (
    PRIVATE_FIELDS,
    SEAL_SALT_BYTES,
    SEAL_VERSION,
    event_checksum,
    payload_commitment,
    private_object,
)
from audit_common.integrity.stored import stored_form_problem

__all__ = ["ChainVerifier", "FailureKind", "VerificationResult", "ledger_failure"]

# What a redaction blanks (docs/integrity.md, "Failure kinds"): used only to name a failure better.
_BLANKED_FIELDS = ("user_email", "ip_address", "user_agent")


class FailureKind(StrEnum):
    """Why verification failed (``VerificationResult.reason``); the values are part of the API."""

    MODIFIED = "modified"
    CHAIN_HASH_MISMATCH = "chain_hash_mismatch"
    MISSING = "missing"
    REORDERED = "reordered"
    INSERTED = "inserted"
    TRUNCATED = "truncated"
    REDACTED_WITHOUT_RECORD = "redacted_without_record"
    # The chain head against every stored row (docs/integrity.md, section 6).
    ROWS_PAST_HEAD = "rows_past_head"
    HEAD_ROLLED_BACK = "head_rolled_back"
    # Redaction (seal version 2, redaction records).
    REDACTION_UNRECORDED = "redaction_unrecorded"
    REDACTION_INCOMPLETE = "redaction_incomplete"
    # What is stored is not exactly the sealed form.
    NOT_CANONICAL = "not_canonical"
    # Signed digests (docs/integrity.md, "Digests"); found by the offline verifier, `audit-trail verify`.
    DIGEST_MISSING = "digest_missing"
    DIGEST_ALTERED = "digest_altered"
    SIGNATURE_INVALID = "signature_invalid"
    ROOT_MISMATCH = "root_mismatch"
    # The digests as evidence (docs/integrity.md, 8.4): the first locked object version, a pinned key,
    # periods that tile, and a newest digest no older than the anchor interval plus a grace period.
    DIGEST_OVERWRITTEN = "digest_overwritten"
    KEY_UNTRUSTED = "key_untrusted"
    DIGEST_DISCONTINUOUS = "digest_discontinuous"
    DIGESTS_STALE = "digests_stale"


@dataclasses.dataclass(frozen=True, slots=True)
class VerificationResult:
    """Outcome of verifying a range.

    ``checked`` counts rows verified good (the failing row is not counted), ``redacted`` the redacted
    ones among them. ``last_seq``/``last_chain_hash`` describe the last good row (or the starting point
    when none was): a caller can resume from there. On failure, ``first_invalid_seq`` names the first
    bad seq, ``reason`` is a ``FailureKind`` value and ``message`` a sentence for humans.
    """

    valid: bool
    checked: int
    redacted: int
    first_invalid_seq: int | None
    reason: str | None
    message: str | None
    last_seq: int
    last_chain_hash: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    seq: int
    kind: FailureKind
    message: str


def _hash_value(value: object, size: int = HASH_SIZE) -> bytes | None:
    """A stored hash (or salt) as raw bytes: ``2 * size`` hex digits or ``size`` raw bytes; ``None`` otherwise."""
    if isinstance(value, str):
        if len(value) != 2 * size:
            return None
        try:
            return bytes.fromhex(value)
        except ValueError:
            return None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return raw if len(raw) == size else None
    return None


def _seq_of(row: Mapping[str, Any]) -> int:
    seq = row.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        # Not evidence of tampering but of a caller bug (the SQL API always returns seq): fail loudly.
        raise ValueError(f"row has no integer seq: {seq!r}")
    return seq


def _looks_blanked(row: Mapping[str, Any]) -> bool:
    # details exactly {}: the blank form of docs/integrity.md 6.2 step 5 (a null is not_canonical before this).
    return all(row.get(field) is None for field in _BLANKED_FIELDS) and row.get("details") == {}


def redaction_residue(row: Mapping[str, Any]) -> str | None:
    """What a redacted row still holds that a redaction erases (a private value or the salt), or ``None``."""
    for name in PRIVATE_FIELDS:
        value = row.get(name)
        # The blank form is exactly null, and exactly {} for the two objects (not [], 0, "" or null).
        if (value != {}) if name in ("details", "metadata") else (value is not None):
            return name
    if row.get("seal_salt") is not None:
        return "seal_salt"
    return None


def recompute_checksum(row: Mapping[str, Any]) -> tuple[bytes | None, bool]:
    """The checksum the row's stored fields give under its seal version, and whether its commitment held.

    For version 2 the checksum is computed from the kept fields and the *stored* payload commitment; for an
    unredacted row the commitment is then recomputed from ``seal_salt`` and the private fields, and the second
    value says whether it matched. So a changed kept field gives a wrong checksum, and a changed (or blanked)
    private part a right checksum with a commitment that does not hold. ``None`` when the values cannot be
    sealed at all (a value that cannot be sealed cannot be what was sealed).
    """
    try:
        checksum = event_checksum(row)
        if (row.get("seal_version") or 1) == SEAL_VERSION and row.get("redacted_at") is None:
            salt = _hash_value(row.get("seal_salt"), SEAL_SALT_BYTES)
            stored = _hash_value(row.get("payload_commitment"))
            if salt is None or stored is None or payload_commitment(salt, private_object(row)) != stored:
                return checksum, False
        return checksum, True
    except ValueError:
        return None, True


def ledger_failure(ledger: RedactionLedger, from_seq: int = 1) -> tuple[int, FailureKind, str] | None:
    """The chain-wide rules over every row noted (docs/integrity.md 6.3): the lowest seq a seal version or a
    redaction fails at, its kind and why; ``None`` when both hold. The seal-version rule needs the chain from
    seq 1; a tie at one seq names ``not_canonical``."""
    versions = ledger.version_problem() if from_seq == 1 else None
    problem = ledger.first_problem(from_seq)
    if versions is not None and (problem is None or versions[0] <= problem[0]):
        return versions[0], FailureKind.NOT_CANONICAL, versions[1]
    if problem is not None:
        return problem[0], FailureKind.REDACTION_UNRECORDED, problem[1]
    return None


def _short(digest: bytes | None) -> str:
    return "an unreadable value" if digest is None else digest.hex()[:16] + "..."


class ChainVerifier:
    """Verify rows of one chain in seq order, starting after a known point (genesis by default).

    ``feed``/``feed_many`` rows, then call ``result()`` (or ``finish()`` to also compare with the chain
    head). Either closes the verifier: feeding afterwards raises ``RuntimeError``.
    """

    def __init__(self, expected_prev_hash: bytes = GENESIS_HASH, expected_first_seq: int = 1) -> None:
        """Start at ``expected_first_seq`` whose ``prev_hash`` must be ``expected_prev_hash``.

        For a range that starts mid-chain, pass the ``chain_hash`` of the row before it (from a row
        already verified, or from a signed digest).
        """
        if len(expected_prev_hash) != HASH_SIZE:
            raise ValueError(f"expected_prev_hash must be {HASH_SIZE} bytes")
        if expected_first_seq < 1:
            raise ValueError("seq starts at 1")
        self._next_seq = expected_first_seq
        self._prev_hash = bytes(expected_prev_hash)
        # The link before the last good row: a row that links to it instead betrays an inserted row.
        self._prev_prev_hash: bytes | None = None
        self._last_good_redacted = False
        self._pending: Mapping[str, Any] | None = None
        self._checked = 0
        self._redacted = 0
        self._failure: _Failure | None = None
        self._closed = False
        self._first_seq = expected_first_seq
        self.ledger = RedactionLedger()

    @property
    def failed(self) -> bool:
        """True once a failure was found: further rows are ignored, so a caller may stop reading.

        The last row fed may still be pending (judged when the next arrives or at ``result()``).
        """
        return self._failure is not None

    def feed(self, row: Mapping[str, Any]) -> None:
        """Add the next row (a dict as the SQL API returns it). Ignored once a failure was found."""
        if self._closed:
            raise RuntimeError("this verifier already produced its result")
        if self._failure is not None:
            return
        if self._pending is not None:
            self._check(self._pending, row)
        self._pending = row

    def feed_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Feed rows in order; stops consuming the iterable at the first failure."""
        for row in rows:
            self.feed(row)
            if self._failure is not None:
                return

    def result(self) -> VerificationResult:
        """Judge the last pending row and return the outcome (closes the verifier)."""
        self._flush()
        failure = self._failure
        return VerificationResult(
            valid=failure is None,
            checked=self._checked,
            redacted=self._redacted,
            first_invalid_seq=None if failure is None else failure.seq,
            reason=None if failure is None else failure.kind.value,
            message=None if failure is None else failure.message,
            last_seq=self._next_seq - 1,
            last_chain_hash=self._prev_hash.hex(),
        )

    def finish(
        self, expected_head_seq: int, expected_head_hash: bytes, *, redactions: bool = True
    ) -> VerificationResult:
        """Like ``result()``, and also check the range ends at the chain head (seq and chain_hash).

        Feed rows only up to ``expected_head_seq``: read the head first, then ``seq <= head``.
        Fewer rows, or a different last hash, is ``truncated``. With ``redactions`` (the default) the
        redaction rule is applied to the rows fed (``redaction_unrecorded``): pass False when the rows are
        only part of the chain and the caller applies the rule over all of it.
        """
        self._flush()
        if self._failure is None:
            last_seq = self._next_seq - 1
            if last_seq > expected_head_seq:
                raise ValueError(f"rows go up to seq {last_seq}, past the head {expected_head_seq}")
            if last_seq < expected_head_seq:
                self._failure = _Failure(
                    last_seq + 1,
                    FailureKind.TRUNCATED,
                    f"the chain head is at seq {expected_head_seq} but the rows end at seq {last_seq}: "
                    f"events {last_seq + 1}..{expected_head_seq} were removed",
                )
            elif self._prev_hash != expected_head_hash:
                self._failure = _Failure(
                    expected_head_seq,
                    FailureKind.TRUNCATED,
                    f"the chain head records a different chain_hash for seq {expected_head_seq} "
                    f"({_short(expected_head_hash)}, rows give {_short(self._prev_hash)}): "
                    "the chain was cut and rebuilt",
                )
            elif redactions:
                found = ledger_failure(self.ledger, self._first_seq)
                if found is not None:
                    self._failure = _Failure(*found)
        return self.result()

    def _flush(self) -> None:
        self._closed = True
        if self._pending is not None and self._failure is None:
            self._check(self._pending, None)
        self._pending = None

    def _fail(self, seq: int, kind: FailureKind, message: str) -> None:
        self._failure = _Failure(seq, kind, message)

    def _check(self, row: Mapping[str, Any], next_row: Mapping[str, Any] | None) -> None:
        seq = _seq_of(row)
        expected = self._next_seq
        if seq != expected:
            self._check_sequence(seq, expected, next_row)
            return
        if next_row is not None and next_row.get("seq") == seq:
            # Two rows with one seq: whichever the database returns first, the verdict is the same.
            self._fail(seq, FailureKind.INSERTED, f"two rows are stored with seq {seq}: one of them was inserted")
            return
        prev_hash = _hash_value(row.get("prev_hash"))
        if prev_hash != self._prev_hash:
            self._check_link(seq, prev_hash, row, next_row)
            return
        checksum = _hash_value(row.get("checksum"))
        stored_chain_hash = _hash_value(row.get("chain_hash"))
        computed_chain_hash = None if checksum is None else hashlib.sha256(prev_hash + checksum).digest()
        if stored_chain_hash is None or computed_chain_hash != stored_chain_hash:
            self._fail(
                seq,
                FailureKind.CHAIN_HASH_MISMATCH,
                f"event seq {seq}: stored chain_hash {_short(stored_chain_hash)} is not "
                f"SHA-256(prev_hash || checksum) = {_short(computed_chain_hash)}",
            )
            return
        problem = stored_form_problem(row)
        if problem is not None:
            self._fail(seq, FailureKind.NOT_CANONICAL, f"event seq {seq} is not stored as it was sealed: {problem}")
            return
        redacted = row.get("redacted_at") is not None
        if redacted:
            residue = redaction_residue(row)
            if residue is not None:
                self._fail(
                    seq,
                    FailureKind.REDACTION_INCOMPLETE,
                    f"event seq {seq} is marked redacted but still holds its {residue}",
                )
                return
        if not redacted or (row.get("seal_version") or 1) == SEAL_VERSION:
            recomputed, commitment_held = recompute_checksum(row)
            if recomputed != checksum or not commitment_held:
                # Version 2 tells a blanked private part (the kept fields still give the checksum) from an edit.
                version_2 = (row.get("seal_version") or 1) == SEAL_VERSION
                blanked = _looks_blanked(row) and (recomputed == checksum or not version_2)
                if not redacted and blanked:
                    self._fail(
                        seq,
                        FailureKind.REDACTED_WITHOUT_RECORD,
                        f"event seq {seq} has a blanked payload but no redaction record "
                        "(redacted_at is null): it was erased outside the redaction function",
                    )
                elif recomputed == checksum:
                    self._fail(
                        seq,
                        FailureKind.MODIFIED,
                        f"event seq {seq} was modified: its private fields (or salt) no longer match the"
                        " payload_commitment that was sealed",
                    )
                else:
                    self._fail(
                        seq,
                        FailureKind.MODIFIED,
                        f"event seq {seq} was modified: its checksum recomputed from the stored fields "
                        f"is {_short(recomputed)}, the stored checksum is {_short(checksum)}",
                    )
                return
        if redacted:
            self._redacted += 1
        self.ledger.note_row(row)
        self._last_good_redacted = row.get("redacted_at") is not None
        self._checked += 1
        self._next_seq = seq + 1
        self._prev_prev_hash = self._prev_hash
        self._prev_hash = stored_chain_hash

    def _check_sequence(self, seq: int, expected: int, next_row: Mapping[str, Any] | None) -> None:
        if seq < expected:
            self._fail(
                seq,
                FailureKind.INSERTED,
                f"seq {seq} appears after seq {expected - 1}: an extra row was inserted",
            )
        elif next_row is not None and next_row.get("seq") == expected and seq == expected + 1:
            self._fail(
                expected,
                FailureKind.REORDERED,
                f"seq {seq} comes before seq {expected}: rows are out of order",
            )
        else:
            gap = str(expected) if seq == expected + 1 else f"{expected}..{seq - 1}"
            self._fail(expected, FailureKind.MISSING, f"event seq {gap} is missing (rows jump to seq {seq})")

    def _check_link(
        self, seq: int, prev_hash: bytes | None, row: Mapping[str, Any], next_row: Mapping[str, Any] | None
    ) -> None:
        # An adjacent swap leaves a telltale pair: the next row links to our predecessor, and this row
        # links to the next one. Anything else that does not link is a row that does not belong here.
        if (
            next_row is not None
            and _hash_value(next_row.get("prev_hash")) == self._prev_hash
            and prev_hash is not None
            and prev_hash == _hash_value(next_row.get("chain_hash"))
        ):
            self._fail(
                seq,
                FailureKind.REORDERED,
                f"event seq {seq} and seq {seq + 1} are swapped: each links to the other's predecessor",
            )
            return
        if prev_hash is not None and prev_hash == self._prev_prev_hash:
            # This row links to seq - 2: the row before it, well formed as it is, was put in between.
            # It was counted as checked; it is not.
            self._checked -= 1
            if self._last_good_redacted:
                self._redacted -= 1
            self._fail(
                seq - 1,
                FailureKind.INSERTED,
                f"event seq {seq - 1} was inserted: seq {seq} links to seq {seq - 2}, not to it",
            )
            return
        self._fail(
            seq,
            FailureKind.INSERTED,
            f"event seq {seq} does not link to seq {seq - 1} (prev_hash {_short(prev_hash)}, expected "
            f"{_short(self._prev_hash)}): a row was inserted here or the chain was rewritten before it",
        )
