"""An outside auditor's check that ``docs/integrity.md`` is sufficient: a verifier written from the spec alone
(``tests/support/spec_verifier.py``) reaches the project's verdict on every case of the tamper matrix.

Both verifiers read the events alone here: ours cannot read digests, and the project's ``verify_offline`` is
called with the database URL only. Where the matrix's verdict needs the signed digests (``root_mismatch``,
``head_rolled_back``, a row missing by a digest's tree size), the events-only verdicts are compared, and pinned
to what sections 6.2-6.4 say the events show.

Beyond the matrix, corners the spec decides only on a close reading are pinned to the spec verifier's reading;
where the project still reads them otherwise, the case is a strict expected failure naming both verdicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from psycopg.types.json import Jsonb

from audit_trail.verify import verify_offline
from tests.integration import test_tamper_matrix as matrix
from tests.support.spec_verifier import VALID, Verdict, checksum_of, commitment_of, sealed_v2, verify_database
from tests.support.trail import Expected, Superuser, library_verify

pytestmark = pytest.mark.xdist_group("tamper-matrix")

# The matrix's module-scoped trail and its per-case copy, reused as they are (pytest registers them here).
built = matrix.built
case_url = matrix.case_url

VECTORS: Final = json.loads((Path(__file__).parents[2] / "docs" / "integrity_vectors.json").read_text("utf-8"))

DIGEST_KINDS: Final = frozenset({"root_mismatch", "head_rolled_back"})

EVENTS_ONLY: Final[dict[str, Verdict]] = {
    # head 22 with rows 23-39 stored: 6.4, rows past the head (digest 3's tree size makes it head_rolled_back).
    "1-head-below-the-newest-digest": ("rows_past_head", 23),
    # Resealed consistently: only digests catch it (6.4, last paragraph; 8.4 step 3).
    "root-mismatch-consistent-rewrite": VALID,
    "root-mismatch-whole-chain": VALID,
    # Rows 31-39 cut and the head set to 30: the cut took records 33 and 39 with it, so the redactions of 8 and 24
    # are unrecorded (6.3, lowest seq 8); that 31 is missing only digest 3 (tree size 33) can say.
    "truncated-consistently": ("redaction_unrecorded", 8),
}
"""The events-only verdict of each matrix case whose verdict needs the digests."""


class Disagreement(Exception):
    """The spec verifier reached the spec's verdict and the project another (a strict xfail expects exactly this)."""


def project_verdict(url: str) -> Verdict:
    """The project's ``verify_offline`` over the events alone (no digest source)."""
    failure = verify_offline(url).failure
    return VALID if failure is None else (failure.kind, failure.seq)


def _project_or_error(url: str) -> object:
    try:
        return project_verdict(url)
    except Exception as exc:  # the finding is that it raised, not what
        return f"raised {type(exc).__name__}: {exc}"


def corner(case: object, verdict: Verdict, *, id: str, theirs: object = None, why: str = "") -> Any:
    """A corner case: the spec verifier's verdict, and, where the project still reads it otherwise, the project's
    verdict and why they differ (a strict expected failure: only that Disagreement counts, and agreement is
    reported as a pass to be unmarked)."""
    if theirs is None:
        return pytest.param(case, verdict, verdict, id=id)
    reason = f"spec verifier {verdict}, verify_offline {theirs}: {why}"
    return pytest.param(
        case, verdict, theirs, id=id, marks=pytest.mark.xfail(strict=True, raises=Disagreement, reason=reason)
    )


def compare(url: str, verdict: Verdict, theirs: object) -> None:
    """The spec verifier names ``verdict`` (else AssertionError); the project names it too, or else exactly the
    verdict recorded for it, ``theirs`` (a Disagreement: the expected failure); any third verdict fails."""
    ours = verify_database(url)
    assert ours == verdict, f"spec verifier {ours}, the spec's reading {verdict}"
    now = _project_or_error(url)
    if now == verdict:
        return
    assert now == theirs, f"verify_offline {now}, recorded {theirs} (spec verifier {ours})"
    raise Disagreement(f"spec verifier {ours}, verify_offline {now}")


def _matrix_params() -> list[Any]:
    """Every case the tamper matrix runs, read off its own parametrisation."""
    marks = matrix.test_tampering_is_caught_by_every_default_verify.pytestmark  # type: ignore[attr-defined]
    (mark,) = [mark for mark in marks if mark.name == "parametrize"]
    return list(mark.args[1])


def _needs_digests(expected: Expected, max_seq: int) -> bool:
    if expected.kind in DIGEST_KINDS or expected.digest_seq is not None:
        return True
    # A seq "missing" above every stored row: only a digest's tree size says it should exist.
    return expected.kind == "missing" and isinstance(expected.seq, int) and expected.seq > max_seq


def _cases() -> Iterator[Any]:
    for param in _matrix_params():
        tamper, expected = param.values
        yield pytest.param(param.id, tamper, expected, id=param.id)


# --- the tamper matrix ----------------------------------------------------------------------------------


def test_the_comparison_covers_every_matrix_case() -> None:
    """Given the matrix's parametrisation, Then every case is compared here, the relabelled-v1 family included."""
    ids = [param.id for param in _matrix_params()]
    assert ids == [param.id for param in [*matrix.CLASS_1, *matrix.CLASS_2, *matrix.CLASS_3, *matrix.CAUGHT_BEFORE]]
    assert len(ids) == len(set(ids))
    relabelled = [case for case in ids if case.startswith("2-redacted-row-relabelled-v1-")]
    assert len(relabelled) >= 2, relabelled
    assert set(EVENTS_ONLY) <= set(ids)


def test_the_untouched_trail_is_valid_to_both(built: matrix.Built, case_url: str) -> None:
    """Given the matrix's untouched trail, When verified by the spec verifier and verify_offline, Then both valid."""
    assert verify_database(case_url) == project_verdict(case_url) == VALID


@pytest.mark.parametrize(("case", "tamper", "expected"), list(_cases()))
def test_the_spec_verifier_agrees_with_the_project(
    built: matrix.Built, case_url: str, case: str, tamper: matrix.Tamper, expected: Expected
) -> None:
    """Given one tamper case of the matrix, When verified from the events alone by the spec verifier and by
    verify_offline, Then both name the same (kind, seq): the matrix's verdict, or, where that needs the digests,
    the events-only verdict of sections 6.2-6.4."""
    with Superuser(case_url) as su:
        tamper(su)
        max_seq = su.max_seq()

    ours, theirs = verify_database(case_url), project_verdict(case_url)

    if _needs_digests(expected, max_seq):
        assert case in EVENTS_ONLY, f"{case} needs the digests ({expected}): add its events-only verdict"
        assert ours == theirs == EVENTS_ONLY[case], f"spec verifier {ours}, verify_offline {theirs}"
    else:
        assert case not in EVENTS_ONLY
        assert ours == theirs == (expected.kind, expected.seq), f"spec verifier {ours}, verify_offline {theirs}"


