"""Redaction records: a redacted event is valid only if a later event of the chain records its redaction.

``audit.redact_seqs`` blanks events and, in the same transaction, appends one chained *redaction record*:
an event with ``event_type`` ``system_event``, ``action`` ``events_redacted`` and ``details``
``{"count": n, "reason": "retention"|"erasure", "seqs": [[first, last], ...], "v1_seqs": [...]}``
(docs/integrity.md, "Redaction records"): ``v1_seqs`` are those of the redacted rows that were sealed with
version 1, since ``seal_version`` itself is not sealed. Someone who blanks or marks rows outside that
function leaves rows no record names; someone who deletes or edits a record breaks the chain at it.
``RedactionLedger`` collects both sides while rows stream past (in any order of chunks) and names the first
row the rule fails for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "REDACTION_ACTION",
    "REDACTION_EVENT_TYPE",
    "SEAL_MARKER_ACTION",
    "RedactionLedger",
    "RedactionRecord",
    "parse_marker",
    "parse_record",
]

REDACTION_EVENT_TYPE: Final = "system_event"
REDACTION_ACTION: Final = "events_redacted"
SEAL_MARKER_ACTION: Final = "seal_version_changed"
"""The seal-version marker: ``details`` ``{"seal": 2, "v1_through": n}``, appended by the seal-v2 migration of a
database that held events. Rows up to ``v1_through`` are version 1, every later row version 2; a chain without a
marker has one version throughout. ``seal_version`` is not sealed, so the chain has to say which rows may be 1."""
_REASONS: Final = frozenset({"retention", "erasure"})


@dataclasses.dataclass(frozen=True, slots=True)
class RedactionRecord:
    """One redaction record: its own seq, the reason, the inclusive seq ranges it redacted, and which of
    them were sealed with version 1."""

    seq: int
    reason: str
    ranges: tuple[tuple[int, int], ...]
    v1_ranges: tuple[tuple[int, int], ...] = ()

    def version_of(self, seq: int) -> int:
        """The seal version the record says the redacted row ``seq`` had."""
        return 1 if any(first <= seq <= last for first, last in self.v1_ranges) else 2


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def _ranges(value: object, below: int) -> tuple[list[tuple[int, int]], int] | None:
    """Ascending, non-overlapping inclusive ranges of positive seqs below ``below``, and how many seqs they hold."""
    if not isinstance(value, list):
        return None
    ranges: list[tuple[int, int]] = []
    total = 0
    previous_last = 0
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            return None
        first, last = _int(item[0]), _int(item[1])
        if first is None or last is None or not previous_last < first <= last < below:
            return None
        ranges.append((first, last))
        total += last - first + 1
        previous_last = last
    return ranges, total


def parse_record(seq: int, details: object) -> RedactionRecord | None:
    """The record an event's ``details`` describe, or ``None`` when they are not a well-formed record.

    Well formed: exactly the members ``count``, ``reason``, ``seqs`` and ``v1_seqs``; ``reason`` retention or
    erasure; ``seqs`` ascending, non-overlapping inclusive ranges of seqs below the record's own, holding
    ``count`` seqs (JSON integers all: ``2.0`` is not a count); ``v1_seqs`` the same shape, within ``seqs``.
    Anything else is not a record (and so authorises no redaction).
    """
    if not isinstance(details, Mapping) or set(details) != {"count", "reason", "seqs", "v1_seqs"}:
        return None
    reason, count = details["reason"], _int(details["count"])
    seqs, v1_seqs = _ranges(details["seqs"], seq), _ranges(details["v1_seqs"], seq)
    if reason not in _REASONS or count is None or seqs is None or v1_seqs is None:
        return None
    (ranges, total), (v1_ranges, _) = seqs, v1_seqs
    if total != count or not ranges:
        return None
    if not all(any(a <= first and last <= b for a, b in ranges) for first, last in v1_ranges):
        return None
    return RedactionRecord(seq, str(reason), tuple(ranges), tuple(v1_ranges))


def parse_marker(details: object) -> int | None:
    """``v1_through`` of a well-formed seal-version marker's ``details``, else ``None``."""
    if not isinstance(details, Mapping) or set(details) != {"seal", "v1_through"} or _int(details["seal"]) != 2:
        return None
    through = _int(details["v1_through"])
    return through if through is not None and through > 0 else None


