"""The digest half of `audit-trail verify`: fetch the signed digests and check them on their own.

Digests come from the digest bucket (boto3 paginators; ``--endpoint-url`` for moto or a local stack) or
from a directory an auditor downloaded (``aws s3 sync`` of the bucket, or ``--save-digests``). Each digest
is checked here without the database: it is the original object, its body is a well-formed digest in
canonical form, its signature verifies with a public key the auditor pinned, and the digest chain holds
(digest_seq gap-free from 1, each digest naming the previous digest's key, signature and tree size, each
period starting where the previous one ended). Comparing the digests with the events (Merkle root and chain
hash at ``tree_size``) and their freshness is done in ``audit_trail.verify`` once the events were read.

The original object. The bucket is versioned and every digest is written under Object Lock COMPLIANCE, so
the version the anchor wrote can neither change nor go. The verifier lists every version of each digest
key and takes the first (oldest): that is the digest. It must be locked, and any later version or delete
marker under the key is tampering (``digest_overwritten``): the anchor never writes a key twice.

The key. A signature proves nothing about who signed unless the verifier knows the key: a PEM beside the
digests is written by whoever may write to the bucket. So a public key is used only when its fingerprint
(SHA-256 of the DER SubjectPublicKeyInfo) is pinned: a ``--key-fingerprint`` or
``AUDIT_SIGNING_KEY_FINGERPRINTS`` the operator published, or the fingerprint of a ``--public-key`` the
auditor brought. The key material is looked up, for the key a digest names, from the ``--public-key`` files,
KMS ``GetPublicKey`` (bucket only) and the PEM beside the digests; none of them is trusted for being there.
A digest whose key is not pinned is ``key_untrusted``.

Where the signature lives. S3 keeps it in the object's metadata (``x-amz-meta-signature``, as CloudTrail
does); a plain download loses metadata, so ``--save-digests`` writes it beside the body as
``<digest>.json.sig`` (the base64 text and a newline), and a directory without ``.sig`` files still works
for every digest but the newest: the next digest carries its predecessor's signature.

Which kind when a signature does not verify. An authentic signature that no longer verifies means the
body changed: ``digest_altered``. The verifier knows a signature is authentic when it equals the copy the
next digest pinned (``previous_digest_signature``) or the copy recorded in the database's ``digests``
table. Any other signature that does not verify is ``signature_invalid``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from audit_common.integrity.digest import (
    SIGNATURE_METADATA_KEY,
    Digest,
    DigestFormatError,
    digest_key,
    digest_prefix,
    key_file_id,
    load_public_key,
    parse_digest,
    public_key_key,
    verify_signature,
)
from audit_common.integrity.verify import FailureKind

__all__ = [
    "DEFAULT_ANCHOR_INTERVAL_SECONDS",
    "DEFAULT_GRACE_SECONDS",
    "FINGERPRINTS_ENV",
    "DigestCheck",
    "DigestProblem",
    "DigestRecord",
    "DigestSource",
    "DirectoryDigestSource",
    "Freshness",
    "FreshnessResult",
    "KeyTrust",
    "KmsPublicKeys",
    "S3DigestSource",
    "StoredKey",
    "UsageError",
    "check_digests",
    "default_trust",
    "no_trust_anchor_message",
    "normalise_fingerprint",
    "parse_fingerprints",
    "public_key_fingerprint",
    "save_digests",
]

_DIGEST_NAME: Final = re.compile(r"(?:^|/)(\d{10})\.json$")
_PREFIX: Final = "digests/"
_FETCH_THREADS: Final = 16
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{64}")
# KMS is asked only for a full key ARN: the region and account are then the key's own, not whatever the
# verifier's credentials default to (a bare id or an alias would resolve in the verifier's account).
_KEY_ARN: Final = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<key>[A-Za-z0-9-]+)"
)

FINGERPRINTS_ENV: Final = "AUDIT_SIGNING_KEY_FINGERPRINTS"
"""Configuration: the signing keys' published fingerprints (SHA-256 hex of the DER public key), comma-separated."""

DEFAULT_ANCHOR_INTERVAL_SECONDS: Final = 3600
"""The template's anchor schedule (``cron(0 * * * ? *)``: hourly); tests/unit keep the two together."""
DEFAULT_GRACE_SECONDS: Final = 900
"""How late an anchor run may be (a cold start, a retry) before the digests count as stale."""


