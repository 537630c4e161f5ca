"""The retention run: archive what is past retention, verify the archive, then redact, in batches.

Order of operations per batch: read the events past retention (in seq order, legal holds left out)
-> write them to Object-Locked S3 and read the object back -> record the batch -> redact it in short
transactions (so ingestion never waits long on a lock). The run is resumable: a run cut off by the
Lambda timeout leaves its state in `retention_runs`/`retention_batches`, and the next invocation
first redacts batches already archived (never archiving them twice), then carries on after the last
seq it scanned. A run over a range already done finds nothing to do.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit_common.db import Transport
from audit_common.observability import logger
from retention.archive import ARCHIVE_KEY_BYTES, Archiver, seal_private


@dataclass(frozen=True)
class RunLimits:
    """How much one invocation may do."""

    batch_events: int = 2000
    redact_events: int = 500
    deadline: float = float("inf")  # time.monotonic() value after which no new batch is started


@dataclass
class RunResult:
    """What the run has done so far (cumulative across resumed invocations)."""

    run_id: str
    status: str
    archived: int
    redacted: int
    held_back: int
    resumed: bool
    batches_this_invocation: int


def run_retention(transport: Transport, archiver: Archiver, *, triggered_by: str, limits: RunLimits) -> RunResult:
    """Run (or resume) retention until everything due is archived and redacted, or the deadline passes."""
    run = transport.call("retention_start", {"p_triggered_by": triggered_by})
    run_id: str = run["run_id"]
    as_of = datetime.fromisoformat(run["as_of"])
    if run["resumed"]:
        logger.info("resuming retention run", extra={"run_id": run_id, "pending": run["pending_batches"]})
    for pending in run["pending_batches"]:
        _redact(transport, run_id, pending["batch_no"], limits.redact_events)
    batches = 0
    after: int = run["last_seq"]
    finished = True
    while True:
        if time.monotonic() > limits.deadline:
            finished = False
            break
        found = transport.call(
            "retention_candidates", {"p_run_id": run_id, "p_after_seq": after, "p_limit": limits.batch_events}
        )
        events: list[dict[str, Any]] = found["events"]
        scanned_to = found["scanned_to"]
        if scanned_to is None:
            break
        if not events:
            transport.call(
                "retention_advance", {"p_run_id": run_id, "p_scanned_to": scanned_to, "p_held_back": found["held_back"]}
            )
            after = scanned_to
            continue
        batches += 1
        # raises before anything is recorded (or redacted) when the upload does not verify
        archived = archiver.put_batch(run_id, as_of, _sealed_lines(transport, events))
        recorded = transport.call(
            "retention_record_batch",
            {
                "p_run_id": run_id,
                "p_batch": {
                    "seqs": archived.seqs,
                    "object_key": archived.object_key,
                    "manifest_key": archived.manifest_key,
                    "sha256": archived.sha256,
                    "size_bytes": archived.size_bytes,
                    "held_back": found["held_back"],
                    "scanned_to": scanned_to,
                },
            },
        )
        _redact(transport, run_id, recorded["batch_no"], limits.redact_events)
        after = scanned_to
    summary = transport.call("retention_finish", {"p_run_id": run_id}) if finished else _progress(transport, run_id)
    return RunResult(
        run_id=run_id,
        status=summary["status"],
        archived=summary["archived"],
        redacted=summary["redacted"],
        held_back=summary["held_back"],
        resumed=bool(run["resumed"]),
        batches_this_invocation=batches,
    )


def _sealed_lines(transport: Transport, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch as archive lines: each event's private part sealed under its user's archive key."""
    users = {str(event["user_id"]) for event in events}
    # Candidates for users who have no key yet; the database keeps the first key a user gets.
    candidates = {user: os.urandom(ARCHIVE_KEY_BYTES).hex() for user in users}
    keys = transport.call("archive_keys", {"p_candidates": candidates})
    return [seal_private(event, bytes.fromhex(keys[str(event["user_id"])])) for event in events]


def _redact(transport: Transport, run_id: str, batch_no: int, chunk: int) -> None:
    # Short transactions of `chunk` events each: ingestion never waits long behind a redaction.
    while True:
        step = transport.call("retention_redact_batch", {"p_run_id": run_id, "p_batch_no": batch_no, "p_limit": chunk})
        if not step["more_left"]:
            return
        if step["redacted"] == 0:
            raise RuntimeError(f"retention batch {batch_no} of run {run_id} is stuck: nothing redacted, some left")


def _progress(transport: Transport, run_id: str) -> dict[str, Any]:
    state = transport.call("retention_status", {"p_run_id": run_id})
    return dict(state)
