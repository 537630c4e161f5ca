"""`audit-trail verify`: prove the audit trail from the database and the signed digests, offline.

What is checked (docs/integrity.md, "Verifying"):

* every event: its checksum recomputed from the stored columns, its link to the previous event, its
  chain hash, and that the rows reach the chain head (``audit_trail.verify_scan``);
* every digest: canonical body, signature with the public key, and the digest chain: digest_seq gap-free
  from 1, each naming its predecessor's key, signature and tree size (``audit_trail.verify_digests``);
* the two against each other: each digest's ``root_hash`` is the RFC 6962 Merkle root of the stored
  checksums 1..tree_size and its ``chain_hash`` the stored chain hash at tree_size. Since every root is
  recomputed from one stream of checksums, successive digests are consistent (the older tree is a prefix
  of the newer one) exactly when both roots match.

The database alone cannot tell a consistent rewrite from the truth (whoever can disable the triggers can
recompute every checksum and hash); the signed digests can, up to the newest digest. Events after it are
checked as a chain only, and the report says how many there are.

One failure is reported, the first in this order: a broken digest chain (the evidence itself), the first
bad event, the first digest whose root or chain hash the events do not match, digests that cover events
the database no longer has.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from audit_common.integrity import EMPTY_ROOT, GENESIS_HASH, FailureKind
from audit_common.integrity.digest import Digest
from audit_common.integrity.redaction import RedactionLedger
from audit_common.integrity.verify import ledger_failure
from audit_trail.verify_digests import (
    DigestCheck,
    DigestSource,
    Freshness,
    FreshnessResult,
    KeyTrust,
    UsageError,
    check_digests,
    default_trust,
    no_trust_anchor_message,
)
from audit_trail.verify_scan import (
    DEFAULT_CHUNK_BITS,
    ChainHead,
    ChunkResult,
    ChunkTask,
    MerkleStitcher,
    SealedRowError,
    Snapshot,
    chunk_tasks,
    close_connections,
    open_snapshot,
    reference_walk,
    scan_chunk,
)

__all__ = ["Failure", "Report", "SealedRowError", "UsageError", "choose_chain", "default_workers", "verify_offline"]

Progress = Callable[[int, int], None]

# Below this many events a process pool costs more (about a second to start) than it saves.
_POOL_MIN_EVENTS: Final = 200_000


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """The first thing that is wrong: its kind, the event seq or digest_seq it concerns, and why."""

    kind: str
    seq: int | None
    digest_seq: int | None
    message: str


@dataclasses.dataclass(slots=True)
class Report:
    """Everything `audit-trail verify` prints, as data."""

    chain_id: str
    head_seq: int
    events_checked: int = 0
    events_total: int = 0
    redacted: int = 0
    digests_checked: bool = False
    digest_source: str | None = None
    digest_chain_id: str | None = None
    digests_valid: int = 0
    digests_total: int = 0
    anchored_seq: int = 0
    newest_digest: dict[str, Any] | None = None
    signing_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    signing_key_sources: dict[str, str] = dataclasses.field(default_factory=dict)
    freshness: FreshnessResult | None = None
    failure: Failure | None = None
    elapsed_seconds: float = 0.0
    workers: int = 1

    @property
    def valid(self) -> bool:
        """True when nothing failed."""
        return self.failure is None

    @property
    def events_per_second(self) -> float:
        """Events checked per second of the whole run."""
        return self.events_checked / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def summary(self) -> str:
        """``24/24 digests valid, 1200000/1200000 events valid, 312 redacted``."""
        events = f"{self.events_checked}/{self.events_total} events valid, {self.redacted} redacted"
        if not self.digests_checked:
            return events
        return f"{self.digests_valid}/{self.digests_total} digests valid, {events}"

    def lines(self) -> list[str]:
        """The summary and the facts a person needs to trust it (or to act on a failure)."""
        lines = [self.summary()]
        lines.append(f"chain {self.chain_id}: head at seq {self.head_seq}")
        if not self.digests_checked:
            lines.append(
                "digests not checked: without --digest-bucket or --digests-dir this proves the chain is intact, "
                "not that it is the chain that was signed"
            )
        elif self.newest_digest is not None:
            lines.append(
                f"digests from {self.digest_source}: newest valid is digest {self.newest_digest['digest_seq']}"
                f" (tree size {self.newest_digest['tree_size']}, period ended {self.newest_digest['period_end']})"
            )
            lines.append(self._coverage_line())
        else:
            lines.append(f"digests from {self.digest_source}: none of {self.digests_total} proven")
        for key_id, fingerprint in sorted(self.signing_keys.items()):
            source = self.signing_key_sources.get(key_id)
            lines.append(f"signing key {key_id}: public key SHA-256 {fingerprint}" + (f" ({source})" if source else ""))
        lines.append(
            f"checked in {self.elapsed_seconds:.1f} s ({self.events_per_second:,.0f} events/s,"
            f" {self.workers} worker{'s' if self.workers != 1 else ''})"
        )
        if self.failure is not None:
            where = f"seq {self.failure.seq}" if self.failure.seq is not None else f"digest {self.failure.digest_seq}"
            lines.append(f"FAILED at {where}: {self.failure.kind}: {self.failure.message}")
        return lines

    @property
    def unanchored(self) -> int:
        """Events after the newest proven digest's tree size: checked as a chain only, proven by no digest."""
        return max(self.head_seq - self.anchored_seq, 0)

    def _coverage_line(self) -> str:
        """How much of the chain no digest covers yet, and how old the newest digest is."""
        unanchored = self.unanchored
        first = self.anchored_seq + 1
        events = f"{unanchored} event(s) (seq {first}..{self.head_seq})" if unanchored else "0 events"
        line = f"not covered by any digest yet: {events}"
        fresh = self.freshness
        if fresh is None:
            return line
        reference = f"{fresh.reference.isoformat(timespec='seconds')} ({fresh.reference_source})"
        limit = _duration(fresh.policy.max_age_seconds)
        if fresh.age_seconds < 0:
            age = f"the newest digest's period ends {_duration(-fresh.age_seconds)} after {reference}"
        else:
            age = f"the newest digest's period ended {_duration(fresh.age_seconds)} before {reference}"
        verdict = "STALE" if fresh.stale else "fresh"
        return f"{line}; {age}: {verdict} (limit {limit}: anchor interval + grace)"

    def as_dict(self) -> dict[str, Any]:
        """The `--json` document (keys `valid`, `reason`, `first_invalid_seq` as GET /integrity/verify has them)."""
        failure = self.failure
        return {
            "valid": self.valid,
            "reason": None if failure is None else failure.kind,
            "first_invalid_seq": None if failure is None else failure.seq,
            "digest_seq": None if failure is None else failure.digest_seq,
            "message": None if failure is None else failure.message,
            "summary": self.summary(),
            "chain_id": self.chain_id,
            "head_seq": self.head_seq,
            "events": {
                "checked": self.events_checked,
                "total": self.events_total,
                "redacted": self.redacted,
                "anchored": self.anchored_seq,
                "unanchored": self.unanchored,
            },
            "digests": {
                "checked": self.digests_checked,
                "source": self.digest_source,
                "chain_id": self.digest_chain_id,
                "valid": self.digests_valid,
                "total": self.digests_total,
                "newest": self.newest_digest,
                "signing_keys": self.signing_keys,
                "signing_key_sources": self.signing_key_sources,
                "freshness": None if self.freshness is None else self.freshness.as_dict(),
            },
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "events_per_second": round(self.events_per_second),
            "workers": self.workers,
        }


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``, ``3 d 4 h``: an age a person reads at a glance."""
    total = round(seconds)
    if total < 120:
        return f"{total} s"
    minutes = total // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def default_workers(database_url: str | None = None) -> int:
    """Worker processes for a database: one per CPU (at most 8), or one per two CPUs when PostgreSQL runs on
    this machine, where each worker's COPY keeps a server process about as busy as the worker itself
    (measured on 2 cores: one worker 167k events/s, two 146k)."""
    cpus = os.cpu_count() or 1
    if database_url is not None and _is_local(database_url):
        return max(1, cpus // 2)
    return max(1, min(cpus, 8))


def _is_local(database_url: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    try:
        host = str(conninfo_to_dict(database_url).get("host") or "")
    except psycopg.ProgrammingError:
        return False
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _EventOutcome:
    checked: int = 0
    redacted: int = 0
    failure: Failure | None = None
    # tree size -> (Merkle root, stored chain hash) at that size, for every cut the events reached
    cuts: dict[int, tuple[bytes, bytes]] = dataclasses.field(default_factory=dict)


def _pool(workers: int) -> ProcessPoolExecutor:
    # fork when this process runs no other thread (the CLI): workers start at once and import nothing.
    # Otherwise forkserver (the caller may run threads: boto3, a moto server in tests, and forking a
    # threaded process can deadlock the child), whose server preloads the scanner once.
    methods = multiprocessing.get_all_start_methods()
    context: multiprocessing.context.BaseContext
    if "fork" in methods and threading.active_count() == 1:
        context = multiprocessing.get_context("fork")
    elif "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["audit_trail.verify_scan"])
    else:
        context = multiprocessing.get_context("spawn")
    # A forked child must not inherit this process's connections (it would talk on the same socket).
    close_connections()
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _results(tasks: Sequence[ChunkTask], workers: int) -> Iterator[ChunkResult]:
    """Chunk results in seq order; inline with one worker, else from a process pool (stopped early on exit)."""
    if workers <= 1 or len(tasks) < 2:
        for task in tasks:
            yield scan_chunk(task)
        return
    pool = _pool(workers)
    futures: list[Future[ChunkResult]] = []
    try:
        futures = [pool.submit(scan_chunk, task) for task in tasks]
        for future in futures:
            yield future.result()
    finally:
        for future in futures:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _verify_events(
    url: str,
    head: ChainHead,
    cuts: Sequence[int],
    *,
    workers: int,
    chunk_bits: int,
    progress: Progress | None,
    snapshot: str | None = None,
) -> _EventOutcome:
    """Verify every stored row: seqs 1 up to the head or the last row, whichever is higher.

    The head is as writable as the rows, so rows are not read "up to the head": rows past it, a head
    ahead of the rows, and a head whose hash is not the last row's are each a failure of their own.
    """
    outcome = _EventOutcome()
    if 0 in cuts:
        outcome.cuts[0] = (EMPTY_ROOT, GENESIS_HASH)
    if head.min_seq is not None and head.min_seq < 1:
        outcome.failure = Failure(
            FailureKind.INSERTED.value,
            head.min_seq,
            None,
            f"a row with seq {head.min_seq} is stored: seqs start at 1, so it was inserted outside the chain",
        )
        return outcome
    last_seq = head.last_seq
    tasks = chunk_tasks(url, last_seq, [cut for cut in cuts if cut > 0], chunk_bits, snapshot)
    stitcher = MerkleStitcher(chunk_bits)
    previous = GENESIS_HASH
    chunk_size = 1 << chunk_bits
    ledger = RedactionLedger()
    for result in _results(tasks, workers):
        if not result.intact or result.first_prev_hash != previous:
            if result.first_seq > head.seq:
                outcome.failure = _past_head(head)
                return outcome
            stop = min(last_seq, result.last_seq + 2)
            walk = reference_walk(url, result.first_seq, previous, stop, head, snapshot)
            outcome.checked += walk.checked
            outcome.redacted += walk.redacted
            if walk.valid:
                if stop > head.seq:
                    # The rows up to the head are intact; what the fast loop doubted lies past it.
                    outcome.failure = _past_head(head)
                    return outcome
                raise RuntimeError(
                    f"internal error: the fast check doubted seqs {result.first_seq}..{result.last_seq}"
                    " but the reference verifier found nothing wrong; please report this"
                )
            if walk.first_invalid_seq is not None and walk.first_invalid_seq > head.seq:
                outcome.failure = _past_head(head)
                return outcome
            outcome.failure = Failure(str(walk.reason), walk.first_invalid_seq, None, str(walk.message))
            return outcome
        for cut, local_stack in result.cut_stacks.items():
            root = stitcher.root_with(cut - stitcher.size, local_stack)
            outcome.cuts[cut] = (root, result.cut_chain_hashes[cut])
        if result.last_seq - result.first_seq + 1 == chunk_size and result.stack:
            stitcher.add_chunk(result.stack[0])
        previous = result.last_chain_hash or previous
        outcome.checked += result.rows
        outcome.redacted += result.redacted
        ledger.merge([result.ledger])
        if progress is not None:
            progress(result.last_seq, last_seq)
    if last_seq > head.seq:
        outcome.failure = _past_head(head)
        return outcome
    if previous != head.chain_hash:
        outcome.failure = Failure(
            FailureKind.TRUNCATED.value,
            head.seq,
            None,
            f"the chain head records chain_hash {head.chain_hash.hex()[:16]}... for seq {head.seq}, but the rows end"
            f" with {previous.hex()[:16]}...: the chain was cut and rebuilt",
        )
        return outcome
    found = ledger_failure(ledger)
    if found is not None:
        seq, kind, message = found
        outcome.failure = Failure(kind.value, seq, None, message)
    return outcome


def _stale(report: Report, fresh: FreshnessResult) -> Failure:
    """The newest digest is older than the anchor interval plus the grace: the digests after it are missing."""
    return Failure(
        FailureKind.DIGESTS_STALE.value,
        None,
        fresh.newest_digest_seq,
        f"the newest digest, {fresh.newest_digest_seq}, covers seq 1..{report.anchored_seq} and its period ended at"
        f" {fresh.newest_period_end}, {_duration(fresh.age_seconds)} before"
        f" {fresh.reference.isoformat(timespec='seconds')} ({fresh.reference_source}): more than the anchor"
        f" interval plus the grace ({_duration(fresh.policy.max_age_seconds)}). Newer digests are missing (deleted,"
        f" or the anchor stopped), so the {report.unanchored} event(s) after seq {report.anchored_seq} are proven"
        " by nothing",
    )


def _past_head(head: ChainHead) -> Failure:
    return Failure(
        FailureKind.ROWS_PAST_HEAD.value,
        head.seq + 1,
        None,
        f"rows are stored up to seq {head.max_seq} but the chain head says seq {head.seq}: seq {head.seq + 1} and"
        " later are past the head (forged after it, or the head was rolled back over them)",
    )


# ---------------------------------------------------------------------------------------------
# Digests against events
# ---------------------------------------------------------------------------------------------


def _recorded_digests(url: str, chain_id: str) -> tuple[dict[int, str], int | None]:
    """The signatures and count the database's ``digests`` table records (only used to name failures)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "select digest_seq, signature from audit.digests where chain_id = %s order by digest_seq", (chain_id,)
            ).fetchall()
    except psycopg.Error:
        return {}, None  # no anchors table (yet), or no right to read it: the digests stand on their own
    return {int(seq): str(signature) for seq, signature in rows if signature is not None}, len(rows)