class UsageError(RuntimeError):
    """The digests cannot be read as asked (no bucket, no such directory, several chains, no pinned key): exit 2."""


@dataclasses.dataclass(frozen=True, slots=True)
class DigestRecord:
    """One digest object as fetched: where it came from, its exact body and the signature stored with it.

    From the bucket also: the version taken (the first), what came after it under the same key (later
    versions and delete markers, each described with its version id), and whether the first version is
    under Object Lock COMPLIANCE (``locked``; None where a source knows nothing of locks, a directory).
    """

    digest_seq: int
    location: str
    body: bytes
    signature: str | None
    version_id: str | None = None
    later_versions: tuple[str, ...] = ()
    locked: bool | None = None
    lock: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredKey:
    """A public key stored beside the digests (PEM): its bytes, where it is, and later versions of its object."""

    data: bytes
    location: str
    later_versions: tuple[str, ...] = ()


class DigestSource(Protocol):
    """Where digests come from."""

    description: str

    def chain_ids(self) -> list[str]:
        """The chains that have digests here."""
        ...

    def records(self, chain_id: str) -> list[DigestRecord]:
        """Every digest of the chain, in digest_seq order."""
        ...

    def public_key(self, chain_id: str, signing_key_id: str) -> StoredKey | None:
        """The public key stored beside the digests for a signing key id (never trusted by itself), or None."""
        ...


# ---------------------------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _KeyVersions:
    """Every version of one S3 key: (last modified, position in the listing, version id), and delete markers."""

    versions: list[tuple[datetime, int, str]] = dataclasses.field(default_factory=list)
    markers: list[str] = dataclasses.field(default_factory=list)

    def first(self) -> str | None:
        # S3 lists a key's versions newest first; LastModified has whole seconds, so the listing breaks ties.
        if not self.versions:
            return None
        return min(self.versions, key=lambda version: (version[0], -version[1]))[2]

    def later(self) -> tuple[str, ...]:
        first = self.first()
        ordered = sorted(self.versions, key=lambda version: (version[0], -version[1]))
        later = [f"version {version_id}" for _, _, version_id in ordered if version_id != first]
        return (*later, *(f"delete marker {marker}" for marker in self.markers))


