"""The rebuild's MCP tools: ``rebuild_state`` (progress, estimate, the diff as JSON) and the
acts ``start_rebuild``, ``swap_rebuild``, ``cancel_rebuild``, ``roll_back_rebuild``,
``pause_rebuild``, ``resume_rebuild``, ``retry_rebuild``, each
adapted from its declaration (``acts.rebuilds.handler``); a refusal is a tool error
carrying the REST API's ``{"code", "detail"}``."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from reactions_admin.acts.rebuilds.handler import BY_FLAG, START
from reactions_admin.doors.mcp.door import (
    READ_ONLY,
    McpDoor,
    Reason,
    add_act_tool,
)
from reactions_admin.reads.rebuilds import rebuild_state as read_state

ProjectionName = Annotated[
    str,
    Field(
        description="The projection's name (a subscriber of kind projection), e.g. demo.scorecards."
    ),
]
SwapWhenVerified = Annotated[
    bool,
    Field(
        description="Swap as soon as the projection's verify() finds no problem (the worker "
        "swaps, audited with you as the actor). Default false: you swap after reading the diff."
    ),
]


def register_rebuild_tools(server: MCPServer, door: McpDoor) -> None:
    """Add the rebuild's tools to ``server``."""

    @server.tool(annotations=READ_ONLY)
    async def rebuild_state(subscriber_name: ProjectionName, ctx: Context) -> CallToolResult:
        """A projection's rebuild: phase, events done of total, rate, ETA; the diff its
        verification found (rows only in the live tables, only in the new ones, differing;
        up to 20 samples of each, side by side, with the changed columns); the estimate of
        a new one (events, rate, duration, extra disk); the acts that apply now."""
        return await door.read(ctx, lambda actor: read_state(subscriber_name, actor).as_json())

    add_act_tool(
        server,
        door,
        START,
        subscriber_name=ProjectionName,
        reason=Reason,
        swap_when_verified=(SwapWhenVerified, False),
    )
    for act in BY_FLAG.values():
        add_act_tool(server, door, act, subscriber_name=ProjectionName, reason=Reason)
