"""canonical_bytes is RFC 8785, byte for byte, and agrees with the reference implementation (rfc8785)."""

from __future__ import annotations

import enum
import json
import math
import random
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
from tests.support.events import make_event, realistic_details

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
    # Whatever canonicalises is compared (inexact numbers are refused at ingest, but read back the same).
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


# --- exact numbers: is_exact_number, inexact_numbers, might_hold_inexact_number -------------------


def reference_is_exact(number: int | Decimal) -> bool:
    """The definition, written independently: the value of rfc8785's text for the nearest double is the value."""
    if isinstance(number, Decimal) and not number.is_finite():
        return False
    try:
        nearest = float(str(number))  # correctly rounded by Python; inf beyond the range
    except OverflowError:
        return False
    if not math.isfinite(nearest):
        return False
    return Decimal(rfc8785.dumps(nearest).decode()) == Decimal(number)


EXACT_NUMBERS: list[int | Decimal] = [
    0,
    -1,
    2**53,
    -(2**53),
    9007199254740994,
    10**21,
    -(10**21),
    10**18,
    10**300,
    Decimal("0.1"),
    Decimal("1e21"),
    Decimal("1E+21"),
    Decimal("1.0"),
    Decimal("-0"),
    Decimal("-0.0e-500"),
    Decimal("5e-324"),
    Decimal("-5e-324"),
    Decimal("1.5e-323"),
    Decimal("2.2250738585072014e-308"),
    Decimal("1.7976931348623157e308"),
    Decimal("1e-7"),
    Decimal("0.30000000000000004"),
    Decimal("9007199254740993e0") - 1,  # 9007199254740992 as a Decimal
    Decimal("333333333.3333333"),
]
INEXACT_NUMBERS: list[int | Decimal] = [
    9007199254740993,
    -9007199254740993,
    2**53 + 1,
    2**60,
    2**64,
    10**21 + 1,
    10**400,
    Decimal("9007199254740993"),
    Decimal("0.10000000000000001"),
    Decimal("0.1000000000000000055511151231257827"),  # the exact value of the double 0.1
    Decimal("1e-400"),
    Decimal("-1e-400"),
    Decimal("1e400"),
    Decimal("1.4e-323"),
    Decimal("2.4703282292062328e-324"),  # rounds to 5e-324
    Decimal("4.9406564584124654e-324"),  # the exact-ish value of 5e-324, printed as 5e-324
    Decimal("1.7976931348623159e308"),  # rounds to infinity
    Decimal("333333333.33333329"),
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
]


@pytest.mark.parametrize("number", EXACT_NUMBERS, ids=str)
def test_exact_numbers(number: int | Decimal) -> None:
    assert canonical_module.is_exact_number(number)
    assert reference_is_exact(number)


@pytest.mark.parametrize("number", INEXACT_NUMBERS, ids=str)
def test_inexact_numbers(number: int | Decimal) -> None:
    assert not canonical_module.is_exact_number(number)
    assert not reference_is_exact(number)


@pytest.mark.parametrize("value", [True, False, 0.1, "1", None])
def test_is_exact_number_takes_only_int_and_decimal(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_module.is_exact_number(value)


def shortest_neighbours(number: float) -> list[Decimal]:
    """Decimals at and around a double: its shortest text, its exact value, and one digit more either side."""
    shortest = Decimal(repr(number))
    exact = Decimal(number)
    step = Decimal(1).scaleb(shortest.adjusted() - 17)
    return [shortest, exact, shortest + step, shortest - step, -shortest]


finite_doubles = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e-300, max_value=1e-300),
    st.integers(min_value=0, max_value=2**64 - 1)
    .map(lambda bits: struct.unpack(">d", bits.to_bytes(8, "big"))[0])
    .filter(math.isfinite),
)
decimal_texts = st.builds(
    lambda sign, digits, exponent: Decimal(f"{sign}{digits}e{exponent}"),
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**25).map(str),
    st.integers(min_value=-400, max_value=400),
)
big_integers = st.one_of(
    st.integers(min_value=-(10**320), max_value=10**320),
    st.integers(min_value=2**53 - 4, max_value=2**64 + 4),
    finite_doubles.filter(lambda x: abs(x) >= 2**53).map(int).flatmap(lambda i: st.sampled_from([i - 1, i, i + 1])),
)