class S3DigestSource:
    """Digests in the digest bucket: the first version of each ``digests/<chain_id>/<digest_seq:010d>.json``."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
        public_key: bytes | None = None,
    ) -> None:
        """Read from ``bucket`` (``endpoint_url`` for moto or a local stack). ``public_key`` (PEM or DER) is a key
        the caller brought: ``default_trust`` pins it, as ``--public-key`` does."""
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=10,
                read_timeout=30,
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=_FETCH_THREADS,
            )
            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
        self._s3 = client
        self._bucket = bucket
        self.brought_key = public_key
        self.description = f"s3://{bucket}/{_PREFIX}"
        self._listings: dict[str, dict[str, _KeyVersions]] = {}
        self._records: dict[str, list[DigestRecord]] = {}

    def chain_ids(self) -> list[str]:
        """Chains found under ``digests/`` (in any version: a chain whose digests were all deleted is still seen)."""
        chains: set[str] = set()
        try:
            for page in self._s3.get_paginator("list_object_versions").paginate(
                Bucket=self._bucket, Prefix=_PREFIX, Delimiter="/"
            ):
                for prefix in page.get("CommonPrefixes", []):
                    chains.add(prefix["Prefix"][len(_PREFIX) :].rstrip("/"))
        except Exception as exc:
            raise UsageError(f"cannot list the object versions of s3://{self._bucket}/{_PREFIX}: {exc}") from exc
        return sorted(chains)

    def _listing(self, chain_id: str) -> dict[str, _KeyVersions]:
        """Every version and delete marker under the chain's prefix, by key (digests and public keys)."""
        if chain_id not in self._listings:
            prefix = digest_prefix(chain_id)
            keys: dict[str, _KeyVersions] = {}
            position = 0
            try:
                for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self._bucket, Prefix=prefix):
                    for item in page.get("Versions", []):
                        entry = keys.setdefault(item["Key"], _KeyVersions())
                        entry.versions.append((item["LastModified"], position, str(item["VersionId"])))
                        position += 1
                    for item in page.get("DeleteMarkers", []):
                        keys.setdefault(item["Key"], _KeyVersions()).markers.append(str(item["VersionId"]))
            except Exception as exc:
                raise UsageError(
                    f"cannot list the object versions of s3://{self._bucket}/{prefix} (the verifier reads every"
                    f" version: it needs s3:ListBucketVersions): {exc}"
                ) from exc
            self._listings[chain_id] = keys
        return self._listings[chain_id]

    def records(self, chain_id: str) -> list[DigestRecord]:
        """Every digest of the chain: its first version's body, signature and lock, and what came after it.

        Fetched a few at a time (a year is 8,760 digests) and kept: ``--save-digests`` writes the same.
        """
        if chain_id in self._records:
            return list(self._records[chain_id])
        from concurrent.futures import ThreadPoolExecutor

        prefix = digest_prefix(chain_id)
        entries: list[tuple[int, str, str, tuple[str, ...]]] = []
        for key, versions in self._listing(chain_id).items():
            match = _DIGEST_NAME.search(key)
            first = versions.first()
            # A key with delete markers only never held a digest: nothing to read (a gap is digest_missing).
            if match is None or "/" in key[len(prefix) :] or first is None:
                continue
            entries.append((int(match.group(1)), key, first, versions.later()))

        def fetch(entry: tuple[int, str, str, tuple[str, ...]]) -> DigestRecord:
            seq, key, version_id, later = entry
            try:
                response = self._s3.get_object(Bucket=self._bucket, Key=key, VersionId=version_id)
                body = response["Body"].read()
            except Exception as exc:
                raise UsageError(
                    f"cannot read s3://{self._bucket}/{key} version {version_id} (needs s3:GetObjectVersion): {exc}"
                ) from exc
            mode = response.get("ObjectLockMode")
            until = response.get("ObjectLockRetainUntilDate")
            return DigestRecord(
                digest_seq=seq,
                location=f"s3://{self._bucket}/{key} version {version_id}",
                body=body,
                signature=response.get("Metadata", {}).get(SIGNATURE_METADATA_KEY),
                version_id=version_id,
                later_versions=later,
                locked=mode == "COMPLIANCE" and until is not None,
                lock=f"lock mode {mode or 'none'}, retain until {until.isoformat() if until else 'none'}",
            )

        # boto3 clients are thread-safe; the threads are gone before any worker process is forked.
        with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
            records = list(pool.map(fetch, entries))
        records.sort(key=lambda record: record.digest_seq)
        self._records[chain_id] = records
        return list(records)

    def public_key(self, chain_id: str, signing_key_id: str) -> StoredKey | None:
        """The first version of the PEM the anchor wrote beside the digests (a lookup, never a trust anchor)."""
        key = public_key_key(chain_id, signing_key_id)
        versions = self._listing(chain_id).get(key)
        first = None if versions is None else versions.first()
        if versions is None or first is None:
            return None
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key, VersionId=first)
        except Exception:
            return None
        data: bytes = response["Body"].read()
        return StoredKey(data, f"s3://{self._bucket}/{key} version {first}", versions.later())


# ---------------------------------------------------------------------------------------------
# A directory
# ---------------------------------------------------------------------------------------------


class DirectoryDigestSource:
    """Digests downloaded to a directory: a copy of the bucket (``digests/<chain_id>/...``) or one chain's files.

    A directory has no object versions and no locks: it holds whatever was copied into it, so the checks
    that need them (``digest_overwritten``, the lock) are the bucket's. The rest holds as for the bucket.
    """

    def __init__(self, directory: Path, *, public_key: bytes | None = None) -> None:
        """Read ``directory``. ``public_key`` (PEM or DER) is a key the caller brought: ``default_trust`` pins it,
        as ``--public-key`` does (a PEM inside the directory never is)."""
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory")
        self._directory = directory
        self.brought_key = public_key
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

    def public_key(self, chain_id: str, signing_key_id: str) -> StoredKey | None:
        """``public-keys/<key id>.pem`` beside the digests (a lookup, never a trust anchor)."""
        path = self._chain_dir(chain_id) / "public-keys" / f"{key_file_id(signing_key_id)}.pem"
        return StoredKey(path.read_bytes(), str(path)) if path.is_file() else None


