"""Page cursors: what the API issues comes back; anything else is a 400 naming the cursor."""

from __future__ import annotations

import base64

import orjson
import pytest

from audit_common.cursor import decode_cursor, encode_cursor
from audit_common.errors import BadRequest


def test_issued_cursor_round_trips() -> None:
    """Given a position, When encoded and decoded, Then the same fields come back."""
    cursor = encode_cursor({"seq": 42, "desc": True})
    assert decode_cursor(cursor, {"seq": int, "desc": bool}) == {"seq": 42, "desc": True}


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(orjson.dumps([1, 2])).decode(),
        base64.urlsafe_b64encode(orjson.dumps({"v": 2, "seq": 1, "desc": True})).decode(),
        base64.urlsafe_b64encode(orjson.dumps({"v": 1, "desc": True})).decode(),
        base64.urlsafe_b64encode(orjson.dumps({"v": 1, "seq": True, "desc": True})).decode(),
        base64.urlsafe_b64encode(orjson.dumps({"v": 1, "seq": "1", "desc": True})).decode(),
    ],
    ids=["not-base64", "not-json", "not-object", "other-version", "missing-field", "bool-as-int", "str-as-int"],
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    """Given a cursor the API did not issue, When decoded, Then BadRequest names the cursor."""
    with pytest.raises(BadRequest, match=r"^cursor: "):
        decode_cursor(cursor, {"seq": int, "desc": bool})
