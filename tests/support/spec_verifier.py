"""An independent verifier of the audit trail's event chain, written from ``docs/integrity.md`` alone.

It follows sections 1-4 (sealing, canonical bytes, checksum, chain) and 6 (verifying the chain) of the spec and
nothing else: it does not import the project's integrity code. Its only dependencies are the standard library,
``psycopg`` (to read the database) and ``rfc8785`` (an independent RFC 8785 implementation). It checks the events
alone: a verdict that needs the signed digests (``root_mismatch``, ``head_rolled_back``, a row missing by a
digest's tree size) is out of its reach, and it returns what the events say.

Where the spec leaves a choice open, the choice made is marked ``GUESS`` with the section it concerns; where the
spec's revision decides what used to be a guess, the sentence relied on is quoted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import psycopg
import rfc8785
from psycopg import IsolationLevel

GENESIS: Final = bytes(32)
PRIVATE_FIELDS: Final = ("user_email", "session_id", "ip_address", "user_agent", "details", "metadata")
KEPT_FIELDS: Final = (
    "event_id",
    "timestamp",
    "event_type",
    "user_id",
    "resource_path",
    "resource_id",
    "action",
    "status",
    "security_level",
    "compliance_tags",
    "parent_event_id",
)
_NEVER_NULL_STRINGS: Final = ("event_id", "event_type", "status", "security_level")
"""6.1: text columns "whose sealed member is never null" (timestamp, tags, details and metadata are read apart)."""
_REASONS: Final = frozenset({"retention", "erasure"})
_RECORD_MEMBERS: Final = frozenset({"count", "reason", "seqs", "v1_seqs"})
_MARKER_ACTION: Final = "seal_version_changed"
_MARKER_MEMBERS: Final = frozenset({"seal", "v1_through"})
_HASH_LENGTH: Final = 32
_SALT_LENGTH: Final = 16

Verdict = tuple[str | None, int | None]
VALID: Final[Verdict] = (None, None)

# Section 6.1: every column read with pg_catalog functions only (schema-qualified, so that nothing an attacker
# creates on the search path is called), each reading one-to-one.
_ROWS_SQL: Final = """
select
    e.seq,
    e.event_id,
    pg_catalog.to_char(pg_catalog.timezone('UTC', e."timestamp"), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    pg_catalog.date_part('year', pg_catalog.timezone('UTC', e."timestamp"))::pg_catalog.text,
    e.event_type,
    e.user_id,
    e.user_email,
    e.session_id,
    case when e.ip_address is not null then pg_catalog.format('%s', e.ip_address) end,  -- format: NULL is ''
    e.user_agent,
    e.resource_path,
    e.resource_id,
    e.action,
    e.status,
    e.details::pg_catalog.text,
    e.security_level,
    e.compliance_tags,
    pg_catalog.array_ndims(e.compliance_tags),
    pg_catalog.array_lower(e.compliance_tags, 1),
    e.parent_event_id,
    e.metadata::pg_catalog.text,
    e.seal_version,
    e.seal_salt,
    e.payload_commitment,
    e.checksum,
    e.prev_hash,
    e.chain_hash,
    e.redacted_at is not null,
    e.redaction_reason
from audit.audit_events e
order by e.seq
"""
_HEAD_SQL: Final = "select h.seq, h.chain_hash from audit.chain_head h"


@dataclass(frozen=True)
class StoredRow:
    """One row of ``audit.audit_events`` as section 6.1 reads it (before any check)."""

    seq: int
    event_id: str | None
    timestamp: str | None
    timestamp_year: str | None
    event_type: str | None
    user_id: str | None
    user_email: str | None
    session_id: str | None
    ip_address: str | None
    user_agent: str | None
    resource_path: str | None
    resource_id: str | None
    action: str | None
    status: str | None
    details: str | None
    security_level: str | None
    compliance_tags: list[Any] | None
    tags_ndims: int | None
    tags_lower: int | None
    parent_event_id: str | None
    metadata: str | None
    seal_version: int | None
    seal_salt: bytes | None
    payload_commitment: bytes | None
    checksum: bytes | None
    prev_hash: bytes | None
    chain_hash: bytes | None
    redacted: bool
    redaction_reason: str | None


@dataclass(frozen=True)
class Head:
    seq: int
    chain_hash: bytes | None


EMPTY_HEAD: Final = Head(0, GENESIS)
"""6.4: "none, more than one, or one with a NULL seq reads as the head of the empty chain (seq 0, chain_hash of 32
zero bytes)"."""