def save_digests(source: DigestSource, chain_id: str, records: Sequence[DigestRecord], directory: Path) -> int:
    """Write the digests and their public keys under ``directory/digests/<chain_id>/``: the layout
    ``--digests-dir`` reads back (docs/integrity.md, 8.3).

    ``<digest_seq:010d>.json`` is the body of the digest's first version, byte for byte; ``<name>.json.sig``
    its ``signature`` metadata (base64 text, then a newline); ``public-keys/<key id>.pem`` the first version
    of each signing key's PEM. What came later under a key is not copied: a copy holds the evidence only.
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
        stored = source.public_key(chain_id, key_id)
        if stored is not None:
            (target / "public-keys" / f"{key_file_id(key_id)}.pem").write_bytes(stored.data)
    return len(records)


# ---------------------------------------------------------------------------------------------
# Which keys are trusted
# ---------------------------------------------------------------------------------------------


def public_key_fingerprint(public_key: bytes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex: what
    ``aws kms get-public-key --key-id ARN --query PublicKey --output text | base64 -d | sha256sum`` prints."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = load_public_key(public_key).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as 64 lowercase hex digits (``sha256:`` prefix, colons and case accepted); ValueError if not."""
    value = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if not _FINGERPRINT.fullmatch(value):
        raise ValueError(f"{text!r} is not a SHA-256 key fingerprint (64 hex digits)")
    return value


def parse_fingerprints(value: str) -> list[str]:
    """Fingerprints from a comma- (or space-) separated list, as ``AUDIT_SIGNING_KEY_FINGERPRINTS`` holds them."""
    return [normalise_fingerprint(part) for part in re.split(r"[,\s]+", value) if part]


KmsLookup = Callable[[str], bytes | None]
"""A signing key id -> its DER public key from KMS (None when KMS does not give one)."""


class KmsPublicKeys:
    """KMS ``GetPublicKey`` for the key a digest names (by full key ARN only), with timeouts; errors kept."""

    def __init__(self, *, endpoint_url: str | None = None, client_factory: Callable[[str], Any] | None = None) -> None:
        """``endpoint_url`` (or ``AWS_ENDPOINT_URL``) for a moto server; ``client_factory(region)`` for tests."""
        self._endpoint_url = endpoint_url
        self._factory = client_factory
        self._clients: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            if self._factory is not None:
                self._clients[region] = self._factory(region)
            else:
                import boto3
                from botocore.config import Config

                config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
                self._clients[region] = boto3.client(
                    "kms", region_name=region, endpoint_url=self._endpoint_url, config=config
                )
        return self._clients[region]

    def __call__(self, signing_key_id: str) -> bytes | None:
        """The DER public key of ``signing_key_id`` from KMS, or None (the reason in ``errors``)."""
        match = _KEY_ARN.fullmatch(signing_key_id)
        if match is None:
            self.errors[signing_key_id] = "KMS not asked: the id is not a full KMS key ARN"
            return None
        try:
            response = self._client(match["region"]).get_public_key(KeyId=signing_key_id)
        except Exception as exc:
            self.errors[signing_key_id] = f"KMS GetPublicKey failed: {exc}"
            return None
        if response.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY":
            self.errors[signing_key_id] = f"KMS key usage is {response.get('KeyUsage')}, not SIGN_VERIFY"
            return None
        return bytes(response["PublicKey"])


