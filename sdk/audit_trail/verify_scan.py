"""The event half of `audit-trail verify`: stream the chain out of PostgreSQL and check every event, fast.

The stored rows are read with ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` in seq order, one chunk
of ``2**chunk_bits`` seqs per query, so nothing holds more than one row at a time and chunks can be
spread over processes. For every row the checksum is recomputed from the stored columns, the link
``chain_hash = SHA-256(prev_hash || checksum)`` and the link to the previous row are checked, and the
stored checksum becomes the next leaf of the RFC 6962 Merkle tree, whose root is needed wherever a
signed digest cut the chain (``cuts``).

Two verifiers, one verdict. The fast loop below only answers "is this chunk intact?" (about 4 µs an
event). The first chunk it doubts is walked again by ``audit_common.integrity.ChainVerifier``, the
reference verifier of docs/integrity.md (the one GET /integrity/verify uses), which names the first
bad seq and the kind of failure. So the fast loop can be fast without having to classify anything,
and a disagreement between the two is reported as an internal error rather than hidden.

Why the query uses only ``pg_catalog`` functions and not ``audit.event_json``: whoever controls the
database could replace a function in the ``audit`` schema to show the verifier the original rows.
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson
import psycopg
from psycopg import pq, sql

from audit_common.integrity import (
    EMPTY_ROOT,
    SEALED_FIELDS,
    ChainVerifier,
    MerkleFrontier,
    VerificationResult,
    canonical_ip_address,
    node_hash,
)
from audit_common.integrity.canonical import inexact_numbers
from audit_common.integrity.redaction import RedactionLedger
from audit_common.integrity.stored import NUMBER_PROBLEM_KEY, ip_address_problem, stored_form_problem
from audit_common.integrity.verify import recompute_checksum, redaction_residue

__all__ = [
    "DEFAULT_CHUNK_BITS",
    "ROW_JSON",
    "ChainHead",
    "ChunkResult",
    "ChunkTask",
    "MerkleStitcher",
    "SealedRowError",
    "Snapshot",
    "chunk_tasks",
    "configure_session",
    "open_snapshot",
    "quick_row_ok",
    "reference_row_ok",
    "reference_walk",
    "row_as_event",
    "row_matches",
    "scan_chunk",
]

DEFAULT_CHUNK_BITS: Final = 16
"""Chunks of 65,536 seqs: small enough to spread 1M events over the workers, large enough that the
per-query cost (a COPY, a process hop) is noise. Chunk starts are multiples of the chunk size, so a
chunk is one perfect subtree of the Merkle tree."""

# One JSON array per row, in this order (the indexes below). Hashes and the salt as hex, the timestamp as
# the sealed text (RFC 3339 UTC, six fractional digits, Z), the address as inet's own output (with "/len"
# when a mask was stored: host() would hide it), JSONB as its text (numbers exactly as stored), the tags as
# a JSON array only when the stored array has that one shape (one dimension, from 1: to_json would print
# '[0:1]={a,b}' and '{a,b}' alike), else as text that is no list. JSON rather
# than COPY's binary format because orjson parses a block of thousands of rows in one C call (about 1.8 µs
# a row), where psycopg's per-field binary loaders cost several times that in Python; and JSON, unlike
# COPY's text format, tells a null from every string. A timestamp outside years 1..9999 is sent as text
# that cannot be sealed: to_char prints 1 BC as "0001", which would let an era change pass unseen.
ROW_JSON: Final = sql.SQL(
    """pg_catalog.json_build_array(e.seq, pg_catalog.encode(e.checksum, 'hex'),
  pg_catalog.encode(e.prev_hash, 'hex'), pg_catalog.encode(e.chain_hash, 'hex'), e.redacted_at is not null,
  e.seal_version, pg_catalog.encode(e.seal_salt, 'hex'), pg_catalog.encode(e.payload_commitment, 'hex'),
  e.redaction_reason,
  e.event_id, case when e."timestamp" >= '0001-01-01T00:00:00Z' and e."timestamp" < '10000-01-01T00:00:00Z'
    then pg_catalog.to_char(e."timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    else 'out of range: ' || e."timestamp"::text end,
  e.event_type, e.user_id, e.user_email, e.session_id, e.ip_address, e.user_agent,
  e.resource_path, e.resource_id, e.action, e.status, e.details, e.security_level,
  case when e.compliance_tags = '{}' or (pg_catalog.array_ndims(e.compliance_tags) = 1
                                         and pg_catalog.array_lower(e.compliance_tags, 1) = 1)
    then pg_catalog.to_json(e.compliance_tags)
    else pg_catalog.to_json('not a one-dimensional array from 1: ' || e.compliance_tags::text) end,
  e.parent_event_id, e.metadata)"""
)
SEQ, CHECKSUM, PREV_HASH, CHAIN_HASH, REDACTED, SEAL_VERSION, SEAL_SALT, COMMITMENT, REDACTION_REASON = range(9)
FIELDS: Final = 9  # the 17 sealed columns follow, in SEALED_FIELDS order
(EVENT_ID, TIMESTAMP, EVENT_TYPE, USER_ID, USER_EMAIL, SESSION_ID, IP_ADDRESS, USER_AGENT, RESOURCE_PATH,
 RESOURCE_ID, ACTION, STATUS, DETAILS, SECURITY_LEVEL, TAGS, PARENT_EVENT_ID,
 METADATA) = range(FIELDS, FIELDS + 17)  # fmt: skip
NUMBER_PROBLEM: Final = FIELDS + 17
"""Appended by the reader to a row whose JSON text holds a number that is not exactly its RFC 8785 form."""

# COPY's text format escapes a backslash as two; JSON text holds no raw control characters, so that
# is the only escape that can occur (anything else fails the JSON parse and is reported).
_COPY_BACKSLASH: Final = b"\\\\"
_BLOCK_ROWS: Final = 64  # measured: larger blocks parse slower (cache, and the collector sees more objects)
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"

Row = list[Any]


class SealedRowError(RuntimeError):
    """The database could not be read as the event table this verifier knows (not evidence of tampering)."""


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

_connections: dict[str, psycopg.Connection[Any]] = {}


def _connection(url: str) -> psycopg.Connection[Any]:
    """One read-only connection per database URL and process (workers reuse theirs across chunks)."""
    conn = _connections.get(url)
    if conn is None or conn.closed:
        conn = psycopg.connect(url, autocommit=True, application_name="audit-trail verify")
        configure_session(conn)
        _connections[url] = conn
    return conn


def configure_session(conn: psycopg.Connection[Any]) -> None:
    """The verifier's session settings (its own connections, and the benchmark's server-side rows)."""
    # Read-only on purpose: the verifier must never be the one that changes what it checks.
    conn.execute("set default_transaction_read_only = on")
    # Stream each chunk in seq order from the primary key. Once retention has redacted rows (an UPDATE
    # moves a tuple), seq order is no longer heap order and the planner prefers a Sort, which sends
    # nothing until it has read the whole chunk: Python and PostgreSQL then take turns instead of working
    # at once (measured: 87-90k events/s with the sort, 153-154k without, one worker). A parallel plan
    # would also hide the read's cost from the worker count the verifier chose.
    conn.execute("set enable_sort = off")
    conn.execute("set max_parallel_workers_per_gather = 0")


def close_connections() -> None:
    """Close this process's connections (the CLI calls it at the end; workers exit anyway)."""
    for conn in _connections.values():
        conn.close()
    _connections.clear()


