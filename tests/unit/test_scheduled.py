"""Scheduled functions accept exactly their schedule's input."""

from __future__ import annotations

from typing import Any

import pytest

from audit_common.errors import BadRequest
from audit_common.scheduled import require_action


def test_the_schedules_input_is_accepted() -> None:
    """Given the template's Input, When checked, Then nothing is raised."""
    require_action({"action": "sweep"}, "sweep")


@pytest.mark.parametrize("event", [{"action": "retention"}, {}, None, "sweep", {"detail-type": "Scheduled Event"}])
def test_anything_else_is_refused_naming_the_action(event: Any) -> None:
    """Given another input, When checked, Then BadRequest names the expected action."""
    with pytest.raises(BadRequest, match="action: expected 'sweep'"):
        require_action(event, "sweep")