def choose_chain(source: DigestSource, chain_id: str | None) -> str:
    """The chain to verify: ``chain_id``, else the only chain the source holds (UsageError otherwise)."""
    chains = source.chain_ids()
    if chain_id is not None:
        if chain_id not in chains:
            raise UsageError(f"no digests of chain {chain_id!r} in {source.description} (found: {chains or 'none'})")
        return chain_id
    if not chains:
        raise UsageError(f"no digests in {source.description}")
    if len(chains) > 1:
        raise UsageError(f"{source.description} holds several chains ({', '.join(chains)}): pass --chain-id")
    return chains[0]


def _check_evidence(
    database_url: str, digests: DigestSource, chain_id: str | None, trust: KeyTrust | None
) -> DigestCheck:
    """The digests' own checks (8.4 steps 1-2), against a pinned key: refused when nothing is pinned."""
    trust = default_trust(digests) if trust is None else trust
    if not trust.anchored:
        raise UsageError(no_trust_anchor_message())
    digest_chain = choose_chain(digests, chain_id)
    recorded, recorded_count = _recorded_digests(database_url, digest_chain)
    return check_digests(
        digests, digest_chain, trust=trust, recorded_signatures=recorded, recorded_count=recorded_count
    )


def _describe_digests(report: Report, digests: DigestSource, check: DigestCheck) -> None:
    report.digests_checked = True
    report.digest_source = digests.description
    report.digest_chain_id = check.chain_id
    report.digests_total = check.total
    report.signing_keys = dict(check.fingerprints)
    report.signing_key_sources = dict(check.key_sources)


