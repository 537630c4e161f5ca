"""HTTP header lookup shared by the API functions, the authorizer and the access guard."""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A request header by name in any case (API Gateway passes the client's spelling)."""
    wanted = name.lower()
    return next((str(value) for key, value in (headers or {}).items() if key.lower() == wanted), None)
