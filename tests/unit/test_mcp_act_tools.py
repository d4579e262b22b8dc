"""The MCP door's ``add_act_tool``: the tool's arguments make the act's input by position,
so a list that does not line up with the input's fields is refused when the tool is added."""

from __future__ import annotations

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from reactions_admin.acts.failure_groups.handler import DISMISS_FAILURE_GROUP
from reactions_admin.acts.operations.handler import PAUSE
from reactions_admin.doors.mcp.console import ExpectedCount, Fingerprint, SubscriberName
from reactions_admin.doors.mcp.door import McpDoor, Reason, add_act_tool


def add(act, **arguments) -> list[str]:
    server = MCPServer("test")
    add_act_tool(server, McpDoor(), act, **arguments)
    return [tool.name for tool in anyio.run(server.list_tools)]


def test_arguments_named_as_the_inputs_fields_in_order_make_a_tool() -> None:
    assert add(PAUSE, subscriber_name=SubscriberName, reason=Reason) == ["pause_subscriber"]
    # An id field may be named without its ``_id``: OnFailureGroup.fingerprint_id.
    assert add(
        DISMISS_FAILURE_GROUP, fingerprint=Fingerprint, expected_count=ExpectedCount, reason=Reason
    ) == ["dismiss_failure_group"]


@pytest.mark.parametrize(
    "arguments",
    [
        # Out of order: the reason would be taken as the subscriber's name.
        {"reason": Reason, "subscriber_name": SubscriberName},
        # One missing, or one the input has no field for.
        {"subscriber_name": SubscriberName},
        {"subscriber_name": SubscriberName, "reason": Reason, "force": Reason},
        # Another name: no field says what it is.
        {"name": SubscriberName, "reason": Reason},
    ],
)
def test_arguments_that_do_not_line_up_with_the_input_are_refused_when_added(arguments) -> None:
    with pytest.raises(TypeError, match="pause_subscriber: the tool's arguments"):
        add(PAUSE, **arguments)
