"""The MCP server (official ``mcp`` SDK): ``dismiss_event_in_reaction``, ``list_reactions``,
and for stream-ordered reactions ``list_parked_streams``, ``dismiss_parked_stream`` and
``retry_parked_stream``.

Served over stdio by ``manage.py mcp_server`` (acting with one API token) and over
streamable HTTP at ``/mcp`` by ``config/asgi.py`` (each request carries
``Authorization: Bearer <token>``). Refusals come back as MCP tool errors whose
text is the JSON ``{"code", "detail"}`` the REST API returns.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult

from reactions_admin.acts.act import OnEvent, OnStream
from reactions_admin.acts.dismissal.handler import DISMISS_EVENT
from reactions_admin.acts.parked_streams.handler import DISMISS_PARKED_STREAM, RETRY_PARKED_STREAM
from reactions_admin.doors.mcp.console import (
    EventId,
    OptionalReason,
    StreamId,
    SubscriberName,
    register_console_tools,
)
from reactions_admin.doors.mcp.door import READ_ONLY, McpDoor, Reason, tool
from reactions_admin.doors.mcp.rebuilds import register_rebuild_tools
from reactions_admin.reads.reactions import list_parked_streams as parked_streams_of
from reactions_admin.reads.reactions import list_reactions as reaction_statuses

INSTRUCTIONS = (
    "Eventdesk operates the reactions of an event-sourced system. list_reactions shows each "
    "reaction's status, cursor, lag and failing event; dismiss_event_in_reaction moves a wedged "
    "reaction past a poison event, with a reason that is audited. A stream-ordered reaction "
    "parks only the stream of a poison event: list_parked_streams shows them; "
    "dismiss_event_in_reaction with a parked stream's head event dismisses that event, "
    "dismiss_parked_stream dismisses the whole stream, retry_parked_stream runs its head again."
)


def build_mcp_server(*, token: str | None = None) -> MCPServer:
    """The Eventdesk MCP server. ``token`` is the stdio identity; over HTTP each
    request's bearer token is used instead."""
    server: MCPServer = MCPServer("eventdesk", instructions=INSTRUCTIONS)
    door = McpDoor(token)

    @server.tool(**tool(DISMISS_EVENT))
    async def dismiss_event_in_reaction_tool(
        subscriber_name: SubscriberName, event_id: EventId, reason: Reason, ctx: Context
    ) -> CallToolResult:
        return await door.act(ctx, DISMISS_EVENT, OnEvent(subscriber_name, event_id, reason))

    @server.tool(annotations=READ_ONLY)
    async def list_reactions(ctx: Context) -> CallToolResult:
        """Every reaction with its status, cursor, lag, failing event and last error."""
        return await door.read(ctx, lambda actor: {"reactions": reaction_statuses(actor)})

    @server.tool(annotations=READ_ONLY)
    async def list_parked_streams(subscriber_name: SubscriberName, ctx: Context) -> CallToolResult:
        """The parked streams of a stream-ordered reaction: each stream, its head event
        (the one that failed every attempt), error, attempts, since when, and how many
        events wait behind it."""
        return await door.read(
            ctx, lambda actor: {"parked_streams": parked_streams_of(subscriber_name, actor)}
        )

    @server.tool(**tool(DISMISS_PARKED_STREAM))
    async def dismiss_parked_stream_tool(
        subscriber_name: SubscriberName, stream_id: StreamId, reason: Reason, ctx: Context
    ) -> CallToolResult:
        given = OnStream(subscriber_name, stream_id, reason)
        return await door.act(ctx, DISMISS_PARKED_STREAM, given)

    @server.tool(**tool(RETRY_PARKED_STREAM))
    async def retry_parked_stream_tool(
        subscriber_name: SubscriberName,
        stream_id: StreamId,
        ctx: Context,
        reason: OptionalReason = "",
    ) -> CallToolResult:
        given = OnStream(subscriber_name, stream_id, reason)
        return await door.act(ctx, RETRY_PARKED_STREAM, given)

    register_console_tools(server, door)
    register_rebuild_tools(server, door)
    return server