# --- the test vectors (docs/integrity.md section 7) --------------------------------------------------------

_COLUMNS: Final = (
    "seq",
    "event_id",
    "timestamp",
    "event_type",
    "user_id",
    "user_email",
    "session_id",
    "ip_address",
    "user_agent",
    "resource_path",
    "resource_id",
    "action",
    "status",
    "details",
    "security_level",
    "compliance_tags",
    "parent_event_id",
    "metadata",
    "seal_version",
    "seal_salt",
    "payload_commitment",
    "checksum",
    "prev_hash",
    "chain_hash",
    "redacted_at",
    "redaction_reason",
)
_PRIVATE: Final = ("user_email", "session_id", "ip_address", "user_agent", "details", "metadata")
_BLANK: Final[dict[str, Any]] = {
    "user_email": None,
    "session_id": None,
    "ip_address": None,
    "user_agent": None,
    "details": {},
    "metadata": {},
}


def _hex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def _v1_rows() -> list[dict[str, Any]]:
    """7.1's events as stored: the sealed values (the canonical text), seal version 1."""
    rows = []
    for seq, vector in enumerate(VECTORS["events"], start=1):
        sealed = json.loads(vector["canonical"])
        rows.append(
            {
                **sealed,
                "seq": seq,
                "seal_version": 1,
                "checksum": _hex(vector["checksum"]),
                "prev_hash": _hex(vector["prev_hash"]),
                "chain_hash": _hex(vector["chain_hash"]),
            }
        )
    return rows


def _v2_rows(*, redact: bool = True) -> list[dict[str, Any]]:
    """7.4's events as stored: kept fields and private object from their canonical texts, seal version 2; event
    2 as ``redacted.stored`` gives it (its record is event 5) unless ``redact`` is false."""
    rows = []
    for vector in VECTORS["events_v2"]:
        sealed = json.loads(vector["canonical"])
        row = {
            **{name: value for name, value in sealed.items() if name not in ("seal", "payload_commitment")},
            **json.loads(vector["private_canonical"]),
            "seq": vector["seq"],
            "seal_version": 2,
            "seal_salt": _hex(vector["seal_salt"]),
            "payload_commitment": _hex(sealed["payload_commitment"]),
            "checksum": _hex(vector["checksum"]),
            "prev_hash": _hex(vector["prev_hash"]),
            "chain_hash": _hex(vector["chain_hash"]),
        }
        assert row["payload_commitment"] == _hex(vector["payload_commitment"])
        if redact and "redacted" in vector:
            stored = vector["redacted"]["stored"]
            for name in _PRIVATE:
                row[name] = stored[name]
            row.update(
                seal_salt=_hex(stored["seal_salt"]),
                payload_commitment=_hex(stored["payload_commitment"]),
                redaction_reason=stored["redaction_reason"],
                redacted_at="2026-11-27T09:00:00Z",
            )
        rows.append(row)
    return rows