def _compare(digests: Sequence[Digest], events: _EventOutcome, head: ChainHead) -> tuple[int, Failure | None]:
    """How many digests the events prove (in order), and the first mismatch, if any."""
    proven = 0
    for digest in digests:
        if digest.tree_size > head.seq:
            if (head.max_seq or 0) >= digest.tree_size:
                return proven, Failure(
                    FailureKind.HEAD_ROLLED_BACK.value,
                    head.seq + 1,
                    digest.digest_seq,
                    f"digest {digest.digest_seq} signed the chain at seq {digest.tree_size}, but the chain head"
                    f" was set back to seq {head.seq} (rows up to seq {head.max_seq} are still stored)",
                )
            return proven, Failure(
                FailureKind.MISSING.value,
                head.seq + 1,
                None,
                f"digest {digest.digest_seq} covers seq 1..{digest.tree_size} but the chain ends at seq"
                f" {head.seq}: events {head.seq + 1}..{digest.tree_size} were removed",
            )
        cut = events.cuts.get(digest.tree_size)
        if cut is None:
            return proven, None  # the events broke before this tree size: the event failure says why
        root, chain_hash = cut
        if root.hex() != digest.root_hash or chain_hash.hex() != digest.chain_hash:
            what = "Merkle root" if root.hex() != digest.root_hash else "chain hash"
            return proven, Failure(
                FailureKind.ROOT_MISMATCH.value,
                None,
                digest.digest_seq,
                f"digest {digest.digest_seq} signed the {what} of seq 1..{digest.tree_size} as "
                f"{(digest.root_hash if what == 'Merkle root' else digest.chain_hash)[:16]}..., the stored events"
                f" give {(root if what == 'Merkle root' else chain_hash).hex()[:16]}...: events"
                f" {digest.previous_tree_size + 1}..{digest.tree_size} or earlier were rewritten"
                " (every checksum and link recomputed)",
            )
        proven += 1
    return proven, None


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------


