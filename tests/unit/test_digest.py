"""The digest format: canonical bytes, field checks, S3 key layout and signature verification."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from audit_common.integrity.digest import (
    EMPTY_ROOT_HEX,
    GENESIS_CHAIN_HASH_HEX,
    Digest,
    DigestFormatError,
    digest_bytes,
    digest_key,
    key_file_id,
    parse_digest,
    public_key_key,
    public_key_pem,
    verify_signature,
)

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def digest_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "version": 1,
        "chain_id": "default",
        "digest_seq": 2,
        "tree_size": 10,
        "root_hash": "ab" * 32,
        "chain_hash": "cd" * 32,
        "previous_tree_size": 4,
        "period_start": "2026-11-27T08:00:00.000000Z",
        "period_end": "2026-11-27T09:00:00.000000Z",
        "oldest_event_time": "2026-11-27T08:01:00.123456Z",
        "newest_event_time": "2026-11-27T08:59:00.000001Z",
        "created_at": "2026-11-27T09:00:00.500000Z",
        "previous_digest_key": "digests/default/0000000001.json",
        "previous_digest_signature": base64.b64encode(b"previous signature").decode(),
        "signing_key_id": KEY_ARN,
        "signing_algorithm": "ECDSA_SHA_256",
    }
    fields.update(overrides)
    return fields


def test_digest_bytes_are_rfc8785_and_parse_back_to_the_same_digest() -> None:
    # Given a digest
    digest = Digest.model_validate(digest_fields())
    # When it is serialised and parsed back
    body = digest_bytes(digest)
    # Then the bytes are sorted-key JSON without whitespace, and parsing gives the same digest
    assert body == orjson.dumps(digest_fields(), option=orjson.OPT_SORT_KEYS)
    assert body.startswith(b'{"chain_hash":"cdcd')
    assert parse_digest(body) == digest


def test_parse_refuses_non_canonical_bodies_unless_asked_not_to() -> None:
    pretty = orjson.dumps(digest_fields(), option=orjson.OPT_INDENT_2)
    with pytest.raises(DigestFormatError, match="canonical"):
        parse_digest(pretty)
    assert parse_digest(pretty, require_canonical=False).digest_seq == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"root_hash": "AB" * 32}, "root_hash"),
        ({"tree_size": 3}, "previous_tree_size"),
        ({"digest_seq": 0}, "digest_seq"),
        ({"digest_seq": True}, "digest_seq"),
        ({"tree_size": "10"}, "tree_size"),
        ({"created_at": "2026-11-27T09:00:00Z"}, "created_at"),
        ({"signing_algorithm": "HMAC_SHA_256"}, "signing_algorithm"),
        ({"chain_id": "../other"}, "chain_id"),
        ({"extra": 1}, "extra"),
        ({"version": 2}, "version"),
        ({"oldest_event_time": None}, "both set or both null"),
        ({"oldest_event_time": None, "newest_event_time": None}, "no new events"),
        ({"previous_digest_key": None}, "previous digest"),
        ({"digest_seq": 1}, "first digest"),
        ({"tree_size": 0, "previous_tree_size": 0, "oldest_event_time": None, "newest_event_time": None}, "empty"),
    ],
)
def test_parse_names_the_bad_field(overrides: dict[str, Any], message: str) -> None:
    body = orjson.dumps(digest_fields(**overrides), option=orjson.OPT_SORT_KEYS)
    with pytest.raises(DigestFormatError, match=message):
        parse_digest(body)


def test_parse_refuses_what_is_not_a_json_object() -> None:
    with pytest.raises(DigestFormatError, match="not JSON"):
        parse_digest(b"{not json")
    with pytest.raises(DigestFormatError, match="not a JSON object"):
        parse_digest(b"[1]")


def test_the_first_and_an_empty_digest_are_valid() -> None:
    first = Digest.model_validate(
        digest_fields(
            digest_seq=1,
            tree_size=0,
            previous_tree_size=0,
            root_hash=EMPTY_ROOT_HEX,
            chain_hash=GENESIS_CHAIN_HASH_HEX,
            oldest_event_time=None,
            newest_event_time=None,
            previous_digest_key=None,
            previous_digest_signature=None,
        )
    )
    assert first.root_hash == hashlib.sha256(b"").hexdigest()
    assert parse_digest(digest_bytes(first)) == first


def test_s3_layout_sorts_by_digest_seq_and_names_keys_safely() -> None:
    keys = [digest_key("default", seq) for seq in (1, 2, 10, 9_999_999)]
    assert keys[0] == "digests/default/0000000001.json"
    assert keys == sorted(keys)
    assert key_file_id(KEY_ARN) == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert key_file_id("local/key:one two") == "one_two"
    assert public_key_key("default", KEY_ARN) == "digests/default/public-keys/1234abcd-12ab-34cd-56ef-1234567890ab.pem"
    with pytest.raises(ValueError, match="chain id"):
        digest_key("a/b", 1)
    with pytest.raises(ValueError, match="starts at 1"):
        digest_key("default", 0)


def _der(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


MESSAGE = digest_bytes(Digest.model_validate(digest_fields()))


def test_ecdsa_signature_verifies_with_der_and_pem_and_fails_on_change(ec_key: ec.EllipticCurvePrivateKey) -> None:
    signature = base64.b64encode(ec_key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))).decode()
    der = _der(ec_key)
    assert verify_signature(MESSAGE, signature, der, "ECDSA_SHA_256")
    assert verify_signature(MESSAGE, signature, public_key_pem(der), "ECDSA_SHA_256")
    assert not verify_signature(MESSAGE.replace(b'"tree_size":10', b'"tree_size":11'), signature, der, "ECDSA_SHA_256")
    assert not verify_signature(MESSAGE, signature, der, "ECDSA_SHA_384")
    assert not verify_signature(MESSAGE, signature, der, "RSASSA_PKCS1_V1_5_SHA_256")  # wrong key type
    assert not verify_signature(MESSAGE, signature, der, "NOT_AN_ALGORITHM")
    assert not verify_signature(MESSAGE, "not base64!", der, "ECDSA_SHA_256")
    assert not verify_signature(MESSAGE, signature, b"not a key", "ECDSA_SHA_256")
    other = ec.generate_private_key(ec.SECP256R1())
    assert not verify_signature(MESSAGE, signature, _der(other), "ECDSA_SHA_256")


def test_rsa_signatures_verify(rsa_key: rsa.RSAPrivateKey) -> None:
    der = _der(rsa_key)
    pkcs1 = base64.b64encode(rsa_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())).decode()
    pss = base64.b64encode(
        rsa_key.sign(MESSAGE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    ).decode()
    assert verify_signature(MESSAGE, pkcs1, der, "RSASSA_PKCS1_V1_5_SHA_256")
    assert verify_signature(MESSAGE, pss, der, "RSASSA_PSS_SHA_256")
    assert not verify_signature(MESSAGE, pkcs1, der, "RSASSA_PSS_SHA_256")
    assert not verify_signature(MESSAGE, pss, der, "ECDSA_SHA_256")


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_byte_breaks_the_signature(position: int, flip: int) -> None:
    # A fixed key keeps hypothesis examples cheap and reproducible across runs of this module.
    key = _FIXED_EC_KEY
    signature = key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    altered_message = bytearray(MESSAGE)
    altered_message[position % len(MESSAGE)] ^= flip
    assert not verify_signature(
        bytes(altered_message), base64.b64encode(signature).decode(), _der(key), "ECDSA_SHA_256"
    )
    altered_signature = bytearray(signature)
    altered_signature[position % len(signature)] ^= flip
    assert not verify_signature(MESSAGE, base64.b64encode(altered_signature).decode(), _der(key), "ECDSA_SHA_256")


_FIXED_EC_KEY = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