def _store(url: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows exactly as given (triggers off) and point the head at the last."""
    with Superuser(url) as su:
        for row in rows:
            values = {name: row.get(name) for name in _COLUMNS}
            values["details"] = Jsonb(row.get("details") or {})
            values["metadata"] = Jsonb(row.get("metadata") or {})
            values["compliance_tags"] = list(row.get("compliance_tags") or [])
            columns = ", ".join(f'"{name}"' for name in _COLUMNS)
            placeholders = ", ".join("%s::inet" if name == "ip_address" else "%s" for name in _COLUMNS)
            su.conn.execute(
                f"insert into audit.audit_events ({columns}) values ({placeholders})",
                [values[name] for name in _COLUMNS],
            )
        su.set_head(rows[-1]["seq"] if rows else 0)


def _sql(url: str, *statements: str) -> None:
    with Superuser(url) as su:
        su.sql(*statements)


def _relink(rows: list[dict[str, Any]], first: int) -> None:
    """Section 4: chain hashes recomputed from index ``first`` on (each row's checksum kept)."""
    previous = rows[first - 1]["chain_hash"] if first else bytes(32)
    for row in rows[first:]:
        row["prev_hash"] = previous
        row["chain_hash"] = previous = hashlib.sha256(previous + row["checksum"]).digest()


def test_the_vectors_are_the_revised_ones() -> None:
    """Given docs/integrity_vectors.json, Then 7.4's record (event 5) has the four members of 6.3, v1_seqs [] (its
    redacted event 2 is version 2), and names event 2, which the file stores redacted."""
    record = VECTORS["events_v2"][4]
    assert record["input"]["details"] == {"count": 1, "reason": "erasure", "seqs": [[2, 2]], "v1_seqs": []}
    assert json.loads(record["private_canonical"])["details"] == record["input"]["details"]
    assert VECTORS["events_v2"][1]["redacted"]["recorded_by_seq"] == record["seq"] == 5


def test_the_v1_vector_chain_is_valid(db_url: str) -> None:
    """Given 7.1's four events stored with seal version 1, Then both verifiers find the chain valid."""
    _store(db_url, _v1_rows())
    assert verify_database(db_url) == project_verdict(db_url) == VALID


def test_the_v2_vector_chain_with_event_2_redacted_is_valid(db_url: str) -> None:
    """Given 7.4's five events, event 2 redacted and recorded by event 5, Then both verifiers find it valid."""
    _store(db_url, _v2_rows())
    assert verify_database(db_url) == project_verdict(db_url) == VALID


V2_TAMPERS: Final = [
    # 7.4, last paragraph: "Put any erased value back, leave the salt, or change a kept field, and it fails
    # (redaction_incomplete, modified); cut the chain before event 5 and it is redaction_unrecorded."
    pytest.param(
        ("update audit.audit_events set user_email = 'x@example.com' where seq = 2",),
        ("redaction_incomplete", 2),
        id="erased-value-put-back",
    ),
    pytest.param(
        ("update audit.audit_events set seal_salt = '\\x508a796a7813c43ca499674c1f60506a' where seq = 2",),
        ("redaction_incomplete", 2),
        id="salt-left",
    ),
    pytest.param(
        ("update audit.audit_events set action = 'logout' where seq = 2",), ("modified", 2), id="kept-field-changed"
    ),
    pytest.param(
        (
            "delete from audit.audit_events where seq = 5",
            "update audit.chain_head set seq = 4,"
            " chain_hash = (select chain_hash from audit.audit_events where seq = 4)",
        ),
        ("redaction_unrecorded", 2),
        id="cut-before-the-record",
    ),
    # 6.1: a version-1 row holding a commitment is a version-2 row relabelled (step 4, before steps 5 and 6).
    pytest.param(
        ("update audit.audit_events set seal_version = 1, action = 'logout' where seq = 2",),
        ("not_canonical", 2),
        id="relabelled-v1-kept-field-changed",
    ),
    # 6.3: relabelled and its commitment dropped, the chain has no marker, so one version throughout (not_canonical);
    # the record (v1_seqs []) says it is version 2 (redaction_unrecorded at the same seq: the tie names not_canonical).
    pytest.param(
        ("update audit.audit_events set seal_version = 1, payload_commitment = null, action = 'logout' where seq = 2",),
        ("not_canonical", 2),
        id="relabelled-v1-commitment-dropped",
    ),
]


@pytest.mark.parametrize(("statements", "verdict"), V2_TAMPERS)
def test_the_v2_vector_chain_tampered(db_url: str, statements: tuple[str, ...], verdict: Verdict) -> None:
    """Given 7.4's chain tampered as its last paragraph (and 6.1, 6.3 on relabelling) say, Then both verifiers name
    the failure named there."""
    _store(db_url, _v2_rows())
    _sql(db_url, *statements)
    assert verify_database(db_url) == project_verdict(db_url) == verdict


def test_a_record_of_a_redaction_that_did_not_happen(db_url: str) -> None:
    """Given 7.4's chain with event 2 left unredacted, Then record 5 names a row that is not redacted (6.3)."""
    _store(db_url, _v2_rows(redact=False))
    assert verify_database(db_url) == project_verdict(db_url) == ("redaction_unrecorded", 2)


def test_the_vectors_are_read_back_as_stored(db_url: str) -> None:
    """The rows the vector tests store read back with the vectors' sealed values (no normalisation on insert)."""
    _store(db_url, _v1_rows())
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select details::text, format('%s', ip_address), compliance_tags from audit.audit_events where seq = 4"
        ).fetchone()
    assert row is not None
    assert row[1:] == ("198.51.100.7", ["cis", "sox"])
    assert json.loads(row[0])["😀"] == "grinning"


def test_an_event_with_no_private_values_edited_in_a_kept_field(db_url: str) -> None:
    """Given 7.4's chain unredacted, When event 2 (no email, address, agent or details) gets another action, Then
    both name it modified: 6.5 redacted_without_record is "for version 2 only when the kept fields and the stored
    commitment still give the checksum", and a kept field changed."""
    _store(db_url, _v2_rows(redact=False)[:4])
    _sql(db_url, "update audit.audit_events set action = 'logout' where seq = 2")
    assert verify_database(db_url) == project_verdict(db_url) == ("modified", 2)


def test_an_event_with_no_private_values_given_a_session(db_url: str) -> None:
    """Given 7.4's chain unredacted, When event 2 gets a session_id (a private field 6.5's "looks blanked" does not
    name), Then the kept fields and commitment still give the checksum: redacted_without_record."""
    _store(db_url, _v2_rows(redact=False)[:4])
    _sql(db_url, "update audit.audit_events set session_id = 's-1' where seq = 2")
    assert verify_database(db_url) == project_verdict(db_url) == ("redacted_without_record", 2)


def _v1_after_v2(**late: Any) -> list[dict[str, Any]]:
    """7.4's events 1-2 (unredacted), then 7.1's event 3 (seal version 1) chained after them."""
    v1, v2 = _v1_rows(), _v2_rows(redact=False)
    rows = [*v2[:2], {**v1[2], **late}]
    _relink(rows, 2)
    return rows


def test_a_version_1_row_after_version_2_rows_holding_a_salt(db_url: str) -> None:
    """Given a version-1 row chained after version-2 rows, holding a salt and a commitment it does not use, Then
    both name it not_canonical (6.1: "a version-1 row that holds a salt or a commitment")."""
    _store(db_url, _v1_after_v2(seal_salt=bytes(16), payload_commitment=bytes(32)))
    assert verify_database(db_url) == project_verdict(db_url) == ("not_canonical", 3)


def test_a_version_1_row_after_version_2_rows(db_url: str) -> None:
    """Given a version-1 row chained after version-2 rows, holding neither salt nor commitment, Then both name it
    not_canonical: 6.3, "A chain without a marker ... MUST have one version throughout"."""
    _store(db_url, _v1_after_v2())
    assert verify_database(db_url) == project_verdict(db_url) == ("not_canonical", 3)


_MARKER: Final[dict[str, Any]] = {"seal": 2, "v1_through": 4}
"""6.3: the seal-version marker of 7.1's four version-1 events."""


def _sealed_v2_row(seq: int, fields: dict[str, Any], salt: bytes) -> dict[str, Any]:
    """An event of these 17 fields sealed with version 2 (section 1.1) by the spec verifier's own sealing."""
    commitment = commitment_of(salt, fields)
    return {
        **fields,
        "seq": seq,
        "seal_version": 2,
        "seal_salt": salt,
        "payload_commitment": commitment,
        "checksum": checksum_of(sealed_v2(fields, commitment)),
    }


def _system_event(event_id: str, user_id: str, action: str, details: Any, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "timestamp": "2026-11-27T09:00:00.000000Z",
        "event_type": "system_event",
        "user_id": user_id,
        "resource_path": None,
        "resource_id": None,
        "action": action,
        "status": "success",
        "security_level": "medium",
        "compliance_tags": [],
        "parent_event_id": None,
        **_BLANK,
        "details": details,
        **fields,
    }


def _marker_row(seq: int, details: Any, **fields: Any) -> dict[str, Any]:
    """6.3: "action seal_version_changed, user_id migration:seal_v2, details exactly {"seal": 2, "v1_through": n}"."""
    marker = {**_system_event(f"seal-v2-marker-{seq}", "migration:seal_v2", "seal_version_changed", details), **fields}
    return _sealed_v2_row(seq, marker, bytes(range(16, 32)))


def _v1_chain_with_erasure(
    erased: tuple[int, ...] = (3,),
    seqs: tuple[tuple[int, int], ...] = ((3, 3),),
    v1_seqs: Any = ((3, 3),),
    markers: tuple[Any, ...] = (_MARKER,),
) -> list[dict[str, Any]]:
    """7.1's four events (seal version 1), those ``erased`` blanked as 1.1 says (private columns blank, checksum
    kept), a fifth: their redaction record, naming ``seqs`` and ``v1_seqs``, then the seal-version ``markers``
    (details as given), all sealed with version 2 (section 1.1) by the spec verifier's own sealing: the chain the
    seal-v2 migration leaves (6.3, "appended, after those records, one more")."""
    rows = _v1_rows()
    for seq in erased:
        rows[seq - 1].update(_BLANK, redacted_at="2026-11-27T09:00:00Z", redaction_reason="erasure")
    count = sum(last - first + 1 for first, last in seqs)
    details = {
        "count": count,
        "reason": "erasure",
        "seqs": [list(r) for r in seqs],
        "v1_seqs": [list(r) for r in v1_seqs],
    }
    record = _system_event(
        "redaction-v1-0003",
        "admin:dpo-7",
        "events_redacted",
        details,
        resource_id="erasure-req-43",
        compliance_tags=["gdpr"],
    )
    rows.append(_sealed_v2_row(5, record, bytes(range(16))))
    rows.extend(_marker_row(seq, marker) for seq, marker in enumerate(markers, start=6))
    _relink(rows, 4)
    return rows


def _v1_chain_with_marker(*markers: Any, **marker_fields: Any) -> list[dict[str, Any]]:
    """7.1's four events (seal version 1, none erased) and seal-version markers after them (seq 5 on)."""
    rows = _v1_rows()
    rows.extend(_marker_row(seq, marker, **marker_fields) for seq, marker in enumerate(markers, start=5))
    _relink(rows, 4)
    return rows


V1_ERASURES: Final = [
    # 6.2 step 6 checks a redacted version-1 row's links only; 6.3 finds its seal version as the record says, and
    # the marker allows version 1 up to 4.
    corner(_v1_chain_with_erasure(), VALID, id="named-in-v1-seqs"),
    # 6.3: "its seal_version as the record says (1 within v1_seqs, else 2)".
    corner(_v1_chain_with_erasure(v1_seqs=()), ("redaction_unrecorded", 3), id="named-as-version-2"),
    corner(
        _v1_chain_with_erasure((2, 3), ((2, 3),), ((2, 2),)), ("redaction_unrecorded", 3), id="one-of-two-named-as-v2"
    ),
    # 6.3 "v1_seqs are ranges of the same shape, each within one range of seqs".
    corner(
        _v1_chain_with_erasure((2, 3), ((2, 2), (3, 3)), ((2, 3),)),
        ("redaction_unrecorded", 2),
        id="v1-seqs-spanning-adjacent-ranges",
    ),
    # 6.3 marker: "A chain without a marker ... MUST have one version throughout": the record (5) is version 2.
    corner(_v1_chain_with_erasure(markers=()), ("not_canonical", 5), id="no-marker"),
    # "every row up to n MUST be version 1 and every later row version 2".
    corner(_v1_chain_with_erasure(markers=({"seal": 2, "v1_through": 3},)), ("not_canonical", 4), id="marker-short"),
    corner(_v1_chain_with_erasure(markers=({"seal": 2, "v1_through": 5},)), ("not_canonical", 5), id="marker-long"),
    # "a tie with redaction_unrecorded at the same seq names not_canonical": the marker makes 3 version 2, and so
    # does its record.
    corner(
        _v1_chain_with_erasure(v1_seqs=(), markers=({"seal": 2, "v1_through": 2},)),
        ("not_canonical", 3),
        id="marker-and-record-both-say-version-2",
    ),
    # ... and the lower seq of the two failures names the verdict: 3 unrecorded (named version 2), 4 not allowed.
    corner(
        _v1_chain_with_erasure(v1_seqs=(), markers=({"seal": 2, "v1_through": 3},)),
        ("redaction_unrecorded", 3),
        id="record-below-the-marker-failure",
    ),
    # "A second marker, or a marker not of that form, is not allowed": named by its own seq; the other rows are held
    # to the marker of the form, if any ("the lowest seq whose version the rule does not allow").
    corner(_v1_chain_with_erasure(markers=(_MARKER, _MARKER)), ("not_canonical", 7), id="second-marker"),
    corner(
        _v1_chain_with_erasure(markers=({"seal": 2, "v1_through": 3}, _MARKER)),
        ("not_canonical", 4),
        id="second-marker-above-a-row-the-first-disallows",
    ),
    *(
        corner(_v1_chain_with_erasure(markers=(details,)), ("not_canonical", 6), id=f"marker-{name}")
        for name, details in [
            ("v1-through-4.0", {"seal": 2, "v1_through": 4.0}),
            ("v1-through-a-string", {"seal": 2, "v1_through": "4"}),
            ("v1-through-0", {"seal": 2, "v1_through": 0}),
            ("v1-through-its-own-seq", {"seal": 2, "v1_through": 6}),
            ("seal-1", {"seal": 1, "v1_through": 4}),
            ("extra-member", {"seal": 2, "v1_through": 4, "note": "x"}),
            ("without-seal", {"v1_through": 4}),
        ]
    ),
]


@pytest.mark.parametrize(("rows", "verdict", "theirs"), V1_ERASURES)
def test_version_1_rows_erased_and_recorded(
    db_url: str, rows: list[dict[str, Any]], verdict: Verdict, theirs: object
) -> None:
    """Given 7.1's events with some erased, a version-2 redaction record after them and the seal-version markers,
    Then both verifiers name the verdict 6.2 step 6 and 6.3 give (or the project the one recorded where it
    differs)."""
    _store(db_url, rows)
    compare(db_url, verdict, theirs)


MARKERS: Final = [
    # 7.1's events and a marker: rows up to 4 version 1, the marker (5) version 2.
    corner(_v1_chain_with_marker(_MARKER), VALID, id="marker-after-v1-rows"),
    # 6.3 says the migration writes user_id migration:seal_v2, and that a marker "not of that form" (its details, as
    # for a record) is not allowed: the user_id is not part of the form. An event of another type than the records'
    # (system_event) is no marker: the chain has none, so one version throughout.
    corner(_v1_chain_with_marker(_MARKER, user_id="admin-1"), VALID, id="marker-by-another-user"),
    corner(
        _v1_chain_with_marker(_MARKER, event_type="user_login"), ("not_canonical", 5), id="marker-of-another-event-type"
    ),
    corner(
        _v1_chain_with_marker({"seal": 2, "v1_through": 4.0}, event_type="user_login"),
        ("not_canonical", 5),
        id="malformed-marker-of-another-event-type",
    ),
    corner(_v1_chain_with_marker({"seal": 2, "v1_through": 2}), ("not_canonical", 3), id="marker-v1-through-2-of-4"),
]


@pytest.mark.parametrize(("rows", "verdict", "theirs"), MARKERS)
def test_the_seal_version_marker(db_url: str, rows: list[dict[str, Any]], verdict: Verdict, theirs: object) -> None:
    """Given 7.1's version-1 events and a seal-version marker after them (6.3), Then both verifiers find the rows'
    versions as the marker allows them, or not_canonical naming the lowest seq it does not allow."""
    _store(db_url, rows)
    compare(db_url, verdict, theirs)


def test_a_version_1_row_erased_then_relabelled_version_2(db_url: str) -> None:
    """Given the recorded erasure of v1 event 3, When it is relabelled version 2, Then it has no commitment to give
    the checksum with (6.2 step 6, modified)."""
    _store(db_url, _v1_chain_with_erasure())
    _sql(db_url, "update audit.audit_events set seal_version = 2 where seq = 3")
    assert verify_database(db_url) == project_verdict(db_url) == ("modified", 3)


# --- beyond the matrix: corners where the spec had to be read closely ----------------------------------------

_BLANK_BUT_SESSION = "user_email = null, ip_address = null, user_agent = null, details = '{}'"
_MARK_REDACTED = "redacted_at = now(), seal_salt = null, " + matrix._BLANKED
_TAIL_RECORD = '{"count": 2, "reason": "retention", "seqs": [[8, 8], [35, 35]], "v1_seqs": []}'
_RETENTION_RECORD = '{"count": 1, "reason": "retention", "seqs": [[24, 24]], "v1_seqs": []}'


def _set_head_then(seq: int, *statements: str) -> matrix.Tamper:
    def tamper(su: Superuser) -> None:
        su.set_head(seq)
        su.sql(*statements)

    return tamper


def _nullable(column: str, seq: int, assignments: str) -> matrix.Tamper:
    return matrix.sql(
        f"alter table audit.audit_events alter column {column} drop not null",
        f"update audit.audit_events set {assignments} where seq = {seq}",
    )


def _then(*tampers: matrix.Tamper) -> matrix.Tamper:
    def tamper(su: Superuser) -> None:
        for each in tampers:
            each(su)

    return tamper


def _head_table_unconstrained(*statements: str) -> matrix.Tamper:
    """The chain head table's constraints dropped (a superuser can), then the statements."""

    def tamper(su: Superuser) -> None:
        names = su.conn.execute(
            "select conname from pg_constraint where conrelid = 'audit.chain_head'::regclass and contype <> 'f'"
        ).fetchall()
        for (name,) in names:
            su.conn.execute(f'alter table audit.chain_head drop constraint "{name}"')
        su.sql(*statements)

    return tamper


def _make_record(seq: int, details: str) -> matrix.Tamper:
    """An unredacted event turned into a redaction record with these details, resealed from it on."""
    return matrix._rewrite_and_reseal(
        seq, f"event_type = 'system_event', action = 'events_redacted', details = '{details}'::jsonb"
    )


def _make_marker(seq: int, details: str, user_id: str = "migration:seal_v2") -> matrix.Tamper:
    """An unredacted event turned into a seal-version marker (6.3) with these details, resealed from it on."""
    return matrix._rewrite_and_reseal(
        seq,
        f"event_type = 'system_event', action = 'seal_version_changed', user_id = '{user_id}',"
        f" details = '{details}'::jsonb",
    )


_SECOND_HEAD_ROW = "insert into audit.chain_head select * from audit.chain_head"


CORNERS = [
    # 6.1 numbers: the rule is the exact value, so another text of the same value is the sealed form.
    corner(matrix.update(7, "details = jsonb_set(details, '{ratio}', '0.10')"), VALID, id="number-0.10-for-0.1"),
    corner(matrix.update(7, "details = jsonb_set(details, '{big}', '9007199254740992.0')"), VALID, id="number-with-.0"),
    corner(
        matrix.update(7, "details = jsonb_set(details, '{big}', '1e-400')"),
        ("not_canonical", 7),
        id="number-below-the-doubles",
    ),
    # 6.1: "1e400 (no double)" is not the sealed form.
    corner(
        matrix.update(7, "details = jsonb_set(details, '{big}', '1e400')"),
        ("not_canonical", 7),
        id="number-beyond-the-doubles",
    ),
    corner(
        matrix.update(7, "metadata = '{\"n\": -1e400}'"), ("not_canonical", 7), id="metadata-number-beyond-the-doubles"
    ),
    corner(
        matrix.update(17, "details = '[0.10000000000000001]'"), ("not_canonical", 17), id="inexact-number-in-a-list"
    ),
    corner(
        matrix.update(3, "details = '[0.10000000000000001]'"),
        ("not_canonical", 3),
        id="inexact-number-in-a-list-on-a-redacted-row",
    ),
    # 6.1: "any column whose sealed member is never null ... SQL NULL, or JSON null in details/metadata: never read
    # as the absent value" (step 4, so before step 5 on a redacted row).
    corner(_nullable("details", 17, "details = null"), ("not_canonical", 17), id="details-column-null"),
    corner(_nullable("details", 3, "details = null"), ("not_canonical", 3), id="details-column-null-redacted"),
    corner(_nullable("metadata", 33, "metadata = null"), ("not_canonical", 33), id="metadata-column-null"),
    corner(matrix.update(17, "details = 'null'"), ("not_canonical", 17), id="details-json-null"),
    corner(matrix.update(33, "metadata = 'null'"), ("not_canonical", 33), id="metadata-json-null"),
    corner(_nullable('"timestamp"', 17, '"timestamp" = null'), ("not_canonical", 17), id="timestamp-column-null"),
    corner(_nullable("event_type", 17, "event_type = null"), ("not_canonical", 17), id="event-type-column-null"),
    corner(_nullable("status", 17, "status = null"), ("not_canonical", 17), id="status-column-null"),
    corner(
        _nullable("security_level", 17, "security_level = null"), ("not_canonical", 17), id="security-level-column-null"
    ),
    corner(matrix.update(17, "details = '[]'"), ("modified", 17), id="details-not-an-object"),
    corner(matrix.update(17, "\"timestamp\" = 'infinity'"), ("modified", 17), id="timestamp-infinity"),
    corner(
        matrix.update(17, '"timestamp" = "timestamp" + interval \'8000 years\''),
        ("modified", 17),
        id="timestamp-year-10026",
    ),
    corner(_nullable("event_id", 17, "event_id = null"), ("not_canonical", 17), id="event-id-null"),
    # 6.1 addresses: PostgreSQL prints ::2:3 as ::0.2.0.3, the same address.
    corner(matrix._rewrite_and_reseal(17, "ip_address = '::2:3'"), VALID, id="ipv6-printed-dotted"),
    corner(matrix._rewrite_and_reseal(17, "ip_address = '::1.2.3.4'"), VALID, id="ipv4-compatible-ipv6"),
    # 6.1 tags: "one dimension, lower bound 1, no NULL element"; "sorted by UTF-16 code units".
    corner(matrix.update(2, "compliance_tags = '[0:1]={gdpr,hipaa}'"), ("not_canonical", 2), id="tags-lower-bound-0"),
    corner(matrix.update(2, "compliance_tags = '{{gdpr,hipaa}}'"), ("not_canonical", 2), id="tags-2-dimensional"),
    corner(matrix.update(2, "compliance_tags = '{gdpr,hipaa,NULL}'"), ("not_canonical", 2), id="tags-null-element"),
    # 6.1: a NULL compliance_tags column is never read as the absent value [] (not_canonical).
    corner(_nullable("compliance_tags", 17, "compliance_tags = null"), ("not_canonical", 17), id="tags-column-null"),
    corner(
        _nullable("compliance_tags", 3, "compliance_tags = null"),
        ("not_canonical", 3),
        id="tags-column-null-for-empty-tags-redacted",
    ),
    corner(
        _nullable("compliance_tags", 33, "compliance_tags = null"),
        ("not_canonical", 33),
        id="tags-column-null-for-empty-tags",
    ),
    corner(
        matrix._rewrite_and_reseal(17, "compliance_tags = '{\uff21,\U0001f600}'"),
        ("not_canonical", 17),
        id="tags-in-code-point-order",
    ),
    corner(matrix._rewrite_and_reseal(17, "compliance_tags = '{\U0001f600,\uff21}'"), VALID, id="tags-in-utf16-order"),
    # 6.1 hashes: "a prev_hash of the wrong length does not link (step 2); a checksum or chain_hash of the wrong
    # length is chain_hash_mismatch"; commitment and salt of the wrong length; a seal version that does not exist.
    corner(
        matrix.update(17, "prev_hash = substring(prev_hash from 1 for 31)"), ("inserted", 17), id="prev-hash-31-bytes"
    ),
    corner(
        matrix.update(2, "prev_hash = decode(repeat('00', 32), 'hex')"), ("inserted", 1), id="seq-2-links-to-genesis"
    ),
    corner(_nullable("prev_hash", 17, "prev_hash = null"), ("inserted", 17), id="prev-hash-null"),
    corner(
        matrix.update(17, "checksum = substring(checksum from 1 for 31)"),
        ("chain_hash_mismatch", 17),
        id="checksum-31-bytes",
    ),
    corner(_nullable("checksum", 17, "checksum = null"), ("chain_hash_mismatch", 17), id="checksum-null"),
    corner(
        matrix.update(17, "chain_hash = substring(chain_hash from 1 for 31)"),
        ("chain_hash_mismatch", 17),
        id="chain-hash-31-bytes",
    ),
    corner(_nullable("chain_hash", 17, "chain_hash = null"), ("chain_hash_mismatch", 17), id="chain-hash-null"),
    corner(matrix.update(17, "seal_salt = substring(seal_salt from 1 for 15)"), ("modified", 17), id="salt-15"),
    corner(matrix.update(17, "seal_salt = null"), ("modified", 17), id="salt-gone-unredacted"),
    corner(
        matrix.update(3, "payload_commitment = substring(payload_commitment from 1 for 31)"),
        ("modified", 3),
        id="commitment-31-bytes-redacted",
    ),
    corner(matrix.update(3, "payload_commitment = null"), ("modified", 3), id="commitment-gone-redacted"),
    corner(matrix.update(17, "seal_version = 3"), ("modified", 17), id="seal-version-3"),
    corner(matrix.update(3, "\"timestamp\" = 'infinity'"), ("modified", 3), id="redacted-timestamp-infinity"),
    # 6.1 seal versions: "a version-1 row that holds a salt or a commitment" (step 4, so before step 5).
    corner(matrix.update(17, "seal_version = 1"), ("not_canonical", 17), id="v1-unredacted-salt-and-commitment"),
    corner(
        matrix.update(17, "seal_version = 1, seal_salt = null"), ("not_canonical", 17), id="v1-unredacted-commitment"
    ),
    corner(
        matrix.update(17, "seal_version = 1, payload_commitment = null"), ("not_canonical", 17), id="v1-unredacted-salt"
    ),
    corner(
        matrix.update(17, "seal_version = 1, seal_salt = null, payload_commitment = null"),
        ("modified", 17),
        id="v1-unredacted-holding-neither",
    ),
    corner(
        matrix.update(
            3, "seal_version = 1, payload_commitment = null, seal_salt = '\\x000102030405060708090a0b0c0d0e0f'"
        ),
        ("not_canonical", 3),
        id="v1-redacted-holding-a-salt",
    ),
    corner(
        matrix.update(9, f"seal_version = 1, seal_salt = null, payload_commitment = null, {matrix._BLANKED}"),
        ("redacted_without_record", 9),
        id="v1-unredacted-blanked",
    ),
    # 6.2 step 1: a seq below 1; 6.4: a head at 0, a head row deleted.
    corner(
        matrix.sql(
            "create temp table t as select * from audit.audit_events where seq = 1",
            "update t set seq = 0, event_id = 'zero'",
            "insert into audit.audit_events select * from t",
        ),
        ("inserted", 0),
        id="seq-0",
    ),
    # 6.5 inserted: "two rows with one seq: inserted at that seq", whichever the database returns first.
    *(
        corner(
            matrix.sql(
                "alter table audit.audit_events drop constraint audit_events_pkey cascade",
                "create temp table t as select * from audit.audit_events where seq = 17",
                f"update t set event_id = 'twin', {assignment}",
                "insert into audit.audit_events select * from t",
            ),
            ("inserted", 17),
            id=f"seq-17-twice-{name}",
        )
        for name, assignment in [("as-a-copy", "seq = seq"), ("garbled", "chain_hash = sha256(chain_hash)")]
    ),
    corner(
        matrix.sql("update audit.chain_head set seq = 0, chain_hash = decode(repeat('00', 32), 'hex')"),
        ("rows_past_head", 1),
        id="head-at-0",
    ),
    # 6.4: "none, more than one, or one with a NULL seq reads as the head of the empty chain".
    corner(matrix.sql("delete from audit.chain_head"), ("rows_past_head", 1), id="head-row-deleted"),
    corner(
        matrix.sql(
            "alter table audit.chain_head alter column seq drop not null", "update audit.chain_head set seq = null"
        ),
        ("rows_past_head", 1),
        id="head-seq-null",
    ),
    corner(
        matrix.sql(
            "alter table audit.chain_head alter column chain_hash drop not null",
            "update audit.chain_head set chain_hash = null",
        ),
        ("truncated", 39),
        id="head-hash-null",
    ),
    corner(_head_table_unconstrained(_SECOND_HEAD_ROW), ("rows_past_head", 1), id="head-row-doubled"),
    corner(
        _head_table_unconstrained(
            _SECOND_HEAD_ROW,
            "update audit.chain_head set seq = 22,"
            " chain_hash = (select chain_hash from audit.audit_events where seq = 22)"
            " where ctid = (select min(ctid) from audit.chain_head)",
        ),
        ("rows_past_head", 1),
        id="two-head-rows-22-and-39",
    ),
    # 6.2 before 6.4: a modified row below the head is named before the rows past it.
    corner(
        _set_head_then(38, "update audit.audit_events set action = 'x' where seq = 17"),
        ("modified", 17),
        id="modified-and-rows-past-the-head",
    ),
    # 6.5 redacted_without_record: "looks blanked" is email, address, agent null and details exactly {}; for
    # version 2 only when the kept fields and the stored commitment still give the checksum.
    corner(matrix.update(9, _BLANK_BUT_SESSION), ("redacted_without_record", 9), id="blanked-but-session"),
    corner(
        matrix.update(9, f"{matrix._BLANKED}, seal_salt = null"),
        ("redacted_without_record", 9),
        id="blanked-and-salt-dropped",
    ),
    corner(
        matrix.update(9, f"{matrix._BLANKED}, action = 'innocent'"), ("modified", 9), id="blanked-and-kept-field-edited"
    ),
    corner(
        matrix.update(9, f"{matrix._BLANKED}, payload_commitment = sha256(payload_commitment)"),
        ("modified", 9),
        id="blanked-and-commitment-changed",
    ),
    corner(
        matrix.update(9, f"{matrix._BLANKED}, seal_salt = substring(seal_salt from 1 for 15)"),
        ("redacted_without_record", 9),
        id="blanked-and-salt-15-bytes",
    ),
    corner(
        matrix.update(9, f"{matrix._BLANKED}, seal_version = 3"),
        ("redacted_without_record", 9),
        id="blanked-and-seal-version-3",
    ),
    corner(
        matrix.update(9, matrix._BLANKED.replace("details = '{}'", "details = '[]'")),
        ("modified", 9),
        id="blanked-but-details-an-empty-list",
    ),
    # 6.1: JSON null in details is not_canonical (step 4), before 6.5's "looks blanked" is asked.
    corner(
        matrix.update(9, matrix._BLANKED.replace("details = '{}'", "details = 'null'")),
        ("not_canonical", 9),
        id="blanked-but-details-json-null",
    ),
    # 6.1: JSON null in details/metadata is not_canonical (step 4, before step 5).
    corner(matrix.update(3, "details = 'null'"), ("not_canonical", 3), id="redacted-details-null"),
    corner(matrix.update(3, "metadata = 'null'"), ("not_canonical", 3), id="redacted-metadata-null"),
    # 6.2 step 5: details and metadata "exactly {}, not [], null, 0 or """.
    *(
        corner(matrix.update(3, f"{column} = '{blank}'"), ("redaction_incomplete", 3), id=f"redacted-{column}-{blank}")
        for column, blank in [
            ("details", "[]"),
            ("details", "0"),
            ("details", "false"),
            ("details", '""'),
            ("metadata", "[]"),
            ("details", '["user2@example.com"]'),
            ("details", '"user2@example.com"'),
        ]
    ),
    # 6.3 redaction records and markers.
    corner(matrix.update(24, "redaction_reason = null"), ("redaction_unrecorded", 24), id="marker-no-reason"),
    corner(matrix.update(17, "redaction_reason = 'erasure'"), VALID, id="reason-without-redacted-at"),
    corner(
        matrix.update(9, f"redaction_reason = 'retention', {_MARK_REDACTED}"),
        ("redaction_unrecorded", 9),
        id="fake-retention-marker",
    ),
    corner(
        matrix.update(33, f"redaction_reason = 'retention', {_MARK_REDACTED}"),
        ("redaction_unrecorded", 24),
        id="record-redacted-itself",
    ),
    corner(matrix._record_details(39, _TAIL_RECORD), VALID, id="record-resealed-as-it-was"),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"count": 2', '"count": 3')),
        ("redaction_unrecorded", 8),
        id="record-count-wrong",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace("}", ', "note": "x"}')),
        ("redaction_unrecorded", 8),
        id="record-extra-member",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace(', "v1_seqs": []', "")),
        ("redaction_unrecorded", 8),
        id="record-without-v1-seqs",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace("[[8, 8], [35, 35]]", "[[35, 35], [8, 8]]")),
        ("redaction_unrecorded", 8),
        id="record-ranges-descending",
    ),
    corner(
        matrix._record_details(22, '{"count": 2, "reason": "erasure", "seqs": [[14, 14], [15, 15]], "v1_seqs": []}'),
        VALID,
        id="record-adjacent-ranges",
    ),
    corner(
        matrix._record_details(22, '{"count": 2, "reason": "erasure", "seqs": [[15, 14]], "v1_seqs": []}'),
        ("redaction_unrecorded", 14),
        id="record-range-inverted",
    ),
    # "count and every bound are JSON integers (2.0 is not a count)"; "all above 0 and below the record's own seq".
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"count": 2', '"count": 2.0')),
        ("redaction_unrecorded", 8),
        id="record-count-2.0",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace("[[8, 8]", "[[8.0, 8]")),
        ("redaction_unrecorded", 8),
        id="record-seq-8.0",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"count": 2', '"count": 2e0')),
        VALID,
        id="record-count-2e0-stored-as-2",
    ),
    corner(
        matrix._record_details(33, _RETENTION_RECORD.replace('"count": 1', '"count": true')),
        ("redaction_unrecorded", 24),
        id="record-count-true",
    ),
    corner(
        matrix._record_details(33, _RETENTION_RECORD.replace("[[24, 24]]", '[[24, "24"]]')),
        ("redaction_unrecorded", 24),
        id="record-bound-a-string",
    ),
    corner(
        matrix._record_details(
            39, _TAIL_RECORD.replace('"count": 2', '"count": 3').replace("[[8, 8]", "[[0, 0], [8, 8]")
        ),
        ("redaction_unrecorded", 8),
        id="record-names-seq-0",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"count": 2', '"count": 3').replace("]]", "], [39, 39]]", 1)),
        ("redaction_unrecorded", 8),
        id="record-names-itself",
    ),
    # 6.3 v1_seqs: "ranges of the same shape, within seqs, naming those of the redacted rows that were sealed with
    # version 1"; a redacted row's seal_version "as the record says (1 within v1_seqs, else 2)".
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"v1_seqs": []', '"v1_seqs": [[8, 8]]')),
        ("redaction_unrecorded", 8),
        id="record-v1-seqs-names-a-v2-row",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"v1_seqs": []', '"v1_seqs": [[36, 36]]')),
        ("redaction_unrecorded", 8),
        id="record-v1-seqs-outside-seqs",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"v1_seqs": []', '"v1_seqs": [[35, 35], [8, 8]]')),
        ("redaction_unrecorded", 8),
        id="record-v1-seqs-descending",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"v1_seqs": []', '"v1_seqs": [[8.0, 8]]')),
        ("redaction_unrecorded", 8),
        id="record-v1-seqs-bound-8.0",
    ),
    corner(
        matrix._record_details(39, _TAIL_RECORD.replace('"v1_seqs": []', '"v1_seqs": null')),
        ("redaction_unrecorded", 8),
        id="record-v1-seqs-null",
    ),
    # 6.3 "every seq a record names MUST be a redacted row with that reason" (and, 6.5, "another seal version"):
    # a second record, naming a row the first one names rightly.
    corner(
        _make_record(36, '{"count": 1, "reason": "retention", "seqs": [[8, 8]], "v1_seqs": [[8, 8]]}'),
        ("redaction_unrecorded", 8),
        id="second-record-names-a-v2-row-as-v1",
    ),
    corner(
        _make_record(36, '{"count": 1, "reason": "erasure", "seqs": [[8, 8]], "v1_seqs": []}'),
        ("redaction_unrecorded", 8),
        id="second-record-names-a-row-with-another-reason",
    ),
    corner(
        _make_record(36, '{"count": 0, "reason": "erasure", "seqs": [], "v1_seqs": []}'), VALID, id="record-naming-none"
    ),
    # 6.3 marker: the matrix's trail has none (all version 2), so "one version throughout".
    corner(
        matrix._rewrite_and_reseal(36, "seal_version = 1, seal_salt = null, payload_commitment = null"),
        ("not_canonical", 36),
        id="v1-row-resealed-after-v2-rows",
    ),
    # A redacted row relabelled version 1 and its record rewritten to say so, resealed from the record on: the
    # record agrees, but the chain has no marker, so version 1 is not allowed at 3 (not_canonical).
    corner(
        _then(
            matrix.update(3, "seal_version = 1, payload_commitment = null, action = 'innocent'"),
            matrix._record_details(11, '{"count": 2, "reason": "erasure", "seqs": [[3, 4]], "v1_seqs": [[3, 3]]}'),
        ),
        ("not_canonical", 3),
        id="relabelled-v1-and-its-record-rewritten",
    ),
    # ... and a marker forged to allow it: inserted among the signed rows it would break the chain, so appended
    # (unsigned) and resealed; it allows version 1 only up to 3, where rows 1-2 are version 2.
    corner(
        _then(
            matrix.update(3, "seal_version = 1, payload_commitment = null, action = 'innocent'"),
            matrix._record_details(11, '{"count": 2, "reason": "erasure", "seqs": [[3, 4]], "v1_seqs": [[3, 3]]}'),
            _make_marker(36, '{"seal": 2, "v1_through": 3}'),
        ),
        ("not_canonical", 1),
        id="relabelled-v1-record-rewritten-and-a-marker-forged",
    ),
    # 6.3 marker: one appended to an all-version-2 chain says rows up to n are version 1.
    corner(_make_marker(36, '{"seal": 2, "v1_through": 35}'), ("not_canonical", 1), id="marker-on-a-v2-chain"),
    corner(
        _make_marker(36, '{"seal": 2, "v1_through": 35.0}'), ("not_canonical", 36), id="malformed-marker-on-a-v2-chain"
    ),
    corner(
        _make_marker(36, '{"seal": 2, "v1_through": 35}', user_id="someone"),
        ("not_canonical", 1),
        id="marker-by-another-user-on-a-v2-chain",
    ),
]


