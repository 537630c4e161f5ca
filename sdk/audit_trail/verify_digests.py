"""The digest half of `audit-trail verify`: fetch the signed digests and check them on their own.

Digests come from the digest bucket (boto3 paginators; ``--endpoint-url`` for moto or a local stack) or
from a directory an auditor downloaded (``aws s3 sync`` of the bucket, or ``--save-digests``). Each digest
is checked here without the database: its body is a well-formed digest in canonical form, its signature
verifies with the public key, and the digest chain holds (digest_seq gap-free from 1, each digest names
the previous digest's key, signature and tree size). Comparing the digests with the events (Merkle root
and chain hash at ``tree_size``) is done in ``audit_trail.verify`` once the events were read.

Where the signature lives. S3 keeps it in the object's metadata (``x-amz-meta-signature``, as CloudTrail
does); a plain download loses metadata, so ``--save-digests`` writes it beside the body as
``<digest>.json.sig``, and a directory without ``.sig`` files still works for every digest but the newest:
the next digest carries its predecessor's signature (``previous_digest_signature``).

Which kind when a signature does not verify. An authentic signature that no longer verifies means the
body changed: ``digest_altered``. The verifier knows a signature is authentic when it equals the copy the
next digest pinned (``previous_digest_signature``) or the copy recorded in the database's ``digests``
table. Any other signature that does not verify is ``signature_invalid``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from audit_common.integrity.digest import (
    SIGNATURE_METADATA_KEY,
    Digest,
    DigestFormatError,
    digest_key,
    key_file_id,
    parse_digest,
    public_key_key,
    verify_signature,
)
from audit_common.integrity.verify import FailureKind

__all__ = [
    "DigestCheck",
    "DigestProblem",
    "DigestRecord",
    "DigestSource",
    "DirectoryDigestSource",
    "S3DigestSource",
    "UsageError",
    "check_digests",
    "public_key_fingerprint",
    "save_digests",
]

_DIGEST_NAME: Final = re.compile(r"(?:^|/)(\d{10})\.json$")
_PREFIX: Final = "digests/"
_FETCH_THREADS: Final = 16


class UsageError(RuntimeError):
    """The digests cannot be read as asked (no bucket, no such directory, several chains...): exit 2."""


@dataclasses.dataclass(frozen=True, slots=True)
class DigestRecord:
    """One digest object as fetched: where it came from, its exact body and the signature stored with it."""

    digest_seq: int
    location: str
    body: bytes
    signature: str | None


class DigestSource(Protocol):
    """Where digests come from."""

    description: str

    def chain_ids(self) -> list[str]:
        """The chains that have digests here."""
        ...

    def records(self, chain_id: str) -> list[DigestRecord]:
        """Every digest of the chain, in digest_seq order."""
        ...

    def public_key(self, chain_id: str, signing_key_id: str) -> bytes | None:
        """The PEM or DER public key for a signing key id, or None when there is none."""
        ...


# ---------------------------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------------------------


class S3DigestSource:
    """Digests in the digest bucket: ``digests/<chain_id>/<digest_seq:010d>.json`` with the signature in metadata."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        public_key: bytes | None = None,
        client: Any = None,
    ) -> None:
        """Read from ``bucket`` (``endpoint_url`` for moto or a local stack); ``public_key`` overrides the bucket's."""
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._s3 = client
        self._bucket = bucket
        self._public_key = public_key
        self.description = f"s3://{bucket}/{_PREFIX}"

    def chain_ids(self) -> list[str]:
        """Chains found under ``digests/``."""
        chains: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=_PREFIX, Delimiter="/"
            ):
                for prefix in page.get("CommonPrefixes", []):
                    chains.append(prefix["Prefix"][len(_PREFIX) :].rstrip("/"))
        except Exception as exc:
            raise UsageError(f"cannot list s3://{self._bucket}/{_PREFIX}: {exc}") from exc
        return sorted(chains)

    def records(self, chain_id: str) -> list[DigestRecord]:
        """Every digest object of the chain (listed with a paginator, fetched a few at a time: a year is 8,760)."""
        from concurrent.futures import ThreadPoolExecutor

        prefix = f"{_PREFIX}{chain_id}/"
        keys: list[tuple[int, str]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                match = _DIGEST_NAME.search(key)
                if match is not None and "/" not in key[len(prefix) :]:
                    keys.append((int(match.group(1)), key))

        def fetch(entry: tuple[int, str]) -> DigestRecord:
            response = self._s3.get_object(Bucket=self._bucket, Key=entry[1])
            signature = response.get("Metadata", {}).get(SIGNATURE_METADATA_KEY)
            return DigestRecord(entry[0], entry[1], response["Body"].read(), signature)

        # boto3 clients are thread-safe; the threads are gone before any worker process is forked.
        with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
            records = list(pool.map(fetch, keys))
        records.sort(key=lambda record: record.digest_seq)
        return records

    def public_key(self, chain_id: str, signing_key_id: str) -> bytes | None:
        """``--public-key`` if given, else the PEM the anchor wrote beside the digests."""
        if self._public_key is not None:
            return self._public_key
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=public_key_key(chain_id, signing_key_id))
        except Exception:
            return None
        data: bytes = response["Body"].read()
        return data