def verify_offline(
    database_url: str,
    digests: DigestSource | None = None,
    *,
    chain_id: str | None = None,
    workers: int | None = None,
    chunk_bits: int = DEFAULT_CHUNK_BITS,
    progress: Progress | None = None,
    trust: KeyTrust | None = None,
    freshness: Freshness | None = None,
) -> Report:
    """Verify the events in ``database_url`` and, with ``digests``, prove them against the signed digests.

    ``trust`` is what the digests' signing keys are checked against (default: the configuration,
    ``AUDIT_SIGNING_KEY_FINGERPRINTS``, with KMS look-ups for the bucket); with nothing pinned, digests are
    refused (``UsageError``) rather than believed. ``freshness`` says how old the newest digest may be
    (default: the hourly anchor plus 15 minutes, as of now).

    Raises ``UsageError`` when the digests cannot be read as asked and ``SealedRowError`` when the
    database is not an audit trail database; every finding about the data is in the report.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC)
    snapshot: Snapshot | None = None
    try:
        check: DigestCheck | None = None
        # The digests first, then the head: a digest written meanwhile then still has tree_size <= head.
        if digests is not None:
            check = _check_evidence(database_url, digests, chain_id, trust)
        # The head and every row are read in one snapshot (rows committed meanwhile are not "past the head").
        snapshot = open_snapshot(database_url)
        head = snapshot.head
        report = Report(chain_id=head.chain_id, head_seq=head.seq, events_total=head.last_seq)
        if digests is not None and check is not None:
            _describe_digests(report, digests, check)
        proven = [] if check is None else check.proven
        cuts = sorted({digest.tree_size for digest in proven if digest.tree_size <= head.seq})
        if workers is None:
            workers = default_workers(database_url) if head.seq >= _POOL_MIN_EVENTS else 1
        report.workers = workers
        events = _verify_events(
            database_url,
            head,
            cuts,
            workers=workers,
            chunk_bits=chunk_bits,
            progress=progress,
            snapshot=snapshot.snapshot_id,
        )
        report.events_checked = events.checked
        report.redacted = events.redacted
        valid_digests, mismatch = _compare(proven, events, head)
        report.digests_valid = valid_digests
        if valid_digests:
            newest = proven[valid_digests - 1]
            report.anchored_seq = newest.tree_size
            report.newest_digest = {
                "digest_seq": newest.digest_seq,
                "tree_size": newest.tree_size,
                "created_at": newest.created_at,
                "period_end": newest.period_end,
                "root_hash": newest.root_hash,
            }
            report.freshness = (freshness or Freshness()).evaluate(newest, head.newest_received_at, started_at)
        if check is not None and check.problem is not None:
            problem = check.problem
            report.failure = Failure(problem.kind.value, None, problem.digest_seq, problem.message)
        elif mismatch is not None and (
            mismatch.kind == FailureKind.HEAD_ROLLED_BACK.value
            or (
                mismatch.kind == FailureKind.MISSING.value
                and events.failure is not None
                and events.failure.kind == FailureKind.REDACTION_UNRECORDED.value
            )
        ):
            # The rows past the head, or a redaction whose record went with the removed rows, are symptoms;
            # that a signed size was given up is the finding.
            report.failure = mismatch
        else:
            report.failure = events.failure or mismatch
        if report.failure is None and report.freshness is not None and report.freshness.stale:
            report.failure = _stale(report, report.freshness)
    finally:
        if snapshot is not None:
            snapshot.close()
        close_connections()
    report.elapsed_seconds = time.monotonic() - started
    return report
