"""An act's declaration refuses what would publish a wrong name: ``Family.act`` takes the
name and the verb in a row, and the name becomes the MCP tool's and the code's."""

from __future__ import annotations

import pytest

from reactions_admin import errors
from reactions_admin.acts.operations.handler import OPERATIONS, ActionResult, pause


def test_a_snake_case_name_and_a_verb_declare_an_act() -> None:
    act = OPERATIONS.act("pause_subscriber", "Pause", pause, ActionResult, errors.AlreadyPaused)
    assert (act.name, act.verb) == ("pause_subscriber", "Pause")


@pytest.mark.parametrize("name", ["Pause", "pause subscriber", "pause-subscriber", ""])
def test_a_name_that_is_not_a_snake_case_identifier_is_refused(name: str) -> None:
    # The verb given as the name (the two swapped) is the likely slip.
    with pytest.raises(TypeError, match="snake_case identifier"):
        OPERATIONS.act(name, "pause_subscriber", pause, ActionResult)