class NotCanonical(Exception):
    """Section 6.1: a stored value that is not exactly the sealed form."""


class Unsealable(Exception):
    """Section 6.5 ``modified``: the stored values cannot be sealed at all."""


# --------------------------------------------------------------------------------------------------
# Reading (section 6 and 6.1)
# --------------------------------------------------------------------------------------------------


def read_trail(url: str) -> tuple[Head, list[StoredRow]]:
    """Every row and the chain head, in one REPEATABLE READ snapshot (section 6)."""
    with psycopg.connect(url, client_encoding="UTF8") as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            heads = conn.execute(_HEAD_SQL).fetchall()
            rows = [StoredRow(*row) for row in conn.execute(_ROWS_SQL).fetchall()]
    return read_head(heads), rows


def read_head(heads: Sequence[Sequence[Any]]) -> Head:
    """6.4: "audit.chain_head holds one row; none, more than one, or one with a NULL seq reads as the head of the
    empty chain"."""
    if len(heads) != 1 or heads[0][0] is None:
        return EMPTY_HEAD
    seq, head_hash = heads[0]
    return Head(int(seq), None if head_hash is None else bytes(head_hash))


def verify_database(url: str) -> Verdict:
    """(failure kind, first bad seq), or (None, None) when the events and head are intact (sections 6.2-6.5)."""
    head, rows = read_trail(url)
    return verify_rows(head, rows)


# --------------------------------------------------------------------------------------------------
# The checks (sections 6.2-6.4)
# --------------------------------------------------------------------------------------------------


def verify_rows(head: Head | None, rows: Sequence[StoredRow]) -> Verdict:
    """6.2: "For each row up to the head's seq, in this order, the first check that fails names the failure;
    verification stops there. Then section 6.4 (the head), then 6.3 (redaction records)."."""
    head = head or EMPTY_HEAD
    rows = sorted(rows, key=lambda row: row.seq)  # "Rows are read in seq order from 1"
    checked = [row for row in rows if row.seq <= head.seq]
    past_head = [row for row in rows if row.seq > head.seq]

    # 6.2, from genesis; rows past the head are not checked (6.4: "even with everything after it garbled").
    chain: list[bytes] = [GENESIS]  # chain[i] = chain_hash of the i-th row accepted (chain[0] = genesis)
    expected = 1
    for index, row in enumerate(checked):
        following = checked[index + 1] if index + 1 < len(checked) else None
        failure = _check_row(row, following, expected, chain)
        if failure is not None:
            return failure
        assert row.chain_hash is not None
        chain.append(row.chain_hash)
        expected += 1

    # 6.4. "The last row read is the highest seq stored, not the head's seq."
    if past_head:
        return ("rows_past_head", past_head[0].seq)
    last_seq = checked[-1].seq if checked else 0
    if last_seq < head.seq:
        return ("truncated", last_seq + 1)  # every row up to the last passed step 1, so last + 1 is absent
    if chain[-1] != head.chain_hash:
        return ("truncated", head.seq)

    # 6.3: the redaction records and the seal-version marker. Both name their lowest seq; "a tie with
    # redaction_unrecorded at the same seq names not_canonical".
    failures = [
        (seq, kind)
        for seq, kind in ((version_disallowed(checked), "not_canonical"), (unrecorded(checked), "redaction_unrecorded"))
        if seq is not None
    ]
    if failures:
        seq, kind = min(failures)  # "not_canonical" < "redaction_unrecorded": the tie names not_canonical
        return (kind, seq)
    return VALID