@settings(max_examples=1500, deadline=None)
@given(finite_doubles)
def test_every_double_text_is_exact_and_its_neighbours_are_judged_by_the_definition(number: float) -> None:
    assert canonical_module.is_exact_number(Decimal(repr(number)))
    assert canonical_module.is_exact_number(Decimal(canonical_number(number)))
    for candidate in shortest_neighbours(number):
        assert canonical_module.is_exact_number(candidate) is reference_is_exact(candidate), candidate


@settings(max_examples=1500, deadline=None)
@given(st.one_of(decimal_texts, st.decimals(allow_nan=False, allow_infinity=False)))
def test_is_exact_number_agrees_with_the_definition_on_decimals(number: Decimal) -> None:
    assert canonical_module.is_exact_number(number) is reference_is_exact(number)


@settings(max_examples=1500, deadline=None)
@given(big_integers)
def test_is_exact_number_agrees_with_the_definition_on_integers(number: int) -> None:
    assert canonical_module.is_exact_number(number) is reference_is_exact(number)
    if -(2**53) <= number <= 2**53:
        assert canonical_module.is_exact_number(number)


def test_inexact_numbers_names_each_path_in_document_order() -> None:
    text = (
        b'{"ok": [1, 0.5, 9007199254740994, 1e21, "9007199254740993"], "ratio": 0.10000000000000001,'
        b' "a": {"b": [0, {"c": 9007199254740993}, -1e-400]}, "": 1E400, "t": true, "n": null}'
    )
    value = json.loads(text, parse_float=Decimal)
    assert canonical_module.inexact_numbers(value, "details") == [
        "details.ratio",
        "details.a.b[1].c",
        "details.a.b[2]",
        "details.",
    ]
    assert canonical_module.inexact_numbers(value) == ["ratio", "a.b[1].c", "a.b[2]", "."]
    assert canonical_module.inexact_number_items(value["a"], "a") == [
        ("a.b[1].c", 9007199254740993),
        ("a.b[2]", Decimal("-1e-400")),
    ]
    assert canonical_module.inexact_numbers(Decimal("1e-400")) == ["."]
    assert canonical_module.inexact_numbers(9007199254740993, "x") == ["x"]
    assert canonical_module.inexact_numbers({"f": 0.1, "g": float("inf"), "t": True}) == ["g"]
    assert canonical_module.inexact_numbers({"a": [1, 2.5, "x", None, False]}) == []


# JSON number tokens as text: every shape the grammar allows (leading zeros in exponents, both cases, signs).
number_tokens = st.one_of(
    st.builds(
        lambda sign, integer, fraction, exponent: f"{sign}{integer}{fraction}{exponent}",
        st.sampled_from(["", "-"]),
        st.one_of(st.just("0"), st.integers(min_value=1, max_value=10**40).map(str)),
        st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=30).map(lambda digits: "." + digits)),
        st.one_of(
            st.just(""),
            st.builds(
                lambda e, sign, digits: f"{e}{sign}{digits}",
                st.sampled_from(["e", "E"]),
                st.sampled_from(["", "+", "-"]),
                st.one_of(
                    st.integers(min_value=0, max_value=999).map(str), st.text("0123456789", min_size=1, max_size=6)
                ),
            ),
        ),
    ),
    finite_doubles.flatmap(lambda x: st.sampled_from([str(d) for d in shortest_neighbours(x)])).map(
        lambda text: text.replace("E", "e")
    ),
    finite_doubles.map(lambda x: format(Decimal(repr(x)), "f")),  # PostgreSQL's plain notation
    st.sampled_from(["9007199254740993", "1e-400", "1E400", "1.4e-323", "0.10000000000000001", "1e0400", "1e-0400"]),
)
json_strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["9007199254740993", "a, 1e-400", ": 12345678901234567", "2026-11-27T08:00:00.123456789Z"]),
    st.binary(min_size=32, max_size=32).map(bytes.hex),
)


def token_value(token: str) -> int | Decimal:
    return int(token) if not any(c in token for c in ".eE") else Decimal(token)