# ---------------------------------------------------------------------------------------------
# A directory
# ---------------------------------------------------------------------------------------------


class DirectoryDigestSource:
    """Digests downloaded to a directory: a copy of the bucket (``digests/<chain_id>/...``) or one chain's files."""

    def __init__(self, directory: Path, *, public_key: bytes | None = None) -> None:
        """Read ``directory``; ``public_key`` (PEM or DER) overrides any ``public-keys/*.pem`` found there."""
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory")
        self._directory = directory
        self._public_key = public_key
        self.description = str(directory)

    def _chain_dirs(self) -> dict[str, Path]:
        root = self._directory / "digests" if (self._directory / "digests").is_dir() else None
        if root is not None:
            return {path.name: path for path in sorted(root.iterdir()) if path.is_dir()}
        return {"": self._directory}  # one chain's files directly in the directory

    def chain_ids(self) -> list[str]:
        """Chains found (a bare directory counts as one chain whose id the digests name)."""
        chains = self._chain_dirs()
        if list(chains) == [""]:
            for path in sorted(self._directory.glob("*.json")):
                if _DIGEST_NAME.search(path.name):
                    try:
                        return [parse_digest(path.read_bytes(), require_canonical=False).chain_id]
                    except DigestFormatError:
                        continue
            return []
        return list(chains)

    def _chain_dir(self, chain_id: str) -> Path:
        chains = self._chain_dirs()
        return chains.get(chain_id) or chains.get("") or self._directory / "digests" / chain_id

    def records(self, chain_id: str) -> list[DigestRecord]:
        """``<digest_seq:010d>.json`` files, each with its ``.sig`` when present."""
        records = []
        for path in sorted(self._chain_dir(chain_id).glob("*.json")):
            match = _DIGEST_NAME.search(path.name)
            if match is None:
                continue
            signature_file = path.with_name(path.name + ".sig")
            signature = signature_file.read_text().strip() if signature_file.is_file() else None
            records.append(DigestRecord(int(match.group(1)), str(path), path.read_bytes(), signature))
        records.sort(key=lambda record: record.digest_seq)
        return records

    def public_key(self, chain_id: str, signing_key_id: str) -> bytes | None:
        """``--public-key`` if given, else ``public-keys/<key id>.pem`` beside the digests."""
        if self._public_key is not None:
            return self._public_key
        path = self._chain_dir(chain_id) / "public-keys" / f"{key_file_id(signing_key_id)}.pem"
        return path.read_bytes() if path.is_file() else None


def save_digests(source: DigestSource, chain_id: str, records: Sequence[DigestRecord], directory: Path) -> int:
    """Write the digests (body, ``.sig``) and their public keys under ``directory/digests/<chain_id>/``.

    The result is a directory ``--digests-dir`` reads back, for verifying later without the bucket.
    """
    target = directory / "digests" / chain_id
    (target / "public-keys").mkdir(parents=True, exist_ok=True)
    key_ids: set[str] = set()
    for record in records:
        name = f"{record.digest_seq:010d}.json"
        (target / name).write_bytes(record.body)
        if record.signature is not None:
            (target / f"{name}.sig").write_text(record.signature + "\n")
        try:
            key_ids.add(parse_digest(record.body, require_canonical=False).signing_key_id)
        except DigestFormatError:
            continue
    for key_id in sorted(key_ids):
        key = source.public_key(chain_id, key_id)
        if key is not None:
            (target / "public-keys" / f"{key_file_id(key_id)}.pem").write_bytes(key)
    return len(records)


