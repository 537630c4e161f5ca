"""Opaque page cursors: a small versioned JSON object, base64url without padding.

Opaque so clients cannot build them; versioned so their content can change. A cursor that does not
decode, or lacks a field, is refused as a 400 naming the `cursor` parameter.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from audit_common.errors import BadRequest

VERSION = 1


def encode_cursor(position: dict[str, Any]) -> str:
    """The cursor for a page position (JSON-serialisable fields)."""
    raw = orjson.dumps({"v": VERSION, **position})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, fields: dict[str, type]) -> dict[str, Any]:
    """The fields of a cursor this API issued, each checked to be of its type (a bool is not an int here)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data.get("v") != VERSION:
            raise ValueError("unknown cursor")
        values = {name: data[name] for name in fields}
        for name, kind in fields.items():
            if not isinstance(values[name], kind) or (kind is int and isinstance(values[name], bool)):
                raise ValueError(f"cursor field {name} is not {kind.__name__}")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("cursor: not a cursor this API issued") from None
    return values
