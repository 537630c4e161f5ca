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
import hashlib
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
    event_checksum,
    node_hash,
)

__all__ = [
    "DEFAULT_CHUNK_BITS",
    "ROW_JSON",
    "ChainHead",
    "ChunkResult",
    "ChunkTask",
    "MerkleStitcher",
    "SealedRowError",
    "chunk_tasks",
    "quick_checksum",
    "read_head",
    "reference_checksum",
    "reference_walk",
    "row_matches",
    "scan_chunk",
]

DEFAULT_CHUNK_BITS: Final = 16
"""Chunks of 65,536 seqs: small enough to spread 1M events over the workers, large enough that the
per-query cost (a COPY, a process hop) is noise. Chunk starts are multiples of the chunk size, so a
chunk is one perfect subtree of the Merkle tree."""

# One JSON array per row, in this order. Hashes as hex, the timestamp as the sealed text
# (RFC 3339 UTC, six fractional digits, Z), the address as host(). JSON rather than COPY's binary
# format because orjson parses a block of thousands of rows in one C call (about 1.8 µs a row), where
# psycopg's per-field binary loaders cost several times that in Python; and JSON, unlike COPY's text
# format, tells a null from every string. A timestamp outside years 1..9999 is sent as text that cannot
# be sealed: to_char prints 1 BC as "0001", which would let an era change pass unseen.
ROW_JSON: Final = sql.SQL(
    """pg_catalog.json_build_array(e.seq, pg_catalog.encode(e.checksum, 'hex'),
  pg_catalog.encode(e.prev_hash, 'hex'), pg_catalog.encode(e.chain_hash, 'hex'), e.redacted_at is not null,
  e.event_id, case when e."timestamp" >= '0001-01-01T00:00:00Z' and e."timestamp" < '10000-01-01T00:00:00Z'
    then pg_catalog.to_char(e."timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    else 'out of range: ' || e."timestamp"::text end,
  e.event_type, e.user_id, e.user_email, e.session_id, pg_catalog.host(e.ip_address), e.user_agent,
  e.resource_path, e.resource_id, e.action, e.status, e.details, e.security_level, e.compliance_tags,
  e.parent_event_id, e.metadata)"""
)
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
        # Read-only on purpose: the verifier must never be the one that changes what it checks.
        conn.execute("set default_transaction_read_only = on")
        _connections[url] = conn
    return conn


def close_connections() -> None:
    """Close this process's connections (the CLI calls it at the end; workers exit anyway)."""
    for conn in _connections.values():
        conn.close()
    _connections.clear()


def read_rows(url: str, first_seq: int, last_seq: int) -> Iterator[Row]:
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
    """Rows from complete COPY lines (each ends with a newline)."""
    if b"\\" in block:
        block = block.replace(_COPY_BACKSLASH, b"\\")
    try:
        rows: list[Row] = orjson.loads(b"[" + block[:-1].replace(b"\n", b",") + b"]")
    except orjson.JSONDecodeError as exc:
        raise SealedRowError(f"audit.audit_events returned a row that is not JSON: {exc}") from exc
    return rows


@dataclasses.dataclass(frozen=True, slots=True)
class ChainHead:
    """The chain head row: the chain id, the last seq handed out and its chain_hash."""

    chain_id: str
    seq: int
    chain_hash: bytes


def read_head(url: str) -> ChainHead:
    """Read ``audit.chain_head`` (read it before the rows: later events are simply not verified)."""
    try:
        row = _connection(url).execute("select chain_id::text, seq, chain_hash from audit.chain_head").fetchone()
    except psycopg.Error as exc:
        raise SealedRowError(f"cannot read audit.chain_head: {exc}") from exc
    if row is None:
        raise SealedRowError("audit.chain_head is empty: this is not an audit trail database")
    return ChainHead(chain_id=str(row[0]), seq=int(row[1]), chain_hash=bytes(row[2]))


# ---------------------------------------------------------------------------------------------
# One event's checksum
# ---------------------------------------------------------------------------------------------


def _as_sealed_dict(row: Row) -> dict[str, Any]:
    return dict(zip(SEALED_FIELDS, row[5:], strict=True))


def reference_checksum(row: Row) -> bytes | None:
    """The checksum of a row by the reference code: ``event_checksum`` (sealed_object, canonical_bytes).

    ``None`` when the row cannot be sealed at all (a value that cannot be sealed cannot be what was).
    """
    try:
        return event_checksum(_as_sealed_dict(row))
    except ValueError:
        return None


_ip_cache: dict[str, str] = {}


def _ip_text(address: str) -> str:
    # canonical_ip_address keeps an LRU of 4,096 addresses; a verifier sees every address of the
    # history, so it keeps its own (bounded) map in front of it.
    text = _ip_cache.get(address)
    if text is None:
        text = canonical_ip_address(address)
        if text is None:  # pragma: no cover - a str never gives None
            raise ValueError("no address")
        if len(_ip_cache) >= 1_000_000:
            _ip_cache.clear()
        _ip_cache[address] = text
    return text