@pytest.mark.parametrize(("tamper", "verdict", "theirs"), CORNERS)
def test_corners_of_the_spec_both_read_alike(
    built: matrix.Built, case_url: str, tamper: matrix.Tamper, verdict: Verdict, theirs: object
) -> None:
    """Given a tampering outside the matrix that the spec decides only on a close reading, Then the spec verifier
    names the verdict of that reading, and so does the project; where the project is known to differ, it still names
    the verdict recorded for it (a Disagreement, the expected failure), and any third verdict fails the test."""
    with Superuser(case_url) as su:
        tamper(su)
    compare(case_url, verdict, theirs)


def test_a_redacted_row_relabelled_version_1_is_caught_with_the_digests(built: matrix.Built, case_url: str) -> None:
    """Given redacted seq 3 (seal version 2) with its action and user_id rewritten and seal_version set to 1, Then
    6.1 makes it not_canonical (a version-1 row holding a commitment), and so does the project's default verify
    with the digests (section 9: "relabelled version 1 as well, not_canonical or redaction_unrecorded")."""
    with Superuser(case_url) as su:
        su.sql("update audit.audit_events set seal_version = 1, action = 'innocent', user_id = 'mallory' where seq = 3")
    assert verify_database(case_url) == ("not_canonical", 3)
    failure = library_verify(case_url, matrix.BUCKET).failure
    assert failure is not None
    assert (failure.kind, failure.seq) == ("not_canonical", 3)