def _is_hash(value: bytes | None) -> bool:
    return value is not None and len(value) == _HASH_LENGTH


def _check_row(row: StoredRow, following: StoredRow | None, expected: int, chain: list[bytes]) -> Verdict | None:
    """Steps 1-6 of section 6.2 for one row; the first failing check names the failure."""
    # 1. Sequence. "A seq below 1 is inserted"; 6.5 inserted: "a seq repeats (two rows with one seq: inserted at
    # that seq), or is below 1". The repeat is seen at the first of the two rows, whichever of them the database
    # returns first (rows of one seq come in no defined order).
    if row.seq < 1 or row.seq < expected or (following is not None and following.seq == row.seq):
        return ("inserted", row.seq)
    if row.seq > expected:
        # 6.5 also has "reordered" by seq ("the next row carries the expected seq"): read in seq order, the next
        # row's seq is never below this one's, so only the swap by link (step 2) can be seen.
        return ("missing", expected)

    # 2. Link. 6.1: "a prev_hash of the wrong length does not link (step 2)": it equals no 32-byte hash.
    previous = chain[-1]
    if row.prev_hash != previous:
        if (
            following is not None
            and following.prev_hash == previous
            and _is_hash(following.chain_hash)
            and row.prev_hash == following.chain_hash
        ):
            return ("reordered", row.seq)
        if len(chain) >= 2 and row.prev_hash == chain[-2]:
            return ("inserted", row.seq - 1)  # "the row in between is the inserted one and is named"
        return ("inserted", row.seq)

    # 3. Chain hash. 6.1: "a checksum or chain_hash of the wrong length is chain_hash_mismatch".
    if not _is_hash(row.checksum) or not _is_hash(row.chain_hash):
        return ("chain_hash_mismatch", row.seq)
    assert row.checksum is not None
    if hashlib.sha256(previous + row.checksum).digest() != row.chain_hash:
        return ("chain_hash_mismatch", row.seq)

    # 4. Stored form.
    try:
        values = read_values(row)
    except NotCanonical:
        return ("not_canonical", row.seq)

    # 5. Redaction left nothing.
    if row.redacted and (not _private_blank(values) or row.seal_salt is not None):
        return ("redaction_incomplete", row.seq)

    # 6. Checksum.
    if not _checksum_holds(row, values):
        if not row.redacted and _looks_blanked(values) and _blanked_outside_redaction(row, values):
            return ("redacted_without_record", row.seq)
        return ("modified", row.seq)
    return None


# --------------------------------------------------------------------------------------------------
# Stored form (section 6.1)
# --------------------------------------------------------------------------------------------------

_UNSEALABLE: Final = object()
"""A value read that has no sealed form (step 6 fails with ``modified``), as opposed to one not in it."""


def read_values(row: StoredRow) -> dict[str, Any]:
    """The sealed value of each of the 17 fields, or NotCanonical. A value that cannot be sealed at all reads as
    ``_UNSEALABLE`` (it fails step 6, not step 4)."""
    # 6.1, seal_version/seal_salt/payload_commitment: "a version-1 row that holds a salt or a commitment (a
    # version-2 row relabelled)" is not the sealed form. Any stored value counts as held, an empty one included.
    if row.seal_version == 1 and (row.seal_salt is not None or row.payload_commitment is not None):
        raise NotCanonical
    # 6.1: "any column whose sealed member is never null (event_id, timestamp, event_type, status, security_level,
    # compliance_tags, details, metadata) ... SQL NULL, or JSON null in details/metadata: never read as the absent
    # value". (timestamp: the year is NULL only for a NULL column; an infinity has a year and no to_char text.)
    if any(getattr(row, name) is None for name in (*_NEVER_NULL_STRINGS, "timestamp_year", "compliance_tags")):
        raise NotCanonical
    values: dict[str, Any] = {
        "event_id": row.event_id,
        "timestamp": _read_timestamp(row),
        "event_type": row.event_type,
        "user_id": row.user_id,
        "user_email": row.user_email,
        "session_id": row.session_id,
        "ip_address": _read_ip(row.ip_address),
        "user_agent": row.user_agent,
        "resource_path": row.resource_path,
        "resource_id": row.resource_id,
        "action": row.action,
        "status": row.status,
        "details": _read_json(row.details),
        "security_level": row.security_level,
        "compliance_tags": _read_tags(row),
        "parent_event_id": row.parent_event_id,
        "metadata": _read_json(row.metadata),
    }
    return values