@dataclasses.dataclass(frozen=True, slots=True)
class KeyTrust:
    """What the verifier was told to trust: pinned fingerprints and the public keys the auditor brought.

    ``public_keys`` maps each brought key's fingerprint to its bytes (PEM or DER): a key brought is pinned.
    ``kms`` looks key material up; like the PEM beside the digests it is used only when its fingerprint is
    pinned.
    """

    fingerprints: frozenset[str] = frozenset()
    public_keys: Mapping[str, bytes] = dataclasses.field(default_factory=dict)
    kms: KmsLookup | None = None

    @classmethod
    def create(
        cls, *, fingerprints: Iterable[str] = (), public_keys: Iterable[bytes] = (), kms: KmsLookup | None = None
    ) -> KeyTrust:
        """Pins from fingerprint texts and public key files' contents; ValueError naming what is unreadable."""
        pinned = frozenset(normalise_fingerprint(text) for text in fingerprints)
        brought: dict[str, bytes] = {}
        for data in public_keys:
            try:
                brought[public_key_fingerprint(data)] = bytes(data)
            except Exception as exc:  # cryptography raises ValueError, TypeError or UnsupportedAlgorithm
                raise ValueError(f"not a PEM or DER public key: {exc}") from exc
        return cls(fingerprints=pinned, public_keys=brought, kms=kms)

    @property
    def pinned(self) -> frozenset[str]:
        """Every fingerprint a key may have to be trusted."""
        return self.fingerprints | frozenset(self.public_keys)

    @property
    def anchored(self) -> bool:
        """Whether anything at all is trusted (without, no signature can prove anything)."""
        return bool(self.pinned)


def default_trust(source: DigestSource | None = None, environ: Mapping[str, str] | None = None) -> KeyTrust:
    """The configured trust: ``AUDIT_SIGNING_KEY_FINGERPRINTS``, the key the caller gave the source (if any),
    and KMS look-ups when reading the bucket."""
    value = (os.environ if environ is None else environ).get(FINGERPRINTS_ENV, "")
    try:
        fingerprints = parse_fingerprints(value)
    except ValueError as exc:
        raise UsageError(f"{FINGERPRINTS_ENV}: {exc}") from exc
    brought: bytes | None = getattr(source, "brought_key", None)
    kms = KmsPublicKeys() if isinstance(source, S3DigestSource) else None
    try:
        return KeyTrust.create(fingerprints=fingerprints, public_keys=[] if brought is None else [brought], kms=kms)
    except ValueError as exc:
        raise UsageError(f"the public key given: {exc}") from exc


def no_trust_anchor_message() -> str:
    """What to say when the verifier was given digests but no key to trust (exit 2)."""
    return (
        "no trusted signing key: a digest's signature proves nothing unless the key that made it is pinned."
        " Pass --key-fingerprint HEX (repeatable), or set "
        f"{FINGERPRINTS_ENV}=HEX[,HEX...], with the SHA-256 fingerprint the operator publishes for the"
        " signing key (`audit-trail keys fingerprint --key-id <signing key ARN>`, or `aws kms get-public-key"
        " --key-id <ARN> --query PublicKey --output text | base64 -d | sha256sum`); or pass --public-key FILE"
        " with a public key you obtained yourself. A public key found beside the digests is never trusted by itself."
    )


