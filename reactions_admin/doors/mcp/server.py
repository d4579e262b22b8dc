"""The MCP server (official ``mcp`` SDK): ``dismiss_event_in_reaction``, ``list_reactions``,
and for stream-ordered reactions ``list_parked_streams``, ``dismiss_parked_stream`` and
``retry_parked_stream``.

Served over stdio by ``manage.py mcp_server`` (acting with one API token) and over
streamable HTTP at ``/mcp`` by ``config/asgi.py`` (each request carries
``Authorization: Bearer <token>``). Refusals come back as MCP tool errors whose
text is the JSON ``{"code", "detail"}`` the REST API returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.acts.parked_streams.handler import dismiss_parked_stream as dismiss_stream
from reactions_admin.acts.parked_streams.handler import list_parked_streams as parked_streams_of
from reactions_admin.acts.parked_streams.handler import retry_parked_stream as retry_stream
from reactions_admin.acts.tokens.handler import bearer_secret
from reactions_admin.doors.access import actor_for_token
from reactions_admin.doors.mcp.console import (
    EventId,
    OptionalReason,
    Reason,
    StreamId,
    SubscriberName,
    register_console_tools,
)
from reactions_admin.doors.mcp.rebuilds import register_rebuild_tools
from reactions_admin.reads.reactions import list_reactions as reaction_statuses

T = TypeVar("T")

INSTRUCTIONS = (
    "Eventdesk operates the reactions of an event-sourced system. list_reactions shows each "
    "reaction's status, cursor, lag and failing event; dismiss_event_in_reaction moves a wedged "
    "reaction past a poison event, with a reason that is audited. A stream-ordered reaction "
    "parks only the stream of a poison event: list_parked_streams shows them; "
    "dismiss_event_in_reaction with a parked stream's head event dismisses that event, "
    "dismiss_parked_stream dismisses the whole stream, retry_parked_stream runs its head again."
)


#: Who calls a tool: the token's user (401 not_authenticated otherwise), as at every door.
_actor_for = actor_for_token


def _in_django(work: Callable[[], T]) -> T:
    # Outside Django's request cycle nobody recycles connections for us: drop a broken
    # or expired one before and after, as Django does around each request.
    close_old_connections()
    try:
        return work()
    finally:
        close_old_connections()


def tool_result(payload: dict[str, Any], *, is_error: bool = False) -> CallToolResult:
    """A tool result whose text and structured content are the same JSON object.

    A refusal is a tool error (``is_error``) carrying ``{"code", "detail"}``, exactly
    what the REST API answers, so an agent reads the same codes through either door.
    """
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload))],
        structured_content=payload,
        is_error=is_error,
    )


def build_mcp_server(*, token: str | None = None) -> MCPServer:
    """The Eventdesk MCP server. ``token`` is the stdio identity; over HTTP each
    request's bearer token is used instead."""
    server: MCPServer = MCPServer("eventdesk", instructions=INSTRUCTIONS)

    def secret_of(ctx: Context) -> str | None:
        request = ctx.request_context.request
        headers = getattr(request, "headers", None)
        if headers is not None:
            return bearer_secret(headers.get("authorization"))
        return token

    async def run(work: Callable[[], dict[str, Any]]) -> CallToolResult:
        try:
            return tool_result(await sync_to_async(_in_django)(work))
        except errors.ReactionsError as exc:
            return tool_result(exc.as_payload(), is_error=True)

    @server.tool(
        name="dismiss_event_in_reaction",
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False),
    )
    async def dismiss_event_in_reaction_tool(
        subscriber_name: SubscriberName, event_id: EventId, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Dismiss a poison event in a wedged reaction: move its bookmark to the event
        (which must lie after it) and audit the decision with your reason."""
        secret = secret_of(ctx)

        def work() -> dict[str, Any]:
            actor = _actor_for(secret)
            result = dismiss_event_in_reaction(subscriber_name, event_id, reason, actor, via="mcp")
            return result.as_payload()

        return await run(work)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_reactions(ctx: Context) -> CallToolResult:
        """Every reaction with its status, cursor, lag, failing event and last error."""
        secret = secret_of(ctx)

        def work() -> dict[str, Any]:
            return {"reactions": reaction_statuses(_actor_for(secret))}

        return await run(work)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_parked_streams(subscriber_name: SubscriberName, ctx: Context) -> CallToolResult:
        """The parked streams of a stream-ordered reaction: each stream, its head event
        (the one that failed every attempt), error, attempts, since when, and how many
        events wait behind it."""
        secret = secret_of(ctx)

        def work() -> dict[str, Any]:
            actor = _actor_for(secret)
            return {"parked_streams": parked_streams_of(subscriber_name, actor)}

        return await run(work)

    @server.tool(
        name="dismiss_parked_stream",
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False),
    )
    async def dismiss_parked_stream_tool(
        subscriber_name: SubscriberName, stream_id: StreamId, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Dismiss a whole parked stream of a stream-ordered reaction: its head and every
        event waiting behind it, one audited decision per event, all or nothing."""
        secret = secret_of(ctx)

        def work() -> dict[str, Any]:
            actor = _actor_for(secret)
            return dismiss_stream(subscriber_name, stream_id, reason, actor, via="mcp").as_payload()

        return await run(work)

    @server.tool(
        name="retry_parked_stream",
        annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False),
    )
    async def retry_parked_stream_tool(
        subscriber_name: SubscriberName,
        stream_id: StreamId,
        ctx: Context,
        reason: OptionalReason = "",
    ) -> CallToolResult:
        """Retry a parked stream now: its head runs once more (attempts are not reset, so
        another failure parks it again) and the events behind it follow in order."""
        secret = secret_of(ctx)

        def work() -> dict[str, Any]:
            actor = _actor_for(secret)
            result = retry_stream(subscriber_name, stream_id, actor, reason=reason, via="mcp")
            return result.as_payload()

        return await run(work)

    register_console_tools(server, secret_of, run)
    register_rebuild_tools(server, secret_of, run)
    return server