@st.composite
def json_texts(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """JSON text holding number tokens as written, in one of several layouts, and the tokens themselves."""
    tokens: list[str] = []
    separator, colon, indent = draw(
        st.sampled_from([(",", ":", ""), (", ", ": ", ""), (",", ": ", "\n  "), (" ,\t", " :\r\n", "")])
    )

    def render(depth: int) -> str:
        kind = draw(
            st.sampled_from(
                ["number", "number", "string", "literal", "list", "object"] if depth < 4 else ["number", "string"]
            )
        )
        if kind == "number":
            token = draw(number_tokens)
            tokens.append(token)
            return token
        if kind == "string":
            return json.dumps(draw(json_strings))
        if kind == "literal":
            return draw(st.sampled_from(["true", "false", "null"]))
        items = [render(depth + 1) for _ in range(draw(st.integers(min_value=0, max_value=4)))]
        if kind == "list":
            return "[" + indent + separator.join(items) + "]"
        keys = [json.dumps(f"{index}{draw(json_strings)}") for index, _ in enumerate(items)]
        return "{" + indent + separator.join(f"{k}{colon}{v}" for k, v in zip(keys, items, strict=True)) + "}"

    return render(0).encode(), tokens


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts())
def test_the_prescreen_never_passes_text_with_an_inexact_number(case: tuple[bytes, list[str]]) -> None:
    text, tokens = case
    inexact = [token for token in tokens if not canonical_module.is_exact_number(token_value(token))]
    parsed = json.loads(text, parse_float=Decimal)  # the generated text is JSON
    assert len(canonical_module.inexact_numbers(parsed)) == len(inexact)
    if inexact:
        assert canonical_module.might_hold_inexact_number(text), (text, inexact)


@settings(max_examples=2000, deadline=None)
@given(number_tokens, st.sampled_from(["{}", '{{"a": {}}}', '{{"a":[1, {}]}}', "[{}]", "[\n\t {} \r\n]", " {} ", "{}"]))
def test_the_prescreen_flags_every_inexact_token_wherever_it_stands(token: str, layout: str) -> None:
    text = layout.format(token).encode()
    if not canonical_module.is_exact_number(token_value(token)):
        assert canonical_module.might_hold_inexact_number(text)


@pytest.mark.parametrize(
    "token",
    [
        "9007199254740993",
        "-9007199254740993",
        "0.10000000000000001",
        "1e-400",
        "-1E-400",
        "1e400",
        "1E+400",
        "1.4e-323",
        "1e0400",
        "1152921504606846976",
        "1000000000000000000001",
        "0." + "0" * 399 + "1",  # 1e-400 as PostgreSQL prints it
        "1" + "0" * 400,  # 1e400 likewise
    ],
)
def test_the_prescreen_flags_known_inexact_numbers(token: str) -> None:
    assert not canonical_module.is_exact_number(token_value(token))
    for layout in ["[{}]", '{{"a":{}}}', '{{"a": [1, {}]}}', "[\n  {}\n]", "{}", ' {{"x" :\t-{}}}']:
        assert canonical_module.might_hold_inexact_number(layout.format(token).encode()), layout


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 0.1, "b": 134.847, "c": -0.0, "d": 9007199254740, "e": 1e-7, "f": 1e+21, "g": 1E21, "h": 1.5e-99}',
        b"[0, -1, 123456789012345, 0.0000000000001, 9999999999999.9, 1.2345678901234e99, -1.2345678901234e-99]",
        b'{"sha256": "0123456789012345678901234567890123456789012345678901234567890123", "n": 1}',
        b'{"id": "123e4567-e89b-12d3-a456-426614174000", "at": "2026-11-27T08:00:00.123456789+01:00"}',
        b'{"ip": "2001:db8::1e5", "v4": "192.168.100.200", "version": "3.2.1", "s": "1e-400"}',
        b"",
        b"true",
    ],
)
def test_the_prescreen_passes_typical_text(text: bytes) -> None:
    assert not canonical_module.might_hold_inexact_number(text)


def test_the_prescreen_passes_typical_event_bodies_and_their_jsonb_text() -> None:
    rng = random.Random(14)
    events = [make_event(n, details=realistic_details(rng, n)) for n in range(300)]
    assert not canonical_module.might_hold_inexact_number(orjson.dumps({"events": events}))
    assert not canonical_module.might_hold_inexact_number(json.dumps(events, indent=2).encode())
    # PostgreSQL's jsonb output: ", " and ": " between items
    assert not canonical_module.might_hold_inexact_number(json.dumps(events).encode())


@pytest.mark.parametrize("text", [b"5", b" -0.5 ", b"1e400", b"\n9007199254740993"])
def test_the_prescreen_flags_a_bare_number(text: bytes) -> None:
    assert canonical_module.might_hold_inexact_number(text)
