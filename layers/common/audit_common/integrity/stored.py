"""Is a stored row exactly in its sealed form? (docs/integrity.md, "Reading a stored row")

Ingest stores the sealed form: the IPv4 address (never its IPv4-mapped IPv6 spelling), a single address
(never a network), compliance tags sorted and unique, numbers whose value is exactly their RFC 8785 text.
Sealing normalises its input, so a verifier that sealed whatever it read would accept a stored value that
merely *normalises* to the sealed one: ``::ffff:198.51.100.7`` for ``198.51.100.7``, a ``/24``, tags
reordered, ``9007199254740993`` for ``9007199254740992``. Each reading a verifier makes of a stored column
must be one-to-one, and this module refuses whatever is not the sealed form instead of normalising it.

What is read how: the address as PostgreSQL's ``inet`` output (``a.b.c.d``, an IPv6 text, with ``/len``
only when the mask is not the full length), parsed and printed in Python's compressed form (PostgreSQL
prints some IPv6 addresses in a dotted form, ``::0.2.0.3`` for ``::2:3``: same address, same sealed text);
tags as the stored array; numbers as the JSONB text, whose exactness the reader checks on the text itself
(``audit_common.integrity.canonical``) and reports through ``NUMBER_PROBLEM_KEY``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

__all__ = ["NUMBER_PROBLEM_KEY", "ip_address_problem", "stored_form_problem", "tags_problem", "utf16_order"]

# Columns whose sealed member is never null: a NULL there must not read as the absent value ({} or []).
_NEVER_NULL: Final = (
    "event_id",
    "timestamp",
    "event_type",
    "status",
    "security_level",
    "compliance_tags",
    "details",
    "metadata",
)

NUMBER_PROBLEM_KEY: Final = "_number_problem"
"""Key under which a reader that saw the JSON text reports a number that is not exactly its RFC 8785 form."""


@lru_cache(maxsize=65536)
def ip_address_problem(text: str) -> str | None:
    """Why a stored address text is not a sealed address, or ``None`` when it is one."""
    if "/" in text:
        return f"ip_address {text!r} is a network, not one address (a mask was stored)"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return f"ip_address {text!r} is not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"ip_address {text!r} is an IPv4-mapped IPv6 address; the sealed form is {address.ipv4_mapped}"
    return None


def tags_problem(tags: object) -> str | None:
    """Why stored compliance tags are not their sealed form (unique, sorted by UTF-16 code units), or ``None``."""
    if tags == []:
        return None
    if not isinstance(tags, list) or any(type(tag) is not str for tag in tags):
        return f"compliance_tags {tags!r} is not a one-dimensional array of strings"
    if tags != sorted(set(tags), key=utf16_order):
        return f"compliance_tags {tags!r} are not sorted and unique as sealed"
    return None


def utf16_order(text: str) -> bytes:
    """Sort key: the string as UTF-16 code units (RFC 8785's order), which code-point order is not above U+FFFF."""
    return text.encode("utf-16-be", "surrogatepass")


def stored_form_problem(row: Mapping[str, Any]) -> str | None:
    """The first reason the row's stored private and kept values are not exactly the sealed form, or ``None``."""
    for name in _NEVER_NULL:
        if row.get(name) is None:
            return f"{name} is null, which no sealed event has"
    if (row.get("seal_version") or 1) == 1 and (
        row.get("seal_salt") is not None or row.get("payload_commitment") is not None
    ):
        return "a seal-version-1 row holds a seal salt or a payload commitment (version 2 relabelled?)"
    address = row.get("ip_address")
    if address is not None:
        problem = ip_address_problem(address) if isinstance(address, str) else "ip_address is not text"
        if problem is not None:
            return problem
    problem = tags_problem(row.get("compliance_tags"))
    if problem is not None:
        return problem
    number: object = row.get(NUMBER_PROBLEM_KEY)
    return None if number is None else str(number)