def _read_timestamp(row: StoredRow) -> object:
    # 6.1: the to_char text "for an instant from year 1 to 9999 (to_char prints a year BC without its era, so test
    # the range, not the text); any other instant, infinities included, cannot be sealed (modified)".
    if row.timestamp is None or row.timestamp_year is None:  # an infinity (a NULL column is not_canonical first)
        return _UNSEALABLE
    year = Decimal(row.timestamp_year)
    if not year.is_finite() or not 1 <= year <= 9999:
        return _UNSEALABLE
    return row.timestamp


def _read_ip(text: str | None) -> str | None:
    # 6.1: PostgreSQL's inet text carries "/len" only when the mask is short: a mask is not the sealed form.
    if text is None:
        return None
    if "/" in text:
        raise NotCanonical
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:  # PostgreSQL prints nothing else; kept for a reading that is not an address
        raise NotCanonical from exc
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise NotCanonical  # "an IPv4-mapped IPv6 address (::ffff:a.b.c.d: ingest stores the IPv4 address)"
    return str(address)  # the compressed form of section 1 (PostgreSQL may print "::0.2.0.3" for "::2:3")


def utf16(text: str) -> bytes:
    """The string as UTF-16 code units, big-endian: byte order is code-unit order (sections 1 and 2)."""
    return text.encode("utf-16-be", "surrogatepass")


def _read_tags(row: StoredRow) -> object:
    # 6.1: "the array as stored: one dimension, lower bound 1, no NULL element (or empty)"; not the sealed form:
    # "another shape ([0:1]={a,b}, {{a,b}}, a NULL element); not sorted by UTF-16 code units, or not unique".
    tags = row.compliance_tags
    if tags is None:  # 6.1: SQL NULL in a never-null column (also checked up front)
        raise NotCanonical
    if row.tags_ndims is None:  # the empty array
        return []
    if row.tags_ndims != 1 or row.tags_lower != 1:
        raise NotCanonical
    if any(not isinstance(tag, str) for tag in tags):
        raise NotCanonical
    keys = [utf16(tag) for tag in tags]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise NotCanonical
    return list(tags)


def _read_json(text: str | None) -> object:
    """A JSONB column: "the JSONB text, numbers read as exact decimals", each required to be the exact value of
    its RFC 8785 text (6.1). Returns the value with numbers as Decimal, or _UNSEALABLE."""
    # 6.1: "SQL NULL, or JSON null in details/metadata: never read as the absent value ({})".
    if text is None:
        raise NotCanonical
    value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    if value is None:
        raise NotCanonical
    # GUESS (6.1 reads "the JSONB text" whatever its shape): numbers are checked first, so a stored number that is
    # not its sealed form is not_canonical even inside a value that is not an object.
    _check_numbers(value)
    if not isinstance(value, dict):
        # Section 1 seals details and metadata as objects. Step 5 names [], 0 and "" as values a redaction left
        # behind, so they pass step 4 (JSON null does not: 6.1): on an unredacted row they cannot be sealed (step 6,
        # modified).
        return _UNSEALABLE
    return value


