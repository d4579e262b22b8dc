"""The console's MCP tools: read every subscriber's diagnosis and the workers, and the
operator actions. Each tool parses, calls one handler, and returns its JSON; a refusal
is a tool error carrying the REST API's ``{"code", "detail"}``.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from reactions_admin.acts.failure_groups.handler import (
    DISMISS_FAILURE_GROUP,
    RETRY_FAILURE_GROUP,
    failure_groups,
)
from reactions_admin.acts.operations.handler import PAUSE, RESUME, RETRY_NOW
from reactions_admin.doors.mcp.door import (
    READ_ONLY,
    McpDoor,
    Reason,
    add_act_tool,
)
from reactions_admin.reads.overview import list_workers, overview, subscriber_report

#: Argument schemas, shared by the tools (each argument described for the agent).
SubscriberName = Annotated[
    str,
    Field(
        description="The subscriber's name (a projection or a reaction), e.g. demo.caution_drafter."
    ),
]
EventId = Annotated[
    str,
    Field(
        description="The event's id, a UUID (e.g. 0b6c0e1e-3f0f-4f5e-9d47-2f1c1a6c9a10).",
        json_schema_extra={"format": "uuid"},
    ),
]


OptionalReason = Annotated[
    str, Field(description="Why you act, in words (recorded in the audit trail; optional).")
]
StreamId = Annotated[
    str, Field(description="The stream's id (a parked stream of the reaction), e.g. run-0004.")
]
Fingerprint = Annotated[
    str, Field(description="A failure group's fingerprint, as list_failure_groups shows it.")
]
ExpectedCount = Annotated[
    int,
    Field(
        description="How many items the group held when you looked (its count); the act is "
        "refused with group_changed if that changed."
    ),
]


def register_console_tools(server: MCPServer, door: McpDoor) -> None:
    """Add the console's tools to ``server``."""

    @server.tool(annotations=READ_ONLY)
    async def list_subscribers(ctx: Context) -> CallToolResult:
        """Every subscriber (projections and reactions) with its status, lag and diagnosis
        (why it is behind, in words), the counts (wedged, retrying, paused, stalled) and
        the workers."""
        return await door.read(ctx, lambda actor: overview(actor).as_json())

    @server.tool(annotations=READ_ONLY)
    async def diagnose_subscriber(subscriber_name: SubscriberName, ctx: Context) -> CallToolResult:
        """Why one subscriber is behind, in words: caught up; catching up; or stalled with
        its causes (wedged on an event, retrying, streams parked, paused by whom, the
        horizon held by a backend, no live worker, a lease held by a silent worker)."""
        return await door.read(
            ctx, lambda actor: subscriber_report(subscriber_name, actor).as_json()
        )

    @server.tool(name="list_workers", annotations=READ_ONLY)
    async def list_workers_tool(ctx: Context) -> CallToolResult:
        """The run_subscribers processes from their heartbeats: live, stopped or gone,
        what each runs and is doing now."""
        return await door.read(
            ctx, lambda actor: {"workers": [w.as_json() for w in list_workers(actor)]}
        )

    for operation in (RETRY_NOW, PAUSE, RESUME):
        add_act_tool(server, door, operation, subscriber_name=SubscriberName, reason=Reason)

    @server.tool(annotations=READ_ONLY)
    async def list_failure_groups(ctx: Context) -> CallToolResult:
        """Failing items (subscribers retrying or wedged on an event) grouped by error
        fingerprint (exception type and message with numbers, ids and quoted values
        masked), with how many match each."""
        return await door.read(
            ctx, lambda actor: {"groups": [g.as_json() for g in failure_groups(actor)]}
        )

    for act in (DISMISS_FAILURE_GROUP, RETRY_FAILURE_GROUP):
        add_act_tool(
            server, door, act, fingerprint=Fingerprint, expected_count=ExpectedCount, reason=Reason
        )