def quick_checksum(row: Row) -> bytes | None:
    """SHA-256 of plain ``orjson`` bytes (sorted keys) of the row's sealed object; a shortcut, not the spec.

    Why it is safe to accept a row on this alone: if these bytes hash to the stored checksum, they *are*
    the RFC 8785 bytes that were sealed (short of a SHA-256 collision), and since orjson's output parses
    back to exactly the value it printed, the row holds exactly the sealed value. Where orjson's bytes
    differ from RFC 8785 (a float like ``1.0`` or ``1e21``, an integer beyond 2**53, a key above
    U+FFFF), the hash simply does not match and ``row_matches`` asks ``reference_checksum``: the
    shortcut can cause a second look, never a false pass. It saves the number-and-key walk of
    ``canonical_bytes`` (about 2 µs an event), which is needed only to get such values right.

    The row's shape is what ``sealed_object`` would produce from it: text columns are ``str`` or
    ``None`` and sealed as given, the timestamp is already the sealed text, ``details``/``metadata``
    are objects; only the address (``canonical_ip_address``) and the tags (sorted, unique) are
    normalised here, as ``sealed_object`` does.
    """
    tags = row[19]
    address = row[11]
    try:
        sealed = {
            "event_id": row[5],
            "timestamp": row[6],
            "event_type": row[7],
            "user_id": row[8],
            "user_email": row[9],
            "session_id": row[10],
            "ip_address": None if address is None else (_ip_cache.get(address) or _ip_text(address)),
            "user_agent": row[12],
            "resource_path": row[13],
            "resource_id": row[14],
            "action": row[15],
            "status": row[16],
            "details": row[17],
            "security_level": row[18],
            "compliance_tags": sorted(set(tags)) if tags else [],
            "parent_event_id": row[20],
            "metadata": row[21],
        }
        return hashlib.sha256(orjson.dumps(sealed, option=orjson.OPT_SORT_KEYS)).digest()
    except (ValueError, TypeError):  # orjson.JSONEncodeError is a TypeError; SealError a ValueError
        return None


def row_matches(row: Row, checksum: bytes) -> bool:
    """Does the row's sealed content hash to ``checksum``? The verdict of ``reference_checksum``."""
    return quick_checksum(row) == checksum or reference_checksum(row) == checksum


def row_as_event(row: Row) -> dict[str, Any]:
    """A COPY row as the dict ``ChainVerifier`` reads (hashes as raw bytes)."""
    event = _as_sealed_dict(row)
    event.update(
        seq=row[0],
        checksum=row[1],  # hex, as the SQL API returns them
        prev_hash=row[2],
        chain_hash=row[3],
        redacted_at="redacted" if row[4] else None,
    )
    return event


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


@dataclasses.dataclass(slots=True)
class ChunkResult:
    """What the fast loop learned about one chunk.

    ``intact`` means: exactly the seqs first..last, each linked to the one before, each chain_hash and
    each (unredacted) checksum right. Then ``first_prev_hash`` is what the chunk's first row links to
    (the caller compares it with the previous chunk's ``last_chain_hash``), ``stack`` the chunk's
    Merkle subtree roots (one root when the chunk is full), and ``cut_stacks``/``cut_chain_hashes``
    the same at every cut inside the chunk.
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


def chunk_tasks(url: str, head_seq: int, cuts: Sequence[int], chunk_bits: int = DEFAULT_CHUNK_BITS) -> list[ChunkTask]:
    """Split seqs 1..head_seq into chunks aligned on multiples of ``2**chunk_bits``."""
    size = 1 << chunk_bits
    tasks = []
    for first in range(1, head_seq + 1, size):
        last = min(head_seq, first + size - 1)
        inside = tuple(cut for cut in cuts if first <= cut <= last)
        tasks.append(ChunkTask(url, first, last, inside, merkle=any(cut >= first for cut in cuts)))
    return tasks


def scan_chunk(task: ChunkTask) -> ChunkResult:
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
    for row in read_rows(task.url, task.first_seq, task.last_seq):
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
        if row[4]:
            redacted += 1
        elif quick_checksum(row) != checksum and reference_checksum(row) != checksum:
            return result
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
    result.intact = True
    result.rows = size
    result.redacted = redacted
    result.last_chain_hash = previous or None
    result.stack = stack
    return result


def reference_walk(
    url: str, first_seq: int, expected_prev_hash: bytes, stop_seq: int, head: ChainHead | None
) -> VerificationResult:
    """Walk seqs ``first_seq..stop_seq`` with the reference verifier; with ``head``, also check the head."""
    verifier = ChainVerifier(expected_prev_hash=expected_prev_hash, expected_first_seq=first_seq)
    for row in read_rows(url, first_seq, stop_seq):
        verifier.feed(row_as_event(row))
        if verifier.failed:
            break
    if head is not None:
        return verifier.finish(expected_head_seq=head.seq, expected_head_hash=head.chain_hash)
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