def _check_numbers(value: object) -> None:
    if isinstance(value, Decimal):
        double = float(value)  # correctly rounded: the double the number denotes (section 2)
        # 6.1: "1e400 (no double)" is not the sealed form.
        if not math.isfinite(double) or Decimal(rfc8785.dumps(double).decode("ascii")) != value:
            raise NotCanonical
    elif isinstance(value, dict):
        for item in value.values():
            _check_numbers(item)
    elif isinstance(value, list):
        for item in value:
            _check_numbers(item)


def _private_blank(values: Mapping[str, Any]) -> bool:
    # Step 5: "user_email, session_id, ip_address, user_agent null; details and metadata exactly {}, not [], null,
    # 0 or """.
    return (
        all(values[name] is None for name in ("user_email", "session_id", "ip_address", "user_agent"))
        and _is_empty_object(values["details"])
        and _is_empty_object(values["metadata"])
    )


def _is_empty_object(value: object) -> bool:
    return isinstance(value, dict) and not value


def _looks_blanked(values: Mapping[str, Any]) -> bool:
    # 6.5 redacted_without_record: "user_email, ip_address, user_agent null and details exactly {}".
    return all(values[name] is None for name in ("user_email", "ip_address", "user_agent")) and _is_empty_object(
        values["details"]
    )


def _blanked_outside_redaction(row: StoredRow, values: Mapping[str, Any]) -> bool:
    """6.5 redacted_without_record: "step 6 failed on an unredacted row whose payload looks blanked ... For version 2
    only when the kept fields and the stored commitment still give the checksum (the private part changed, not a
    kept field)".

    Read as written: the condition is on version 2 only, so a blanked row of any other seal_version (1, or one that
    does not exist) is redacted_without_record; and it names the kept fields and the commitment only, so a salt of
    the wrong length (6.1: "modified") on a blanked version-2 row is redacted_without_record too, 6.5 refining what
    6.1 calls a step-6 failure.
    """
    return row.seal_version != 2 or _kept_give_checksum(row, values)


# --------------------------------------------------------------------------------------------------
# Sealing (sections 1-3)
# --------------------------------------------------------------------------------------------------


def _as_doubles(value: object) -> object:
    """Every number as the IEEE 754 double it denotes (section 2); Unsealable for what cannot be sealed."""
    if isinstance(value, Decimal):
        double = float(value)
        if not math.isfinite(double):
            raise Unsealable
        return double
    if isinstance(value, dict):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_doubles(item) for item in value]
    if value is _UNSEALABLE:
        raise Unsealable
    return value