@dataclasses.dataclass(slots=True)
class RedactionLedger:
    """Redacted rows and redaction records seen so far; ``first_problem`` applies the rule.

    ``redacted`` maps each redacted row's seq to its ``redaction_reason`` and stored ``seal_version``;
    ``records`` are the well-formed records of unredacted rows. Mergeable, so chunks verified apart can be
    joined.
    """

    redacted: dict[int, tuple[str | None, object]] = dataclasses.field(default_factory=dict)
    records: list[RedactionRecord] = dataclasses.field(default_factory=list)
    # (first seq, seal_version) of each run of rows with one seal version, in seq order
    version_runs: list[tuple[int, object]] = dataclasses.field(default_factory=list)
    markers: list[tuple[int, int | None]] = dataclasses.field(default_factory=list)
    last_seq: int = 0

    def note_version(self, seq: int, version: object) -> None:
        """Take one row's ``seal_version`` into account (every row, in seq order)."""
        if not self.version_runs or self.version_runs[-1][1] != version:
            self.version_runs.append((seq, version))
        self.last_seq = seq

    def note(
        self,
        seq: int,
        *,
        redacted: bool,
        reason: str | None,
        event_type: object,
        action: object,
        details: object,
        seal_version: object = 1,
    ) -> None:
        """Take one verified row into account."""
        self.note_version(seq, seal_version)
        if redacted:
            self.redacted[seq] = (reason, seal_version)
        elif event_type == REDACTION_EVENT_TYPE and action == REDACTION_ACTION:
            record = parse_record(seq, details)
            if record is not None:
                self.records.append(record)
        elif event_type == REDACTION_EVENT_TYPE and action == SEAL_MARKER_ACTION:
            self.markers.append((seq, parse_marker(details)))

    def note_row(self, row: Mapping[str, Any]) -> None:
        """``note`` for a row as the SQL API returns it."""
        self.note(
            int(row["seq"]),
            redacted=row.get("redacted_at") is not None,
            reason=row.get("redaction_reason"),
            event_type=row.get("event_type"),
            action=row.get("action"),
            details=row.get("details"),
            seal_version=row.get("seal_version") or 1,
        )

    def merge(self, others: Iterable[RedactionLedger]) -> None:
        """Add what other ledgers collected."""
        for other in others:
            self.redacted.update(other.redacted)
            self.records.extend(other.records)
            self.markers.extend(other.markers)
            for seq, version in other.version_runs:
                if not self.version_runs or self.version_runs[-1][1] != version:
                    self.version_runs.append((seq, version))
            self.last_seq = max(self.last_seq, other.last_seq)

    def version_problem(self) -> tuple[int, str] | None:
        """The lowest seq whose ``seal_version`` (or seal-version marker) the chain does not allow, with a sentence.

        The first well-formed marker (``v1_through`` below its own seq) rules: rows up to ``v1_through`` are
        version 1, later rows version 2; every other marker is not allowed. With markers but none well formed
        the rows' versions follow no rule; with no marker, every row has the first row's version.
        """
        problems: list[tuple[int, str]] = []
        markers = sorted(self.markers)
        ruling = next(((seq, through) for seq, through in markers if through is not None and through < seq), None)
        for seq, through in markers:
            if (seq, through) != ruling:
                problems.append(
                    (seq, f"event seq {seq} is a seal-version marker that is not allowed (malformed or a second one)")
                )
        runs = self.version_runs
        if ruling is None and not markers and len(runs) > 1:
            seq, version = runs[1]
            problems.append(
                (
                    seq,
                    f"event seq {seq} says seal version {version}, unlike the rows before it, and the chain has no"
                    " seal-version marker (seal_version was changed)",
                )
            )
        if ruling is not None:
            through = ruling[1]
            for index, (first, version) in enumerate(runs):
                last = runs[index + 1][0] - 1 if index + 1 < len(runs) else self.last_seq
                if version == 1 and last > through:
                    bad = max(first, through + 1)
                    problems.append(
                        (
                            bad,
                            f"event seq {bad} says seal version 1, but the marker says version 1 ends at seq"
                            f" {through} (seal_version was changed)",
                        )
                    )
                    break
                if version != 1 and first <= through:
                    problems.append(
                        (
                            first,
                            f"event seq {first} says seal version {version}, but the marker says version 1 runs to"
                            f" seq {through}",
                        )
                    )
                    break
        return min(problems) if problems else None

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
                    covered.add(seq)  # named: any problem with it is reported below, not as unrecorded
                    if seq not in self.redacted:
                        problems.append(
                            (seq, f"redaction record seq {record.seq} names seq {seq}, which is not redacted")
                        )
                        break
                    reason, version = self.redacted[seq]
                    if reason != record.reason:
                        problems.append(
                            (
                                seq,
                                f"event seq {seq} is marked redacted for {reason!r} but redaction record seq"
                                f" {record.seq} redacted it for {record.reason!r}",
                            )
                        )
                        break
                    if version != record.version_of(seq):
                        problems.append(
                            (
                                seq,
                                f"event seq {seq} says seal version {version} but redaction record seq {record.seq}"
                                f" redacted a version-{record.version_of(seq)} event (seal_version was changed)",
                            )
                        )
                        break
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
