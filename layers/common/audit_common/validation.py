"""Validation errors (pydantic or Powertools) as the API's `(index, field, message)` triples.

The location of an error says where it is: `("body", <shape tag>, "events", 3, "ip_address")`,
`("query", "limit")`, ... Shape tags come from the discriminated union of `POST /events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from audit_common.errors import FieldError, InvalidInput
from audit_common.models import EVENT_ID_PATTERN, MAX_BATCH_EVENTS, NO_NUL_PATTERN

SHAPE_TAGS: Final = frozenset({"batch", "event", "list"})
_SOURCES: Final = ("body", "query", "path", "header")
_MESSAGES: Final[dict[str, str]] = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this object",
    "too_long": f"has too many items (at most {MAX_BATCH_EVENTS} events per request)",
}
_PATTERN_MESSAGES: Final[dict[str, str]] = {
    NO_NUL_PATTERN: "must not contain NUL characters",
    EVENT_ID_PATTERN: "must be 1-255 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit",
}


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Translate validation errors into `(index, field, message)` triples, in order."""
    return [_field_error(error) for error in errors]


def invalid_input(errors: Sequence[Any]) -> InvalidInput:
    """One InvalidInput naming every refused field (pydantic error dicts or FieldErrors)."""
    found = [e if isinstance(e, FieldError) else _field_error(e) for e in errors]
    in_body = any(isinstance(e, FieldError) or (e.get("loc") or ("body",))[0] == "body" for e in errors)
    summary = "; ".join(f"{_label(e)}: {e.message}" for e in found[:5])
    more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
    stored = "; nothing was stored" if in_body else ""
    return InvalidInput(f"invalid request: {summary}{more}{stored}", errors=found)


def _label(error: FieldError) -> str:
    return error.field if error.index is None else f"events[{error.index}].{error.field}"


def _field_error(error: Any) -> FieldError:
    loc = list(error.get("loc") or ())
    source = loc.pop(0) if loc and loc[0] in _SOURCES else "body"
    index: int | None = None
    if source == "body":
        tag = loc.pop(0) if loc and loc[0] in SHAPE_TAGS else None
        if tag == "event":
            index = 0
        elif tag == "list" and loc and isinstance(loc[0], int):
            index = loc.pop(0)
        elif tag == "list":
            loc = ["events"]
        elif len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            index = loc[1]
            loc = loc[2:]
    return FieldError(field=_path(loc) or "body", message=_message(error), index=index)


def _path(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _message(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern", "")
        return _PATTERN_MESSAGES.get(pattern, f"must match {pattern}")
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")