def canonical_bytes(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of a sealed object (section 2), numbers as doubles."""
    try:
        return bytes(rfc8785.dumps(_as_doubles(dict(obj))))
    except rfc8785.CanonicalizationError as exc:  # a lone surrogate, a number beyond the doubles
        raise Unsealable from exc


def sealed_v2(kept: Mapping[str, Any], commitment: bytes) -> dict[str, Any]:
    """1.1: the sealed object v2, 13 members."""
    return {"seal": 2, **{name: kept[name] for name in KEPT_FIELDS}, "payload_commitment": commitment.hex()}


def commitment_of(salt: bytes, values: Mapping[str, Any]) -> bytes:
    """1.1: SHA-256(seal_salt || canonical bytes of the private object)."""
    return hashlib.sha256(salt + canonical_bytes({name: values[name] for name in PRIVATE_FIELDS})).digest()


def checksum_of(obj: Mapping[str, Any]) -> bytes:
    """Section 3."""
    return hashlib.sha256(canonical_bytes(obj)).digest()


def _kept_give_checksum(row: StoredRow, values: Mapping[str, Any]) -> bool:
    commitment = row.payload_commitment
    if commitment is None or len(commitment) != _HASH_LENGTH:
        return False
    try:
        return checksum_of(sealed_v2(values, commitment)) == row.checksum
    except Unsealable:
        return False


def _checksum_holds(row: StoredRow, values: Mapping[str, Any]) -> bool:
    """Step 6 of section 6.2 (False also when the stored values cannot be sealed at all)."""
    try:
        if row.seal_version == 2:
            if not row.redacted:
                salt = row.seal_salt
                if salt is None or len(salt) != _SALT_LENGTH or row.payload_commitment is None:
                    return False
                if commitment_of(salt, values) != row.payload_commitment:
                    return False
            return _kept_give_checksum(row, values)
        if row.seal_version == 1:
            if row.redacted:
                return True  # "nothing more (its checksum covers the erased values: section 1.1)"
            return checksum_of(values) == row.checksum
        return False  # no such seal version: it cannot be sealed
    except Unsealable:
        return False


# --------------------------------------------------------------------------------------------------
# Redaction records (section 6.3)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A redaction record of exactly the form of 6.3."""

    seq: int
    reason: str
    seqs: tuple[tuple[int, int], ...]
    v1_seqs: tuple[tuple[int, int], ...]


def _json_integer(value: object) -> int | None:
    # 6.3: "count and every bound are integers as PostgreSQL prints the stored JSONB (no fraction: 2.0 is not a
    # count; 2e0 is stored and printed as 2)": an integer literal in the JSONB text (json reads it as int; 2.0 as
    # Decimal; true as bool, which is no integer).
    return value if type(value) is int else None


def _ranges(value: object, record_seq: int) -> tuple[tuple[int, int], ...] | None:
    """6.3 seqs: "ascending, non-overlapping, inclusive ranges ..., all above 0 and below the record's own seq"."""
    if not isinstance(value, list):
        return None
    ranges: list[tuple[int, int]] = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            return None
        first, last = _json_integer(pair[0]), _json_integer(pair[1])
        if first is None or last is None or not 0 < first <= last < record_seq:
            return None
        if ranges and first <= ranges[-1][1]:
            return None
        ranges.append((first, last))
    return tuple(ranges)


def _within(inner: Sequence[tuple[int, int]], outer: Sequence[tuple[int, int]]) -> bool:
    # 6.3: v1_seqs are ranges "each within one range of seqs" (so one may not span two adjacent ranges).
    return all(any(first <= a and b <= last for first, last in outer) for a, b in inner)


def parse_record(row: StoredRow) -> Record | None:
    """The row as a redaction record: "Only an unredacted event of that type and action whose details are exactly
    of that form, these four members and no other, is a record (anything else authorises nothing)"."""
    if row.redacted or row.event_type != "system_event" or row.action != "events_redacted" or row.details is None:
        return None
    details = json.loads(row.details, parse_float=Decimal)
    if not isinstance(details, dict) or set(details) != _RECORD_MEMBERS:
        return None
    count, reason = _json_integer(details["count"]), details["reason"]
    seqs, v1_seqs = _ranges(details["seqs"], row.seq), _ranges(details["v1_seqs"], row.seq)
    if count is None or reason not in _REASONS or seqs is None or v1_seqs is None:
        return None
    if sum(last - first + 1 for first, last in seqs) != count or not _within(v1_seqs, seqs):
        return None
    return Record(row.seq, str(reason), seqs, v1_seqs)


def _marks(row: StoredRow) -> tuple[str | None, int | None]:
    return (row.redaction_reason, row.seal_version)


def unrecorded(rows: Sequence[StoredRow]) -> int | None:
    """The lowest seq that breaks the redaction records of section 6.3 (redaction_unrecorded), or None.

    "every redacted row MUST be named by a record later in the chain, with its redaction_reason as the record's
    reason and its seal_version as the record says (1 within v1_seqs, else 2); and every seq a record names MUST be
    a redacted row with that reason and that seal version."
    """
    by_seq = {row.seq: row for row in rows}
    names: dict[int, list[tuple[str, int]]] = {}  # seq -> (reason, seal version) of every record naming it
    for row in rows:
        record = parse_record(row)
        if record is None:
            continue
        v1 = {seq for first, last in record.v1_seqs for seq in range(first, last + 1)}
        for first, last in record.seqs:
            for seq in range(first, last + 1):
                names.setdefault(seq, []).append((record.reason, 1 if seq in v1 else 2))

    bad: set[int] = set()
    for seq, named in names.items():
        target = by_seq.get(seq)
        if target is None or not target.redacted or any(entry != _marks(target) for entry in named):
            bad.add(seq)
    for row in rows:
        if row.redacted and _marks(row) not in names.get(row.seq, []):
            bad.add(row.seq)
    return min(bad) if bad else None


# --------------------------------------------------------------------------------------------------
# The seal-version marker (section 6.3)
# --------------------------------------------------------------------------------------------------


def is_marker(row: StoredRow) -> bool:
    """A row 6.3 counts as a seal-version marker, of its form or not.

    GUESS (6.3 gives the marker's action, not its event_type): the migration appended it "after those records, one
    more", so it is a system_event as the redaction records are; an event of another type with that action is an
    ordinary event (any client may send an action of its choosing).
    """
    return row.event_type == "system_event" and row.action == _MARKER_ACTION


def marker_v1_through(row: StoredRow) -> int | None:
    """n, when the row is a seal-version marker of exactly the form of 6.3, else None: "action seal_version_changed,
    user_id migration:seal_v2, details exactly {"seal": 2, "v1_through": n} with n (a positive integer below the
    marker's own seq)"; "The marker is never redacted".

    GUESS (6.3: "a marker not of that form"): the form is that of its details, as "details ... exactly of that form"
    is for a record; the user_id the migration writes is described, not required. n and the 2 are integers as 6.3
    has them for a record's count (an integer literal in the JSONB text, not 2.0 or true).
    """
    if row.redacted or not is_marker(row) or row.details is None:
        return None
    details = json.loads(row.details, parse_float=Decimal)
    if not isinstance(details, dict) or set(details) != _MARKER_MEMBERS or _json_integer(details["seal"]) != 2:
        return None
    n = _json_integer(details["v1_through"])
    return n if n is not None and 0 < n < row.seq else None


def version_disallowed(rows: Sequence[StoredRow]) -> int | None:
    """The lowest seq whose seal version the marker of section 6.3 (or, without one, the first row) does not allow,
    or None (the failure is not_canonical).

    "Then every row up to n MUST be version 1 and every later row version 2. A chain without a marker ... MUST have
    one version throughout. A second marker, or a marker not of that form, is not allowed. Each failure is
    not_canonical, naming the lowest seq whose version the rule does not allow."

    GUESS (6.3 names no seq for a marker that is not allowed, nor says what rule holds the other rows then): a
    marker is any row is_marker counts; one not of the form, or any but the first of the form,
    is named by its own seq. The other rows' versions are held to the marker of the form; with no marker at all, to
    the first row's version ("one version throughout"); with markers none of which is of the form, to no rule (the
    chain has a marker, so it is not "a chain without a marker", and no n says which rows are version 1).
    """
    bad: set[int] = set()
    v1_through: int | None = None
    markers = [row for row in rows if is_marker(row)]
    for row in markers:
        n = marker_v1_through(row)
        if n is None or v1_through is not None:
            bad.add(row.seq)  # "a marker not of that form", or "a second marker"
        else:
            v1_through = n
    if v1_through is not None or not markers:
        first_version = rows[0].seal_version if rows else None
        for row in rows:
            allowed = first_version if v1_through is None else 1 if row.seq <= v1_through else 2
            if row.seal_version != allowed:
                bad.add(row.seq)
                break  # the rows are in seq order: the lowest is found
    return min(bad) if bad else None