def _relabel_8_and_rewrite_its_unsigned_record(su: Superuser) -> None:
    """Seq 8 (redacted, anchored by digest 1) relabelled version 1, its commitment dropped and a kept field edited;
    record 39 (which no digest covers) rewritten to name 8 in v1_seqs, and resealed (records keep their salt)."""
    su.sql(
        "update audit.audit_events set seal_version = 1, payload_commitment = null, action = 'innocent' where seq = 8"
    )
    matrix._record_details(39, _TAIL_RECORD.replace('"v1_seqs": []', '"v1_seqs": [[8, 8]]'))(su)


def test_a_signed_redacted_row_relabelled_with_its_unsigned_record_rewritten(
    built: matrix.Built, case_url: str
) -> None:
    """Given seq 8, redacted and signed by digest 1, relabelled version 1 with a kept field edited, and record 39
    (no digest yet) rewritten to name 8 in v1_seqs, Then the attack is caught: the record agrees with the relabelling,
    but the chain has no seal-version marker, so it "MUST have one version throughout" (6.3) and seq 8's version 1
    is not_canonical, to both verifiers from the events alone and to the project's verify with the digests (section
    9: "relabelled version 1 as well, not_canonical or redaction_unrecorded")."""
    with Superuser(case_url) as su:
        _relabel_8_and_rewrite_its_unsigned_record(su)
    assert verify_database(case_url) == project_verdict(case_url) == ("not_canonical", 8)
    failure = library_verify(case_url, matrix.BUCKET).failure
    assert failure is not None
    assert (failure.kind, failure.seq) == ("not_canonical", 8)