def read_rows(url: str, first_seq: int, last_seq: int, snapshot: str | None = None) -> Iterator[Row]:
    """Rows with ``first_seq <= seq <= last_seq`` in seq order, streamed a block of rows at a time.

    A row is a list: seq, checksum, prev_hash, chain_hash (hex), redacted (bool), then the sealed
    columns in ``SEALED_FIELDS`` order. The COPY is driven through libpq directly (psycopg's
    ``pgconn``): PostgreSQL sends one message per row, and psycopg's Copy iterator costs about a
    microsecond per message in Python, a tenth of the whole per-event budget.
    """
    query = sql.SQL(
        "copy (select {row} from audit.audit_events e where e.seq between {first} and {last} order by e.seq) to stdout"
    ).format(row=ROW_JSON, first=sql.Literal(first_seq), last=sql.Literal(last_seq))
    conn = _connection(url)
    if snapshot is not None:
        # Every chunk, in whichever process, reads the one snapshot the head was read in: rows committed
        # meanwhile are neither "past the head" nor half a chunk.
        conn.execute("begin isolation level repeatable read read only")
        conn.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot)))
    pgconn = conn.pgconn
    pgconn.send_query(query.as_bytes(conn))
    started = pgconn.get_result()
    if started is None or started.status != pq.ExecStatus.COPY_OUT:
        message = pgconn.get_error_message()
        _discard(url)
        raise SealedRowError(f"cannot read audit.audit_events: {message}")
    finished = False
    try:
        get_copy_data = pgconn.get_copy_data
        lines: list[bytes] = []
        while True:
            size, data = get_copy_data(0)
            if size > 0:
                lines.append(bytes(data))
                if len(lines) >= _BLOCK_ROWS:
                    yield from _parse_block(b"".join(lines))
                    lines = []
            elif size == -1:
                break
            else:
                raise SealedRowError(f"reading audit.audit_events failed: {pgconn.get_error_message()}")
        if lines:
            yield from _parse_block(b"".join(lines))
        final = pgconn.get_result()
        while pgconn.get_result() is not None:
            pass
        if final is None or final.status != pq.ExecStatus.COMMAND_OK:
            raise SealedRowError(f"reading audit.audit_events failed: {pgconn.get_error_message()}")
        if snapshot is not None:
            conn.execute("commit")
        finished = True
    finally:
        if not finished:
            # Stopped early (a failure was found) or broke: the COPY is still streaming on this
            # connection, and closing it is the simplest way to stop it.
            _discard(url)