def public_key_fingerprint(public_key: bytes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: what to compare with ``aws kms get-public-key``."""
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from audit_common.integrity.digest import load_public_key

    der = load_public_key(public_key).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


# ---------------------------------------------------------------------------------------------
# Checks that need only the digests
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DigestProblem:
    """Why a digest is not proven: a failure kind, the digest_seq and a sentence."""

    kind: FailureKind
    digest_seq: int
    message: str


@dataclasses.dataclass(slots=True)
class DigestCheck:
    """The digests of one chain after the checks that need no events.

    ``proven`` are the parsed digests whose signature verified and whose chain links hold, in order, up
    to the first problem (a digest after a broken link proves nothing about the history before it).
    ``problem`` is the first problem, if any. ``fingerprints`` maps signing key ids to their public
    key's fingerprint.
    """

    chain_id: str
    total: int
    proven: list[Digest] = dataclasses.field(default_factory=list)
    problem: DigestProblem | None = None
    fingerprints: dict[str, str] = dataclasses.field(default_factory=dict)


def check_digests(
    source: DigestSource,
    chain_id: str,
    *,
    recorded_signatures: Mapping[int, str] | None = None,
    recorded_count: int | None = None,
) -> DigestCheck:
    """Check every digest of ``chain_id``: format, signature, and the chain of digests.

    ``recorded_signatures`` (digest_seq -> signature, from the database's ``digests`` table when it can
    be read) only helps to name a failure (see the module docstring); ``recorded_count`` is how many
    digests the database says were written, so a deleted newest digest is seen too.
    """
    records = source.records(chain_id)
    check = DigestCheck(chain_id=chain_id, total=len(records))
    recorded = dict(recorded_signatures or {})
    by_seq: dict[int, DigestRecord] = {}
    for fetched in records:
        by_seq.setdefault(fetched.digest_seq, fetched)
    expected_total = max([len(records), *(by_seq or [0]), recorded_count or 0])
    check.total = expected_total
    parsed: dict[int, Digest | None] = {}

    def parse(seq: int) -> Digest | None:
        if seq not in parsed:
            record = by_seq.get(seq)
            try:
                parsed[seq] = None if record is None else parse_digest(record.body)
            except DigestFormatError:
                parsed[seq] = None
        return parsed[seq]

    keys: dict[str, bytes | None] = {}
    verified_keys: set[str] = set()
    previous: Digest | None = None
    previous_record: DigestRecord | None = None
    previous_signature: str | None = None
    for seq in range(1, expected_total + 1):
        record = by_seq.get(seq)
        if record is None:
            check.problem = DigestProblem(
                FailureKind.DIGEST_MISSING,
                seq,
                f"digest {seq} is missing from {source.description}"
                + ("" if seq < expected_total else " (the database records it)"),
            )
            return check
        try:
            digest = parse_digest(record.body)
        except DigestFormatError as exc:
            check.problem = DigestProblem(FailureKind.DIGEST_ALTERED, seq, f"digest {seq} ({record.location}): {exc}")
            return check
        if digest.digest_seq != seq or digest.chain_id != chain_id:
            check.problem = DigestProblem(
                FailureKind.DIGEST_ALTERED,
                seq,
                f"digest {seq} ({record.location}) says it is digest {digest.digest_seq} of chain {digest.chain_id!r}",
            )
            return check
        # The signature: the stored one, else the copy the next digest pinned (a download without .sig).
        successor = parse(seq + 1)
        pinned = None if successor is None else successor.previous_digest_signature
        signature = next((value for value in (record.signature, pinned, recorded.get(seq)) if value is not None), None)
        if digest.signing_key_id not in keys:
            keys[digest.signing_key_id] = _load_key(source, check, digest.signing_key_id)
        key = keys[digest.signing_key_id]
        if (
            signature is None
            or key is None
            or not verify_signature(record.body, signature, key, digest.signing_algorithm)
        ):
            # An authentic signature (the copy the next digest pinned, or the database's) that fails means a
            # changed body, provided the key is right: it verified an earlier digest, or verifies the next one.
            authentic = signature is not None and signature in {pinned, recorded.get(seq)}
            next_record = by_seq.get(seq + 1)
            key_right = bool(verified_keys) or (
                successor is not None
                and next_record is not None
                and _verifies(
                    next_record,
                    successor,
                    keys.setdefault(successor.signing_key_id, _load_key(source, check, successor.signing_key_id)),
                    recorded.get(seq + 1),
                )
            )
            check.problem = _signature_problem(record, digest, signature, key, altered=authentic and key_right)
            return check
        if previous is not None and previous_record is not None:
            link = _link_problem(previous, previous_signature, digest)
            if link is not None:
                if link.digest_seq == previous.digest_seq:
                    check.proven.pop()  # the predecessor was replaced: it proves nothing
                check.problem = link
                return check
        verified_keys.add(digest.signing_key_id)
        check.proven.append(digest)
        previous, previous_record, previous_signature = digest, record, signature
    return check


def _verifies(record: DigestRecord, digest: Digest, key: bytes | None, recorded: str | None) -> bool:
    """Does ``record`` (parsed as ``digest``) verify with ``key``, by its own signature or the database's copy?"""
    signature = record.signature or recorded
    return (
        key is not None
        and signature is not None
        and verify_signature(record.body, signature, key, digest.signing_algorithm)
    )


def _load_key(source: DigestSource, check: DigestCheck, signing_key_id: str) -> bytes | None:
    key = source.public_key(check.chain_id, signing_key_id)
    if key is not None:
        try:
            check.fingerprints[signing_key_id] = public_key_fingerprint(key)
        except (ValueError, TypeError):
            check.fingerprints[signing_key_id] = "unreadable"
    return key


def _signature_problem(
    record: DigestRecord, digest: Digest, signature: str | None, key: bytes | None, *, altered: bool
) -> DigestProblem:
    """The failure of a digest whose signature does not verify: ``digest_altered`` when the signature is
    authentic and the key right (so the body changed), else ``signature_invalid``."""
    seq = digest.digest_seq
    if altered:
        return DigestProblem(
            FailureKind.DIGEST_ALTERED,
            seq,
            f"digest {seq} ({record.location}) was changed after it was signed: its own signature, "
            "as the next digest or the database recorded it, no longer verifies its body",
        )
    if key is None:
        return DigestProblem(
            FailureKind.SIGNATURE_INVALID,
            seq,
            f"digest {seq}: no public key for signing key {digest.signing_key_id} (pass --public-key)",
        )
    return DigestProblem(
        FailureKind.SIGNATURE_INVALID,
        seq,
        f"digest {seq} ({record.location}): "
        + ("no signature" if signature is None else "the signature does not verify")
        + f" with key {digest.signing_key_id} ({digest.signing_algorithm})",
    )


def _link_problem(previous: Digest, previous_signature: str | None, digest: Digest) -> DigestProblem | None:
    """Does ``digest`` chain to ``previous`` (signature, key, tree size)? Both already verified."""
    seq = digest.digest_seq
    if digest.previous_digest_signature != previous_signature:
        # Both digests verify, but digest seq pinned another predecessor: the one we have replaced it.
        return DigestProblem(
            FailureKind.DIGEST_ALTERED,
            previous.digest_seq,
            f"digest {previous.digest_seq} is not the one digest {seq} was chained to "
            f"(its signature differs from digest {seq}'s previous_digest_signature): it was replaced",
        )
    expected_key = digest_key(previous.chain_id, previous.digest_seq)
    if digest.previous_digest_key != expected_key:
        return DigestProblem(
            FailureKind.DIGEST_ALTERED,
            seq,
            f"digest {seq} names {digest.previous_digest_key} as its predecessor, not {expected_key}",
        )
    if digest.previous_tree_size != previous.tree_size:
        return DigestProblem(
            FailureKind.DIGEST_ALTERED,
            seq,
            f"digest {seq} continues from tree size {digest.previous_tree_size}, "
            f"but digest {previous.digest_seq} ends at {previous.tree_size}",
        )
    return None
