"""Appending events to the chain: seal (canonical JSON + SHA-256) and store through the SQL API.

Every function that records an event goes through here: the ingest API for applications, and the
functions that record their own actions (a GDPR export or erasure, a retention run), so the audit
trail also holds the audit of the audit.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import orjson

from audit_common.api import EventResult, IngestResponse
from audit_common.db import Transport
from audit_common.integrity import canonical_bytes
from audit_common.integrity.seal import SEAL_SALT_BYTES, SEAL_VERSION
from audit_common.models import AuditEventIn


def seal_for_storage(event: AuditEventIn, salt: bytes | None = None) -> dict[str, Any]:
    """The event's fields sealed with seal version 2, as the SQL API's `ingest_events` takes them.

    The result holds the 17 fields (the table's columns), ``seal_salt`` (16 random bytes unless ``salt`` is
    given: tests pin it), ``payload_commitment`` and ``checksum``, all hashes in hex. Written out here rather
    than through ``seal.seal_v2`` because the model's values are already normalised: on the ingest hot path
    that saves normalising each value again (``tests/unit/test_seal.py`` holds the two together).
    """
    kept, private = event.sealed_parts()
    if salt is None:
        salt = os.urandom(SEAL_SALT_BYTES)
    commitment = hashlib.sha256(salt + canonical_bytes(private)).hexdigest()
    record = kept | private
    kept["seal"] = SEAL_VERSION
    kept["payload_commitment"] = commitment
    record["checksum"] = hashlib.sha256(_kept_bytes(kept)).hexdigest()
    record["seal_salt"] = salt.hex()
    record["payload_commitment"] = commitment
    return record


def _kept_bytes(sealed: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the sealed object v2. It holds only strings, null, a list of strings and the integer
    2 under fixed ASCII keys, for which orjson's sorted output is RFC 8785's (tests/unit/test_canonical.py
    proves the string escaping identical for every code point); that skips canonical_bytes' walk for
    numbers. Anything orjson refuses goes to canonical_bytes, whose verdict is the reference one."""
    try:
        return orjson.dumps(sealed, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return canonical_bytes(sealed)


def store_events(transport: Transport, events: Sequence[AuditEventIn]) -> IngestResponse:
    """Store validated events in one SQL API call (one transaction); stored event_ids answer duplicate.

    One call per request was measured faster than several pipelined or threaded chunks: the
    per-call cost in PostgreSQL outweighed what overlapping Python with the inserts saved.
    """
    # One read of the system's random source for the whole batch, not one per event.
    salts = os.urandom(SEAL_SALT_BYTES * len(events))
    sealed = [
        seal_for_storage(event, salts[index * SEAL_SALT_BYTES : (index + 1) * SEAL_SALT_BYTES])
        for index, event in enumerate(events)
    ]
    outcomes = transport.call("ingest_events", {"p_events": sealed})
    results = [EventResult.model_validate(outcome) for outcome in outcomes]
    created = sum(1 for result in results if result.status == "created")
    return IngestResponse(results=results, created=created, duplicates=len(results) - created)