def _discard(url: str) -> None:
    conn = _connections.pop(url, None)
    if conn is not None:
        conn.close()


def _parse_block(block: bytes) -> list[Row]:
    """Rows from complete COPY lines (each ends with a newline).

    orjson reads numbers as doubles, which would hide a stored decimal that only rounds to the sealed one;
    so the block's text is screened first (a cheap, sound test), and the rare rows it flags are read again
    with exact decimals and marked (``NUMBER_PROBLEM``) when a number is not exactly its RFC 8785 form.
    """
    if b"\\" in block:
        block = block.replace(_COPY_BACKSLASH, b"\\")
    try:
        rows: list[Row] = orjson.loads(b"[" + block[:-1].replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError:
        # orjson refuses numbers beyond the double range (JSONB stores 1e400): read row by row, such rows with
        # exact decimals; the number check below then names the number.
        rows = [_parse_line(line) for line in block[:-1].split(b"\n")]
    if _long_number_in(block):
        for row, line in zip(rows, block[:-1].split(b"\n"), strict=True):
            if _long_number_in(line):
                problem = number_problem(line)
                if problem is not None:
                    row.append(problem)
    return rows


# The screen for numbers that need an exact look, written for PostgreSQL's output rather than any JSON (a
# regular expression, canonical.might_hold_inexact_number, measured 10 µs a row here; this 1 µs). JSONB
# prints every number in plain notation (numeric_out: [-]digits[.digits], never an exponent) after ": ",
# ", " or "[", and a number that is not exactly its RFC 8785 form has 16 or more digits or points (the
# argument is canonical.might_hold_inexact_number's). Mapping digits and "." to "0", the characters a
# number can follow (space, "[", ":", ",", "-") to "!" and everything else to "x", such a number becomes
# "!" and sixteen "0"s: digits inside strings (hex hashes, UUIDs) follow a letter or a quote, which
# became "x". Strings that happen to hold " 1234567890123456" only cost an exact look.
_NUMBER_SHAPE: Final = bytes(
    ord("0") if byte in b"0123456789." else ord("!") if byte in b" [:,-" else ord("x") for byte in range(256)
)
_LONG_NUMBER: Final = b"!" + b"0" * 16


def _long_number_in(text: bytes) -> bool:
    return text.translate(_NUMBER_SHAPE).find(_LONG_NUMBER) >= 0


def _parse_line(line: bytes) -> Row:
    try:
        row: Row = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            row = json.loads(line, parse_float=decimal.Decimal)
        except ValueError as exc:
            raise SealedRowError(f"audit.audit_events returned a row that is not JSON: {exc}") from exc
    return row


def number_problem(line: bytes) -> str | None:
    """The first number of a row's ``details``/``metadata`` that is not exactly its RFC 8785 form, as a sentence."""
    exact = json.loads(line, parse_float=decimal.Decimal)
    for index, name in ((DETAILS, "details"), (METADATA, "metadata")):
        paths = inexact_numbers(exact[index], name)
        if paths:
            return f"{paths[0]} holds a number whose value is not exactly its RFC 8785 form (it only rounds to it)"
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class ChainHead:
    """The chain head row (chain id, last seq handed out, its chain_hash) and what the table really holds.

    ``min_seq``/``max_seq`` are the lowest and highest seq of any stored row (``None`` for an empty table):
    a verifier reads every row, not only up to the head, since the head is as writable as the rows.
    ``newest_received_at`` is the newest row's arrival time (RFC 3339), for the digests' freshness.
    """

    chain_id: str
    seq: int
    chain_hash: bytes
    min_seq: int | None = None
    max_seq: int | None = None
    newest_received_at: str | None = None

    @property
    def last_seq(self) -> int:
        """The highest seq to read: the head or the last stored row, whichever is higher."""
        return max(self.seq, self.max_seq or 0)


# A missing head row (or several, or one with a NULL seq) reads as the empty chain (seq 0, genesis hash):
# deleting it must not turn the rows' verdict into a usage error, so every stored row is then past the head.
_STATE_QUERY: Final = """
select h.chain_id::text, coalesce(h.seq, 0),
       coalesce(h.chain_hash, pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex')), s.min_seq, s.max_seq,
       pg_catalog.to_char(s.newest at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  from (select pg_catalog.min(e.seq) as min_seq, pg_catalog.max(e.seq) as max_seq,
               (select e2.received_at from audit.audit_events e2 order by e2.seq desc limit 1) as newest
          from audit.audit_events e) s
  left join audit.chain_head h on (select pg_catalog.count(*) from audit.chain_head) = 1"""


def _head_from(row: Any) -> ChainHead:
    if row is None:  # pragma: no cover - the aggregate always gives one row
        raise SealedRowError("audit.audit_events cannot be read")
    return ChainHead(
        chain_id=str(row[0]) if row[0] is not None else "(no chain head row)",
        seq=int(row[1]),
        chain_hash=bytes(row[2]),
        min_seq=None if row[3] is None else int(row[3]),
        max_seq=None if row[4] is None else int(row[4]),
        newest_received_at=row[5],
    )


class Snapshot:
    """One consistent view of the database for a whole verification: the head and every chunk read in it.

    Holds a REPEATABLE READ transaction open on a connection of its own and exports its snapshot
    (``pg_export_snapshot``) for the chunk readers to import, whatever process they run in. Without it, an
    event committed between reading the head and reading the rows would look like a row past the head.
    """

    def __init__(self, url: str) -> None:
        """Open the transaction, export the snapshot and read the head in it."""
        try:
            self._conn = psycopg.connect(url, autocommit=True, application_name="audit-trail verify")
            self._conn.execute("begin isolation level repeatable read read only")
            row = self._conn.execute("select pg_catalog.pg_export_snapshot()").fetchone()
            self.snapshot_id: str = str(row[0]) if row else ""
            self.head = _head_from(self._conn.execute(_STATE_QUERY).fetchone())
        except psycopg.Error as exc:
            self.close()
            raise SealedRowError(f"cannot read audit.chain_head: {exc}") from exc

    def close(self) -> None:
        """End the transaction (the snapshot can no longer be imported)."""
        conn = getattr(self, "_conn", None)
        if conn is not None and not conn.closed:
            conn.close()

    def __enter__(self) -> Snapshot:
        """The open snapshot."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close it."""
        self.close()


def open_snapshot(url: str) -> Snapshot:
    """``Snapshot(url)``: use it as a context manager around the whole verification."""
    return Snapshot(url)


# ---------------------------------------------------------------------------------------------
# One event's checksum
# ---------------------------------------------------------------------------------------------


def row_as_event(row: Row) -> dict[str, Any]:
    """A COPY row as the dict ``ChainVerifier`` reads (what the SQL API returns for an event)."""
    event = dict(zip(SEALED_FIELDS, row[FIELDS:NUMBER_PROBLEM], strict=True))
    event.update(
        seq=row[SEQ],
        checksum=row[CHECKSUM],  # hex, as the SQL API returns them
        prev_hash=row[PREV_HASH],
        chain_hash=row[CHAIN_HASH],
        redacted_at="redacted" if row[REDACTED] else None,
        redaction_reason=row[REDACTION_REASON],
        seal_version=row[SEAL_VERSION],
        seal_salt=row[SEAL_SALT],
        payload_commitment=row[COMMITMENT],
    )
    if len(row) > NUMBER_PROBLEM:
        event[NUMBER_PROBLEM_KEY] = row[NUMBER_PROBLEM]
    return event


def reference_row_ok(row: Row, checksum: bytes) -> bool:
    """The verdict of the reference code (``ChainVerifier``'s checks) on one row's content against ``checksum``.

    The stored form is the sealed form (``stored_form_problem``), a redacted row holds nothing it should
    not, and the checksum recomputed under the row's seal version matches. A redacted version-1 row passes
    on its links alone: its checksum covers the erased values.
    """
    event = row_as_event(row)
    if stored_form_problem(event) is not None:
        return False
    if row[REDACTED]:
        if redaction_residue(event) is not None:
            return False
        if (row[SEAL_VERSION] or 1) == 1:
            return True
    recomputed, commitment_held = recompute_checksum(event)
    return commitment_held and recomputed == checksum


_ip_cache: dict[str, str | None] = {}


def _sealed_ip(address: str) -> str | None:
    """The sealed text of a stored address, or None when it is not one sealed address (cached)."""
    if address in _ip_cache:
        return _ip_cache[address]
    text = None if ip_address_problem(address) is not None else canonical_ip_address(address)
    if len(_ip_cache) >= 1_000_000:
        _ip_cache.clear()
    _ip_cache[address] = text
    return text


def quick_row_ok(row: Row) -> bool:
    """The shortcut: does the row hash to its stored checksum with plain ``orjson`` bytes (sorted keys)?

    Why it is safe to accept a row on this alone: if these bytes hash to the stored checksum (and, for seal
    version 2, to the stored payload commitment), they *are* the RFC 8785 bytes that were sealed (short of a
    SHA-256 collision), and since orjson's output parses back to exactly the value it printed, the row holds
    exactly the sealed value. Where orjson's bytes differ from RFC 8785 (a float like ``1.0`` or ``1e21``, a
    key above U+FFFF), the hash simply does not match and the caller asks ``reference_row_ok``: the shortcut
    can cause a second look, never a false pass. It saves the number-and-key walk of ``canonical_bytes``
    (about 2 µs an event), which is needed only to get such values right.

    What the shortcut does not take as given, it refuses (and so leaves to the reference): an address that
    is not one sealed address, tags not sorted and unique, a number the reader flagged, a redacted row that
    still holds a private value or its salt.

    Indexes are written as literals (the names above: tests/unit/test_verify_scan.py holds them together):
    a global lookup per column cost about 0.7 µs a row.
    """
    if len(row) > 26:  # NUMBER_PROBLEM: the reader flagged a number
        return False
    address = row[15]
    if address is not None:
        address = _ip_cache.get(address) or _sealed_ip(address)
        if address is None:
            return False
    version = row[5]
    try:
        tags = row[23]
        # Non-ASCII tags are left to the reference (UTF-16 order); a list holding a null raises TypeError here;
        # a NULL column, or null details or metadata, is not the sealed {} or [] (the reference says why).
        if tags is None or row[21] is None or row[25] is None:
            return False
        if tags and (type(tags) is not list or not "".join(tags).isascii() or sorted(set(tags)) != tags):
            return False
        if version == 1 and (row[6] is not None or row[7] is not None):
            return False
        if row[4]:
            if (
                row[6] is not None
                or row[13] is not None
                or row[14] is not None
                or address is not None
                or row[16] is not None
                or row[21] != {}
                or row[25] != {}
            ):
                return False
            if version == 1:
                return True
            commitment = row[7]
        elif version == 2:
            private = {
                "user_email": row[13],
                "session_id": row[14],
                "ip_address": address,
                "user_agent": row[16],
                "details": row[21],
                "metadata": row[25],
            }
            commitment = _sha256(bytes.fromhex(row[6]) + _dumps(private, option=_SORT_KEYS)).hexdigest()
            if commitment != row[7] or len(row[6]) != 32:
                return False
        else:
            sealed_v1 = {
                "event_id": row[9],
                "timestamp": row[10],
                "event_type": row[11],
                "user_id": row[12],
                "user_email": row[13],
                "session_id": row[14],
                "ip_address": address,
                "user_agent": row[16],
                "resource_path": row[17],
                "resource_id": row[18],
                "action": row[19],
                "status": row[20],
                "details": row[21],
                "security_level": row[22],
                "compliance_tags": tags or [],
                "parent_event_id": row[24],
                "metadata": row[25],
            }
            return bool(_sha256(_dumps(sealed_v1, option=_SORT_KEYS)).hexdigest() == row[1])
        sealed = {
            "action": row[19],
            "compliance_tags": tags or [],
            "event_id": row[9],
            "event_type": row[11],
            "parent_event_id": row[24],
            "payload_commitment": commitment,
            "resource_id": row[18],
            "resource_path": row[17],
            "seal": 2,
            "security_level": row[22],
            "status": row[20],
            "timestamp": row[10],
            "user_id": row[12],
        }
        return bool(_sha256(_dumps(sealed, option=_SORT_KEYS)).hexdigest() == row[1])
    except (ValueError, TypeError):  # orjson.JSONEncodeError is a TypeError; bad hex a ValueError
        return False


def row_matches(row: Row, checksum: bytes) -> bool:
    """Is the row's stored content exactly what was sealed into ``checksum``? The reference's verdict."""
    return (row[CHECKSUM] == checksum.hex() and quick_row_ok(row)) or reference_row_ok(row, checksum)


_sha256 = hashlib.sha256
_dumps = orjson.dumps
_SORT_KEYS: Final = orjson.OPT_SORT_KEYS


# ---------------------------------------------------------------------------------------------
# Chunks
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ChunkTask:
    """Verify seqs ``first_seq..last_seq``; ``cuts`` are the tree sizes in that range that digests name."""

    url: str
    first_seq: int
    last_seq: int
    cuts: tuple[int, ...] = ()
    merkle: bool = True  # False when no digest cut lies in or after this chunk: its leaves are not needed
    snapshot: str | None = None  # the exported snapshot every chunk reads (Snapshot)


@dataclasses.dataclass(slots=True)
class ChunkResult:
    """What the fast loop learned about one chunk.

    ``intact`` means: exactly the seqs first..last, each linked to the one before, each chain_hash and
    each (unredacted) checksum right. Then ``first_prev_hash`` is what the chunk's first row links to
    (the caller compares it with the previous chunk's ``last_chain_hash``), ``stack`` the chunk's
    Merkle subtree roots (one root when the chunk is full), and ``cut_stacks``/``cut_chain_hashes``
    the same at every cut inside the chunk. ``ledger`` holds the chunk's redacted rows and redaction
    records, for the redaction rule the caller applies once every chunk is in.
    """

    first_seq: int
    last_seq: int
    intact: bool
    rows: int = 0
    redacted: int = 0
    first_prev_hash: bytes | None = None
    last_chain_hash: bytes | None = None
    stack: list[bytes] = dataclasses.field(default_factory=list)
    cut_stacks: dict[int, list[bytes]] = dataclasses.field(default_factory=dict)
    cut_chain_hashes: dict[int, bytes] = dataclasses.field(default_factory=dict)
    ledger: RedactionLedger = dataclasses.field(default_factory=RedactionLedger)


def chunk_tasks(
    url: str,
    head_seq: int,
    cuts: Sequence[int],
    chunk_bits: int = DEFAULT_CHUNK_BITS,
    snapshot: str | None = None,
) -> list[ChunkTask]:
    """Split seqs 1..head_seq into chunks aligned on multiples of ``2**chunk_bits``.

    ``head_seq`` is the last seq to read: pass ``ChainHead.last_seq`` so rows past the head are read too.
    """
    size = 1 << chunk_bits
    tasks = []
    for first in range(1, head_seq + 1, size):
        last = min(head_seq, first + size - 1)
        inside = tuple(cut for cut in cuts if first <= cut <= last)
        tasks.append(ChunkTask(url, first, last, inside, merkle=any(cut >= first for cut in cuts), snapshot=snapshot))
    return tasks


def scan_chunk(task: ChunkTask) -> ChunkResult:  # noqa: PLR0915 - one loop, inlined on purpose (see below)
    """The fast loop over one chunk (runs in a worker process or inline).

    Written for speed (about 6 µs an event in all, most of it orjson and SHA-256): locals instead of
    attribute lookups, hex compared as text where no bytes are needed, the common path of
    ``row_matches`` inline. Merkle leaves are hashed only when a digest cut lies in or after the chunk.
    """
    sha256 = hashlib.sha256
    fromhex = bytes.fromhex
    result = ChunkResult(task.first_seq, task.last_seq, intact=False)
    cuts = set(task.cuts)
    merkle = task.merkle
    stack: list[bytes] = []
    size = 0
    expected = task.first_seq
    previous = b""
    previous_hex = ""
    redacted = 0
    ledger = result.ledger
    version: object = None
    for row in read_rows(task.url, task.first_seq, task.last_seq, task.snapshot):
        if row[0] != expected:
            return result
        try:
            checksum, chain_hash = fromhex(row[1]), fromhex(row[3])
            if previous_hex:
                if row[2] != previous_hex:
                    return result
            else:
                previous = fromhex(row[2])
                result.first_prev_hash = previous
        except (TypeError, ValueError):
            return result
        if sha256(previous + checksum).digest() != chain_hash:
            return result
        if not (quick_row_ok(row) or reference_row_ok(row, checksum)):
            return result
        if row[5] != version:  # a new run of one seal version (one in an honest chain)
            version = row[5]
            ledger.version_runs.append((expected, version))
        if row[4]:  # redacted
            redacted += 1
            ledger.redacted[expected] = (row[8], version)
        elif row[11] == "system_event" and (row[19] == "events_redacted" or row[19] == "seal_version_changed"):
            ledger.note(
                expected,
                redacted=False,
                reason=None,
                event_type=row[11],
                action=row[19],
                details=row[21],
                seal_version=version,
            )
        if merkle:
            # Append the leaf; each trailing 1 bit of the old size is a subtree to merge with.
            node = sha256(_LEAF + checksum).digest()
            bits = size
            while bits & 1:
                node = sha256(_NODE + stack.pop() + node).digest()
                bits >>= 1
            stack.append(node)
        size += 1
        if row[0] in cuts:
            result.cut_stacks[expected] = list(stack)
            result.cut_chain_hashes[expected] = chain_hash
        previous, previous_hex = chain_hash, row[3]
        expected += 1
    if expected != task.last_seq + 1:
        return result  # rows missing at the end of the chunk
    ledger.last_seq = task.last_seq
    result.intact = True
    result.rows = size
    result.redacted = redacted
    result.last_chain_hash = previous or None
    result.stack = stack
    return result


def reference_walk(
    url: str,
    first_seq: int,
    expected_prev_hash: bytes,
    stop_seq: int,
    head: ChainHead | None,
    snapshot: str | None = None,
) -> VerificationResult:
    """Walk seqs ``first_seq..stop_seq`` with the reference verifier; with ``head``, also check the head.

    The head check (``ChainVerifier.finish``) is made only when the walk stops at the head's seq; rows past
    the head are the caller's to name.
    """
    verifier = ChainVerifier(expected_prev_hash=expected_prev_hash, expected_first_seq=first_seq)
    for row in read_rows(url, first_seq, stop_seq, snapshot):
        verifier.feed(row_as_event(row))
        if verifier.failed:
            break
    if head is not None and stop_seq <= head.seq:
        # The walk saw only part of the chain: the redaction rule is the caller's, over every chunk.
        return verifier.finish(expected_head_seq=head.seq, expected_head_hash=head.chain_hash, redactions=False)
    return verifier.result()


# ---------------------------------------------------------------------------------------------
# Merkle roots from chunk pieces
# ---------------------------------------------------------------------------------------------


class MerkleStitcher:
    """The Merkle tree of the chain so far, grown a whole chunk at a time.

    Chunks start at multiples of ``2**chunk_bits`` and every subtree a chunk reports is smaller than
    that, so the tree of ``start + m`` leaves is the tree's own subtrees (sizes >= the chunk size)
    followed by the chunk's subtrees at ``m``: exactly the frontier ``MerkleFrontier`` keeps.
    """

    def __init__(self, chunk_bits: int = DEFAULT_CHUNK_BITS) -> None:
        """Start with the empty tree."""
        self._chunk_bits = chunk_bits
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Leaves covered by the whole chunks added so far."""
        return self._size

    def root_with(self, local_size: int, local_stack: Sequence[bytes]) -> bytes:
        """Root of the tree of ``size + local_size`` leaves, the last ones given as a chunk's subtrees."""
        stack = list(self._stack)
        if local_size == 1 << self._chunk_bits:
            # A whole chunk is one subtree of the chunk's size, which may merge with ours (as add_chunk does).
            stack.append(self._merged(stack, local_stack[0]))
        else:
            stack.extend(local_stack)
        total = self._size + local_size
        if total == 0:
            return EMPTY_ROOT
        return MerkleFrontier.from_dict({"size": total, "hashes": [node.hex() for node in stack]}).root()

    def _merged(self, stack: list[bytes], chunk_root: bytes) -> bytes:
        """Merge a whole chunk's root into ``stack`` (popping what it merges with); return the new top."""
        node = chunk_root
        level = self._size >> self._chunk_bits
        while level & 1:
            node = node_hash(stack.pop(), node)
            level >>= 1
        return node

    def add_chunk(self, chunk_root: bytes) -> None:
        """Append a full chunk (a perfect subtree of ``2**chunk_bits`` leaves) given by its root."""
        self._stack.append(self._merged(self._stack, chunk_root))
        self._size += 1 << self._chunk_bits
