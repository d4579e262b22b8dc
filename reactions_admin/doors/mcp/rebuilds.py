"""The rebuild's MCP tools: ``rebuild_state`` (progress, estimate, the diff as JSON) and the
acts ``start_rebuild``, ``swap_rebuild``, ``cancel_rebuild``, ``roll_back_rebuild``. Each
parses, calls one handler, and returns its JSON; a refusal is a tool error carrying the
REST API's ``{"code", "detail"}``."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from reactions_admin.acts.rebuilds import handler
from reactions_admin.doors.access import actor_for_token
from reactions_admin.doors.mcp.console import Reason, Run, SecretOf
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


def register_rebuild_tools(server: MCPServer, secret_of: SecretOf, run: Run) -> None:
    """Add the rebuild's tools to ``server``."""

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def rebuild_state(projection_name: ProjectionName, ctx: Context) -> CallToolResult:
        """A projection's rebuild: phase, events done of total, rate, ETA; the diff its
        verification found (rows only in the live tables, only in the new ones, differing;
        up to 20 samples of each, side by side, with the changed columns); the estimate of
        a new one (events, rate, duration, extra disk); the acts that apply now."""
        secret = secret_of(ctx)
        return await run(lambda: read_state(projection_name, actor_for_token(secret)).as_json())

    write = ToolAnnotations(destructive_hint=False, idempotent_hint=False)

    @server.tool(annotations=write)
    async def start_rebuild(
        projection_name: ProjectionName,
        reason: Reason,
        ctx: Context,
        swap_when_verified: SwapWhenVerified = False,
    ) -> CallToolResult:
        """Start a rebuild of a projection: its tables are built again beside the live ones
        from the events, caught up and compared; the live tables stay in service. Needs
        reactions_admin.rebuild_projection."""
        secret = secret_of(ctx)
        return await run(
            lambda: handler.start_rebuild(
                projection_name,
                reason,
                actor_for_token(secret),
                swap_when_verified=swap_when_verified,
                via="mcp",
            ).as_payload()
        )

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def swap_rebuild(
        projection_name: ProjectionName, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Swap a verified rebuild in (read its diff with rebuild_state first): the new
        tables take the live ones' names in one short transaction; the old ones are kept for
        roll_back_rebuild. Needs reactions_admin.rebuild_projection."""
        secret = secret_of(ctx)
        return await run(
            lambda: handler.swap_rebuild(
                projection_name, reason, actor_for_token(secret), via="mcp"
            ).as_payload()
        )

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def cancel_rebuild(
        projection_name: ProjectionName, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Cancel a rebuild in progress and drop its new tables (the live ones are
        untouched). Needs reactions_admin.rebuild_projection."""
        secret = secret_of(ctx)
        return await run(
            lambda: handler.cancel_rebuild(
                projection_name, reason, actor_for_token(secret), via="mcp"
            ).as_payload()
        )

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def roll_back_rebuild(
        projection_name: ProjectionName, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Roll back the last swap: the tables it kept take the live names again, and the
        projection catches up from their position with the code it runs now (the old data
        returns, not the old code). Needs reactions_admin.rebuild_projection."""
        secret = secret_of(ctx)
        return await run(
            lambda: handler.roll_back_rebuild(
                projection_name, reason, actor_for_token(secret), via="mcp"
            ).as_payload()
        )
