"""Exact numbers: is a JSON number exactly the value of its RFC 8785 form? (docs/integrity.md, "Numbers")

RFC 8785 reads every JSON number as the nearest IEEE double and prints that double. A number whose
decimal value differs from the value of that printed form (``9007199254740993``, ``0.10000000000000001``,
``1e-400``) would be silently rounded by sealing, and a stored value that merely rounds to the sealed one
would pass a verifier that compared doubles. Ingest refuses such numbers and the verifier refuses such
stored values: both use ``is_exact_number``. Reading them needs the number's text (``json.loads`` with
``parse_float=Decimal``), since a double has already lost the difference; ``might_hold_inexact_number``
says cheaply, from the text, when that second read is needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from audit_common.integrity.canonical import canonical_number

__all__ = ["inexact_numbers", "is_exact_number", "might_hold_inexact_number"]

_MAX_EXACT_INT: Final = 2**53

# A number token that may not be exact: 16 or more digit-or-point characters in a row, or an exponent.
# Sound because a decimal of at most 15 significant digits inside the normal double range is exact
# (DBL_DIG = 15: it survives decimal -> double -> shortest decimal unchanged), and in plain notation
# (PostgreSQL's JSONB output, most clients) any number with 16 or more significant digits, beyond 1e16,
# or below 1e-15 (the subnormal range included) has at least 16 digit characters. Exponent forms can
# reach any magnitude in a few characters, so every one is looked at. The token must follow ':', ',' or
# '[' (and optional spaces), which keeps digits inside strings (hex hashes, UUIDs) from matching; a
# string that happens to look like that only costs a second, exact look.
_SUSPECT: Final = re.compile(rb"[:,\[]\s*-?(?:[0-9.]{16}|[0-9.]+[eE])")


def is_exact_number(value: int | Decimal) -> bool:
    """True iff the exact value of ``value`` equals the exact value of the RFC 8785 text of its double.

    ``0.1``, ``1e21``, ``1000000000000000000000``, ``9007199254740994`` and ``1.0`` are exact;
    ``9007199254740993``, ``0.10000000000000001``, ``1e-400`` and ``1e400`` are not.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return True
        try:
            double = float(value)
        except OverflowError:
            return False
        return Decimal(canonical_number(double)) == value
    if not value.is_finite():
        return False
    try:
        double = float(value)
    except (OverflowError, InvalidOperation):
        return False
    if not math.isfinite(double):
        return False
    if double == 0:
        return value == 0
    return Decimal(canonical_number(double)) == value


def inexact_numbers(value: Any, path: str = "") -> list[str]:
    """Paths (``details.a.b[2]``) of every number in a JSON value read with exact decimals that is not exact."""
    found: list[str] = []
    _walk(value, path, found)
    return found


def _walk(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int | Decimal):
        if not is_exact_number(value):
            found.append(path or ".")
    elif isinstance(value, float):
        if not math.isfinite(value):
            found.append(path or ".")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else str(key), found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", found)


def might_hold_inexact_number(text: bytes) -> bool:
    """False only when every number in the JSON ``text`` is certainly exact (a sound, cheap screen)."""
    return _SUSPECT.search(text) is not None
