"""canonical_bytes is RFC 8785, byte for byte, and agrees with the reference implementation (rfc8785)."""

from __future__ import annotations

import enum
import json
import math
import struct
import sys
from collections import OrderedDict
from decimal import Decimal
from typing import Any
from unittest import mock

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit_common.integrity import CanonicalizationError, canonical_bytes, canonical_number
from audit_common.integrity import canonical as canonical_module

MAX_EXACT_INT = 2**53


def as_reference_input(value: Any) -> Any:
    """What rfc8785.dumps must see to agree with us: integers beyond 2**53 as the double they denote."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if -MAX_EXACT_INT < value < MAX_EXACT_INT else float(value)
    if isinstance(value, dict):
        return {key: as_reference_input(item) for key, item in value.items()}
    return [as_reference_input(item) for item in value]


def double(bits: str) -> float:
    """The IEEE 754 double with the given 16 hex digits."""
    return float(struct.unpack(">d", bytes.fromhex(bits))[0])


# RFC 8785 Appendix B: IEEE 754 bit patterns and their JCS text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), RFC8785_NUMBERS)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    # Given an IEEE double from the RFC's table, when canonicalised, then it prints as the RFC says
    number = double(bits)
    assert canonical_bytes(number) == expected.encode()
    assert canonical_bytes([number]) == f"[{expected}]".encode()
    assert canonical_number(number) == expected
    assert rfc8785.dumps(number) == expected.encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_refused(bits: str) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_bytes({"x": double(bits)})
    with pytest.raises(CanonicalizationError):
        canonical_number(double(bits))


def test_rfc8785_section_3_2_2_example() -> None:
    # Given the RFC's sample input (parsed as JSON), then the output is the RFC's sample output
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_bytes(json.loads(text)) == expected
    assert rfc8785.dumps(json.loads(text)) == expected


def test_rfc8785_section_3_2_3_sorting_example() -> None:
    # Given keys whose UTF-16 order differs from code-point order (the emoji is a surrogate pair)
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    # Then they come out in UTF-16 order: the emoji before U+FB33
    expected_order = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    output = canonical_bytes(value)
    assert list(json.loads(output)) == expected_order
    assert output == rfc8785.dumps(value)
    # and orjson alone would get this wrong, which is why such keys take the slow path
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) != output


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.0, "0"),
        (1e21, "1e+21"),
        (10**21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (1e16, "10000000000000000"),
        (2.0**60, "1152921504606847000"),
        (2**60, "1152921504606847000"),
        (2**53, "9007199254740992"),
        (2**53 + 1, "9007199254740992"),
        (-(2**53) - 1, "-9007199254740992"),
        (12.5, "12.5"),
        (-1.5e-7, "-1.5e-7"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.1, "0.1"),
        (100, "100"),
        (-7, "-7"),
    ],
)
def test_numbers_are_ecmascript_doubles(number: float, expected: str) -> None:
    assert canonical_number(number) == expected
    assert canonical_bytes({"n": number}) == f'{{"n":{expected}}}'.encode()


def test_integers_beyond_2_53_are_the_double_they_denote() -> None:
    # Given the text PostgreSQL JSONB prints back for 1e21, parsed by Python as an int
    from_jsonb = json.loads("1000000000000000000000")
    assert isinstance(from_jsonb, int)
    # Then it canonicalises exactly as the float that was sealed
    assert canonical_bytes({"n": from_jsonb}) == canonical_bytes({"n": 1e21}) == b'{"n":1e+21}'


def test_integers_too_large_for_a_double_are_refused() -> None:
    with pytest.raises(CanonicalizationError):
        canonical_bytes([10**400])


@pytest.mark.parametrize(
    "value",
    [
        {1: "x"},
        {("a",): 1},
        {"a": {2: 1}},
        {"a": object()},
        [b"bytes"],
        {"d": Decimal("1.5")},
        {"s": {1, 2}},
        "\ud800",
        {"\udfff": 1},
        ["ok", "lone \ud83d surrogate"],
        {"x": math.nan},
        [math.inf],
        [-math.inf],
    ],
)
def test_values_outside_json_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_bytes(value)


def test_canonical_number_refuses_non_numbers() -> None:
    for value in (True, "1", None):
        with pytest.raises(CanonicalizationError):
            canonical_number(value)  # type: ignore[arg-type]


def test_subclasses_of_json_types_print_as_their_base_type() -> None:
    class Colour(str, enum.Enum):  # noqa: UP042 - the mixin form, whose str() is "Colour.RED"
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    class Tag(enum.StrEnum):
        GDPR = "gdpr"

    class Key(str):
        pass

    value: dict[str, Any] = {
        "colour": Colour.RED,
        "level": Level.HIGH,
        "tags": (Tag.GDPR, "sox"),
        "ordered": OrderedDict([("b", 1), ("a", 2.0)]),
        Key("k"): [Key("v")],
    }
    expected = b'{"colour":"red","k":["v"],"level":3,"ordered":{"a":2,"b":1},"tags":["gdpr","sox"]}'
    assert canonical_bytes(value) == expected
    assert rfc8785.dumps(value) == expected


def test_nesting_beyond_orjson_limit_falls_back_to_the_reference() -> None:
    # Given nesting deeper than orjson accepts (254) but within Python's recursion limit
    value: Any = 1.5
    for _ in range(300):
        value = [value]
    # Then the reference serializer answers, identically
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_absurd_nesting_is_refused_not_crashing() -> None:
    value: Any = None
    for _ in range(sys.getrecursionlimit() + 100):
        value = {"a": value}
    with pytest.raises(CanonicalizationError):
        canonical_bytes(value)


def test_unchanged_input_is_not_mutated() -> None:
    value = {"a": [1.0, {"b": -0.0}], "c": 10**22}
    snapshot = repr(value)
    assert canonical_bytes(value) == b'{"a":[1,{"b":0}],"c":1e+22}'
    assert repr(value) == snapshot


# --- exhaustive string escaping -------------------------------------------------------------------

ALL_CODE_POINTS = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
CHUNK = 8192
CHUNKS = [ALL_CODE_POINTS[start : start + CHUNK] for start in range(0, len(ALL_CODE_POINTS), CHUNK)]


def test_escaping_matches_the_reference_for_every_code_point() -> None:
    # Given every Unicode scalar value, as one-character strings and inside one long string
    for chunk in CHUNKS:
        singles = list(chunk)
        joined = "".join(chunk)
        # Then orjson on its own escapes exactly as RFC 8785 (the premise of the fast path)...
        assert orjson.dumps(singles) == rfc8785.dumps(singles)
        assert orjson.dumps(joined) == rfc8785.dumps(joined)
        # ...and so does canonical_bytes
        assert canonical_bytes(singles) == rfc8785.dumps(singles)


def test_keys_match_the_reference_for_every_code_point() -> None:
    # Given every Unicode scalar value as an object key (escaping and ordering of keys)
    for chunk in CHUNKS:
        value = dict.fromkeys(chunk, 0)
        reference = rfc8785.dumps(value)
        assert canonical_bytes(value) == reference
        if max(chunk) <= "\uffff":
            # For BMP keys orjson's order is UTF-16 order: the fast path is exact on its own.
            assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == reference


def test_escaped_forms() -> None:
    assert canonical_bytes('\x00\x08\t\n\x0b\x0c\r\x1f\x7f"\\/\u2028') == (
        b'"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\\"\\\\/\xe2\x80\xa8"'
    )


# --- property: agreement with the reference on arbitrary JSON -------------------------------------

any_text = st.text(st.characters(codec="utf-8"), max_size=12)
non_bmp_text = st.text(st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF), min_size=1, max_size=3)
keys = st.one_of(any_text, non_bmp_text, st.sampled_from(["a", "b", "\ufb33", "\U0001f600", "\u20ac", ""]))
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, min_value=-1e-300, max_value=1e-300),
    st.sampled_from([0.0, -0.0, 1e21, 1e-7, 1e-6, 1e16, 2.0**53, 2.0**53 + 2, 5e-324, 1.7976931348623157e308]),
    st.integers(min_value=0, max_value=2**64 - 1)
    .map(lambda bits: struct.unpack(">d", bits.to_bytes(8, "big"))[0])
    .filter(math.isfinite),
)
integers = st.one_of(
    st.integers(min_value=-(2**53), max_value=2**53),
    st.integers(min_value=-(10**300), max_value=10**300),
    st.sampled_from([2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, 10**21, 2**64]),
)
scalars = st.one_of(st.none(), st.booleans(), integers, floats, any_text, non_bmp_text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_agrees_with_rfc8785_on_arbitrary_json(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(as_reference_input(value))


@settings(max_examples=2000, deadline=None)
@given(floats)
def test_every_float_agrees_with_rfc8785(number: float) -> None:
    assert canonical_bytes(number) == rfc8785.dumps(number)
    assert canonical_number(number) == rfc8785.dumps(number).decode()


# --- JSONB round trip -----------------------------------------------------------------------------


def jsonb_text(number: float) -> str:
    """What PostgreSQL prints for a JSON number: numeric, in plain decimal notation, no exponent."""
    plain = format(Decimal(json.dumps(number)), "f")
    return "0" if plain.lstrip("-").strip("0.") == "" else plain  # numeric has no negative zero


def through_jsonb(value: Any, loads: Any) -> Any:
    """Simulate storing ``value`` in a JSONB column and reading it back with a JSON parser."""
    if isinstance(value, float):
        return loads(jsonb_text(value))
    if isinstance(value, dict):
        return {key: through_jsonb(item, loads) for key, item in value.items()}
    if isinstance(value, list):
        return [through_jsonb(item, loads) for item in value]
    return value


@settings(max_examples=1000, deadline=None)
@given(floats)
def test_a_float_read_back_from_jsonb_hashes_the_same(number: float) -> None:
    # Given a float sealed in details, stored in JSONB, and parsed back by json (psycopg) or orjson
    original = canonical_bytes({"n": number})
    for loads in (json.loads, orjson.loads):
        read_back = through_jsonb({"n": number}, loads)
        # Then its canonical bytes are unchanged, though the Python type may differ (int for 1e21)
        assert canonical_bytes(read_back) == original


def test_jsonb_round_trip_examples() -> None:
    for number, printed in [(1e21, "1000000000000000000000"), (1e-7, "0.0000001"), (-0.0, "0"), (1.5, "1.5")]:
        assert jsonb_text(number) == printed
        assert canonical_bytes(json.loads(printed)) == canonical_bytes(number)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_read_back_from_jsonb_hashes_the_same(value: Any) -> None:
    # Integers beyond 2**53 are refused at ingest; only values that can be stored are compared here.
    try:
        original = canonical_bytes(value)
    except CanonicalizationError:
        return
    assert canonical_bytes(through_jsonb(value, json.loads)) == original


bmp_keys = st.text(st.characters(max_codepoint=0xFFFF, codec="utf-8"), max_size=8)
bmp_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), integers, floats, any_text, non_bmp_text),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(bmp_keys, children, max_size=5)),
    max_leaves=30,
)


def _no_reference(value: Any) -> bytes:
    raise AssertionError("the slow path was taken")


@settings(max_examples=500, deadline=None)
@given(bmp_json_values)
def test_fast_path_alone_agrees_with_rfc8785(value: Any) -> None:
    # Given keys within the BMP (non-BMP characters still appear in values), the slow path is never
    # taken: the agreement is the fast path's own.
    with mock.patch.object(canonical_module, "_reference_bytes", _no_reference):
        fast = canonical_bytes(value)
    assert fast == rfc8785.dumps(as_reference_input(value))
