"""Redaction records: a redacted event is valid only if a later event of the chain records its redaction.

``audit.redact_seqs`` blanks events and, in the same transaction, appends one chained *redaction record*:
an event with ``event_type`` ``system_event``, ``action`` ``events_redacted`` and ``details``
``{"count": n, "reason": "retention"|"erasure", "seqs": [[first, last], ...]}`` (docs/integrity.md,
"Redaction records"). Someone who blanks or marks rows outside that function leaves rows no record names;
someone who deletes or edits a record breaks the chain at the record. ``RedactionLedger`` collects both
sides while rows stream past (in any order of chunks) and names the first row the rule fails for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["REDACTION_ACTION", "REDACTION_EVENT_TYPE", "RedactionLedger", "RedactionRecord", "parse_record"]

REDACTION_EVENT_TYPE: Final = "system_event"
REDACTION_ACTION: Final = "events_redacted"
_REASONS: Final = frozenset({"retention", "erasure"})


@dataclasses.dataclass(frozen=True, slots=True)
class RedactionRecord:
    """One redaction record: its own seq, the reason, and the inclusive seq ranges it redacted."""

    seq: int
    reason: str
    ranges: tuple[tuple[int, int], ...]


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def parse_record(seq: int, details: object) -> RedactionRecord | None:
    """The record an event's ``details`` describe, or ``None`` when they are not a well-formed record.

    Well formed: ``reason`` retention or erasure; ``seqs`` ascending, non-overlapping inclusive ranges of
    seqs below the record's own; ``count`` the number of seqs they hold. Anything else is not a record
    (and so authorises no redaction).
    """
    if not isinstance(details, Mapping) or set(details) != {"count", "reason", "seqs"}:
        return None
    reason, count, seqs = details["reason"], _int(details["count"]), details["seqs"]
    if reason not in _REASONS or count is None or not isinstance(seqs, list):
        return None
    ranges: list[tuple[int, int]] = []
    total = 0
    previous_last = 0
    for item in seqs:
        if not isinstance(item, list) or len(item) != 2:
            return None
        first, last = _int(item[0]), _int(item[1])
        if first is None or last is None or not previous_last < first <= last < seq:
            return None
        ranges.append((first, last))
        total += last - first + 1
        previous_last = last
    if total != count or not ranges:
        return None
    return RedactionRecord(seq, str(reason), tuple(ranges))


@dataclasses.dataclass(slots=True)
class RedactionLedger:
    """Redacted rows and redaction records seen so far; ``first_problem`` applies the rule.

    ``redacted`` maps each redacted row's seq to its ``redaction_reason``; ``records`` are the
    well-formed records of unredacted rows. Mergeable, so chunks verified apart can be joined.
    """

    redacted: dict[int, str | None] = dataclasses.field(default_factory=dict)
    records: list[RedactionRecord] = dataclasses.field(default_factory=list)

    def note(
        self,
        seq: int,
        *,
        redacted: bool,
        reason: str | None,
        event_type: object,
        action: object,
        details: object,
    ) -> None:
        """Take one verified row into account."""
        if redacted:
            self.redacted[seq] = reason
        elif event_type == REDACTION_EVENT_TYPE and action == REDACTION_ACTION:
            record = parse_record(seq, details)
            if record is not None:
                self.records.append(record)

    def note_row(self, row: Mapping[str, Any]) -> None:
        """``note`` for a row as the SQL API returns it."""
        self.note(
            int(row["seq"]),
            redacted=row.get("redacted_at") is not None,
            reason=row.get("redaction_reason"),
            event_type=row.get("event_type"),
            action=row.get("action"),
            details=row.get("details"),
        )

    def merge(self, others: Iterable[RedactionLedger]) -> None:
        """Add what other ledgers collected."""
        for other in others:
            self.redacted.update(other.redacted)
            self.records.extend(other.records)

    def first_problem(self, from_seq: int = 1) -> tuple[int, str] | None:
        """The lowest seq (>= ``from_seq``) where the rule fails, with a sentence; ``None`` when it holds.

        The rule: every redacted row is named by a record later in the chain, with the same reason; and every
        seq a record names is a redacted row with that reason. Call it once the rows up to the chain head
        have been noted (a record always follows the rows it names).
        """
        problems: list[tuple[int, str]] = []
        covered: set[int] = set()
        for record in self.records:
            for first, last in record.ranges:
                for seq in range(max(first, from_seq), last + 1):
                    if seq not in self.redacted:
                        problems.append(
                            (seq, f"redaction record seq {record.seq} names seq {seq}, which is not redacted")
                        )
                        break
                    reason = self.redacted[seq]
                    if reason != record.reason:
                        problems.append(
                            (
                                seq,
                                f"event seq {seq} is marked redacted for {reason!r} but redaction record seq"
                                f" {record.seq} redacted it for {record.reason!r}",
                            )
                        )
                        break
                    covered.add(seq)
        uncovered = [seq for seq in self.redacted if seq >= from_seq and seq not in covered]
        if uncovered:
            seq = min(uncovered)
            problems.append(
                (
                    seq,
                    f"event seq {seq} is marked redacted but no later redaction record names it: it was"
                    " redacted (or marked) outside the redaction function",
                )
            )
        return min(problems) if problems else None