# ---------------------------------------------------------------------------------------------
# Freshness (checked once the events are read: the newest event's arrival counts)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Freshness:
    """How old the newest digest may be: the anchor interval plus a grace, as of ``as_of`` (default: now)."""

    anchor_interval_seconds: int = DEFAULT_ANCHOR_INTERVAL_SECONDS
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        if self.anchor_interval_seconds <= 0 or self.grace_seconds < 0:
            raise ValueError("the anchor interval must be positive and the grace not negative")
        if self.as_of is not None and self.as_of.tzinfo is None:
            raise ValueError("as_of must say its time zone")

    @property
    def max_age_seconds(self) -> int:
        """The newest digest's period must have ended no longer ago than this."""
        return self.anchor_interval_seconds + self.grace_seconds

    def evaluate(self, newest: Digest, newest_received_at: str | None, now: datetime) -> FreshnessResult:
        """The reference time (``as_of`` or ``now``, never before the newest event arrived) and the newest
        digest's age at it."""
        reference, source = (self.as_of, "--as-of") if self.as_of is not None else (now, "now")
        received = None if newest_received_at is None else _parse_time(newest_received_at)
        if received is not None and received > reference:
            reference, source = received, "the newest event's received_at"
        age = (reference - _parse_time(newest.period_end)).total_seconds()
        return FreshnessResult(
            reference=reference,
            reference_source=source,
            newest_received_at=newest_received_at,
            newest_digest_seq=newest.digest_seq,
            newest_period_end=newest.period_end,
            age_seconds=age,
            policy=self,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class FreshnessResult:
    """The newest digest's age at the reference time, and whether that makes the digests stale."""

    reference: datetime
    reference_source: str
    newest_received_at: str | None
    newest_digest_seq: int
    newest_period_end: str
    age_seconds: float
    policy: Freshness

    @property
    def stale(self) -> bool:
        """The newest digest is older than the anchor interval plus the grace."""
        return self.age_seconds > self.policy.max_age_seconds

    def as_dict(self) -> dict[str, Any]:
        """For ``--json`` (``digests.freshness``)."""
        from audit_common.integrity.digest import digest_timestamp

        return {
            "stale": self.stale,
            "reference_time": digest_timestamp(self.reference),
            "reference_source": self.reference_source,
            "newest_event_received_at": self.newest_received_at,
            "newest_digest_seq": self.newest_digest_seq,
            "newest_digest_period_end": self.newest_period_end,
            "newest_digest_age_seconds": round(self.age_seconds, 3),
            "max_age_seconds": self.policy.max_age_seconds,
            "anchor_interval_seconds": self.policy.anchor_interval_seconds,
            "grace_seconds": self.policy.grace_seconds,
        }


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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

    ``proven`` are the parsed digests that are original, signed by a pinned key, and whose chain links and
    periods hold, in order, up to the first problem (a digest after a broken link proves nothing about the
    history before it). ``problem`` is the first problem, if any. ``fingerprints`` maps signing key ids to
    their public key's fingerprint, ``key_sources`` to where the key used came from (or why none was).
    """

    chain_id: str
    total: int
    proven: list[Digest] = dataclasses.field(default_factory=list)
    problem: DigestProblem | None = None
    fingerprints: dict[str, str] = dataclasses.field(default_factory=dict)
    key_sources: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class _ResolvedKey:
    """The pinned key material to verify a signing key's digests with, or why there is none."""

    candidates: tuple[bytes, ...]
    fingerprint: str | None
    source: str
    problem: tuple[FailureKind, str] | None = None


def _resolve_key(source: DigestSource, chain_id: str, signing_key_id: str, trust: KeyTrust) -> _ResolvedKey:
    """Key material for ``signing_key_id``: the brought key with the fingerprint KMS or the stored PEM gives,
    else KMS's or the stored PEM when its fingerprint is pinned; else the brought keys when nothing names
    the key's material at all. Anything else is untrusted."""
    located: list[tuple[str, bytes]] = []
    notes: list[str] = []
    if trust.kms is not None:
        der = trust.kms(signing_key_id)
        if der is not None:
            located.append(("KMS GetPublicKey", der))
        else:
            errors = getattr(trust.kms, "errors", {})
            notes.append(str(errors.get(signing_key_id, "KMS gave no key")))
    stored = source.public_key(chain_id, signing_key_id)
    if stored is not None:
        if stored.later_versions:
            return _ResolvedKey(
                (),
                None,
                "overwritten",
                (
                    FailureKind.DIGEST_OVERWRITTEN,
                    f"the public key object of signing key {signing_key_id} ({stored.location}) was overwritten:"
                    f" the bucket holds {', '.join(stored.later_versions)} after its first version",
                ),
            )
        located.append((stored.location, stored.data))
    else:
        notes.append(f"no public key stored beside the digests in {source.description}")
    seen: list[tuple[str, str]] = []
    for where, material in located:
        try:
            fingerprint = public_key_fingerprint(material)
        except Exception:  # unreadable material proves nothing; the next source may still
            notes.append(f"{where}: not a readable public key")
            continue
        if fingerprint in trust.public_keys:
            return _ResolvedKey((trust.public_keys[fingerprint],), fingerprint, f"--public-key (the key {where} gives)")
        if fingerprint in trust.fingerprints:
            return _ResolvedKey((material,), fingerprint, f"{where}, fingerprint pinned")
        seen.append((where, fingerprint))
    if not seen and trust.public_keys:
        brought = tuple(trust.public_keys.values())
        only = next(iter(trust.public_keys)) if len(brought) == 1 else None
        return _ResolvedKey(brought, only, "--public-key")
    pins = ", ".join(sorted(pin[:16] + "..." for pin in trust.pinned)) or "none"
    if seen:
        found = "; ".join(f"{where} gives fingerprint {fingerprint}" for where, fingerprint in seen)
        message = (
            f"signing key {signing_key_id} is not one you trust: {found}, and the pinned fingerprints are {pins}"
            " (a key found in KMS or beside the digests counts only when its fingerprint is pinned)"
        )
        return _ResolvedKey((), seen[0][1], "untrusted", (FailureKind.KEY_UNTRUSTED, message))
    message = (
        f"no public key for signing key {signing_key_id} ({'; '.join(notes)}): pass --public-key FILE with the key"
        " you trust"
    )
    return _ResolvedKey((), None, "not found", (FailureKind.KEY_UNTRUSTED, message))


def check_digests(
    source: DigestSource,
    chain_id: str,
    *,
    trust: KeyTrust,
    recorded_signatures: Mapping[int, str] | None = None,
    recorded_count: int | None = None,
) -> DigestCheck:
    """Check every digest of ``chain_id``: original version, format, pinned key, signature, links and periods.

    ``recorded_signatures`` (digest_seq -> signature, from the database's ``digests`` table when it can
    be read) only helps to name a failure (see the module docstring); ``recorded_count`` is how many
    digests the database says were written, so a deleted newest digest is seen too. Raises ``UsageError``
    when ``trust`` pins nothing.
    """
    if not trust.anchored:
        raise UsageError(no_trust_anchor_message())
    return _DigestChecker(source, chain_id, trust, dict(recorded_signatures or {})).run(recorded_count)


class _DigestChecker:
    """One pass over a chain's digests, in digest_seq order, stopping at the first problem."""

    def __init__(self, source: DigestSource, chain_id: str, trust: KeyTrust, recorded: dict[int, str]) -> None:
        self.source = source
        self.trust = trust
        self.recorded = recorded
        self.by_seq: dict[int, DigestRecord] = {}
        self.check = DigestCheck(chain_id=chain_id, total=0)
        self._parsed: dict[int, Digest | None] = {}
        self._keys: dict[str, _ResolvedKey] = {}
        self._verified_keys: set[str] = set()

    def run(self, recorded_count: int | None) -> DigestCheck:
        records = self.source.records(self.check.chain_id)
        for fetched in records:
            self.by_seq.setdefault(fetched.digest_seq, fetched)
        total = max([len(records), *(self.by_seq or [0]), recorded_count or 0])
        self.check.total = total
        previous: tuple[Digest, str] | None = None
        for seq in range(1, total + 1):
            outcome = self._one(seq, total, previous)
            if isinstance(outcome, DigestProblem):
                self.check.problem = outcome
                return self.check
            self._verified_keys.add(outcome[0].signing_key_id)
            self.check.proven.append(outcome[0])
            previous = outcome
        return self.check

    def _parse(self, seq: int) -> Digest | None:
        if seq not in self._parsed:
            record = self.by_seq.get(seq)
            try:
                self._parsed[seq] = None if record is None else parse_digest(record.body)
            except DigestFormatError:
                self._parsed[seq] = None
        return self._parsed[seq]

    def _key(self, signing_key_id: str) -> _ResolvedKey:
        if signing_key_id not in self._keys:
            key = _resolve_key(self.source, self.check.chain_id, signing_key_id, self.trust)
            self._keys[signing_key_id] = key
            if key.fingerprint is not None:
                self.check.fingerprints.setdefault(signing_key_id, key.fingerprint)
            self.check.key_sources.setdefault(signing_key_id, key.source)
        return self._keys[signing_key_id]

    def _one(self, seq: int, total: int, previous: tuple[Digest, str] | None) -> tuple[Digest, str] | DigestProblem:
        """Digest ``seq`` and the signature it verified with, or its problem."""
        record = self.by_seq.get(seq)
        if record is None:
            return DigestProblem(
                FailureKind.DIGEST_MISSING,
                seq,
                f"digest {seq} is missing from {self.source.description}"
                + ("" if seq < total else " (the database records it)"),
            )
        evidence = _evidence_problem(record)
        if evidence is not None:
            return evidence
        try:
            digest = parse_digest(record.body)
        except DigestFormatError as exc:
            return DigestProblem(FailureKind.DIGEST_ALTERED, seq, f"digest {seq} ({record.location}): {exc}")
        if digest.digest_seq != seq or digest.chain_id != self.check.chain_id:
            return DigestProblem(
                FailureKind.DIGEST_ALTERED,
                seq,
                f"digest {seq} ({record.location}) says it is digest {digest.digest_seq} of chain {digest.chain_id!r}",
            )
        key = self._key(digest.signing_key_id)
        if key.problem is not None:
            return DigestProblem(key.problem[0], seq, f"digest {seq}: {key.problem[1]}")
        # The signature: the stored one, else the copy the next digest pinned (a download without .sig).
        successor = self._parse(seq + 1)
        pinned = None if successor is None else successor.previous_digest_signature
        recorded = self.recorded.get(seq)
        signature = next((value for value in (record.signature, pinned, recorded) if value is not None), None)
        if signature is None or not _any_verifies(record.body, signature, key.candidates, digest.signing_algorithm):
            # An authentic signature (the copy the next digest pinned, or the database's) that fails means a
            # changed body, provided the key is right: it verified an earlier digest, or verifies the next one.
            authentic = signature is not None and signature in {pinned, recorded}
            next_record = self.by_seq.get(seq + 1)
            key_right = bool(self._verified_keys) or (
                successor is not None
                and next_record is not None
                and _verifies(next_record, successor, self._key(successor.signing_key_id), self.recorded.get(seq + 1))
            )
            return _signature_problem(record, digest, signature, altered=authentic and key_right)
        if previous is not None:
            problem = _link_problem(previous[0], previous[1], digest)
            if problem is not None:
                if problem.digest_seq == previous[0].digest_seq:
                    self.check.proven.pop()  # the predecessor was replaced: it proves nothing
                return problem
            if digest.period_start != previous[0].period_end:
                return DigestProblem(
                    FailureKind.DIGEST_DISCONTINUOUS,
                    seq,
                    f"digest {seq}'s period starts at {digest.period_start}, but digest {previous[0].digest_seq}'s"
                    f" ended at {previous[0].period_end}: the anchor windows must tile, each starting where the"
                    " previous one ended",
                )
        return digest, signature


def _evidence_problem(record: DigestRecord) -> DigestProblem | None:
    """Is this the original object? Later versions or delete markers, or a first version that is not locked."""
    seq = record.digest_seq
    if record.later_versions:
        return DigestProblem(
            FailureKind.DIGEST_OVERWRITTEN,
            seq,
            f"digest {seq} was overwritten: the bucket holds {', '.join(record.later_versions)} after its first"
            f" version {record.version_id} (the anchor writes each digest once; the first version is the digest,"
            " anything later under its key is tampering)",
        )
    if record.locked is False:
        return DigestProblem(
            FailureKind.DIGEST_ALTERED,
            seq,
            f"digest {seq}'s first version ({record.location}) is not under Object Lock in COMPLIANCE mode"
            f" ({record.lock}): nothing shows it is the original the anchor locked (reading the lock needs"
            " s3:GetObjectRetention)",
        )
    return None


def _any_verifies(body: bytes, signature: str, keys: Sequence[bytes], algorithm: str) -> bool:
    return any(verify_signature(body, signature, key, algorithm) for key in keys)


def _verifies(record: DigestRecord, digest: Digest, key: _ResolvedKey, recorded: str | None) -> bool:
    """Does ``record`` (parsed as ``digest``) verify with a pinned key, by its own signature or the database's?"""
    signature = record.signature or recorded
    return (
        key.problem is None
        and signature is not None
        and _any_verifies(record.body, signature, key.candidates, digest.signing_algorithm)
    )


def _signature_problem(record: DigestRecord, digest: Digest, signature: str | None, *, altered: bool) -> DigestProblem:
    """The failure of a digest whose signature does not verify with its pinned key: ``digest_altered`` when the
    signature is authentic and the key right (so the body changed), else ``signature_invalid``."""
    seq = digest.digest_seq
    if altered:
        return DigestProblem(
            FailureKind.DIGEST_ALTERED,
            seq,
            f"digest {seq} ({record.location}) was changed after it was signed: its own signature, "
            "as the next digest or the database recorded it, no longer verifies its body",
        )
    return DigestProblem(
        FailureKind.SIGNATURE_INVALID,
        seq,
        f"digest {seq} ({record.location}): "
        + ("no signature" if signature is None else "the signature does not verify")
        + f" with the pinned key for {digest.signing_key_id} ({digest.signing_algorithm})",
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
