"""The console's MCP tools: read every subscriber's diagnosis and the workers, and the
operator actions. Each tool parses, calls one handler, and returns its JSON; a refusal
is a tool error carrying the REST API's ``{"code", "detail"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from reactions_admin.acts.failure_groups.handler import dismiss_failure_group as dismiss_group
from reactions_admin.acts.failure_groups.handler import failure_groups
from reactions_admin.acts.failure_groups.handler import retry_failure_group as retry_group
from reactions_admin.acts.operations.handler import pause, resume, retry_now
from reactions_admin.doors.access import actor_for_token
from reactions_admin.reads.overview import list_workers, overview, subscriber_report

SecretOf = Callable[[Context], str | None]
Run = Callable[[Callable[[], dict[str, Any]]], Awaitable[CallToolResult]]

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
Reason = Annotated[
    str,
    Field(description="Why you act, in words (recorded in the audit trail; required)."),
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


def register_console_tools(server: MCPServer, secret_of: SecretOf, run: Run) -> None:
    """Add the console's tools to ``server``."""

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_subscribers(ctx: Context) -> CallToolResult:
        """Every subscriber (projections and reactions) with its status, lag and diagnosis
        (why it is behind, in words), the counts (wedged, retrying, paused, stalled) and
        the workers."""
        secret = secret_of(ctx)
        return await run(lambda: overview(actor_for_token(secret)).as_json())

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def diagnose_subscriber(subscriber_name: SubscriberName, ctx: Context) -> CallToolResult:
        """Why one subscriber is behind, in words: caught up; catching up; or stalled with
        its causes (wedged on an event, retrying, streams parked, paused by whom, the
        horizon held by a backend, no live worker, a lease held by a silent worker)."""
        secret = secret_of(ctx)
        return await run(
            lambda: subscriber_report(subscriber_name, actor_for_token(secret)).as_json()
        )

    @server.tool(name="list_workers", annotations=ToolAnnotations(read_only_hint=True))
    async def list_workers_tool(ctx: Context) -> CallToolResult:
        """The run_subscribers processes from their heartbeats: live, stopped or gone,
        what each runs and is doing now."""
        secret = secret_of(ctx)
        return await run(
            lambda: {"workers": [w.as_json() for w in list_workers(actor_for_token(secret))]}
        )

    write = ToolAnnotations(destructive_hint=False, idempotent_hint=False)

    @server.tool(annotations=write)
    async def retry_subscriber_now(
        subscriber_name: SubscriberName, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Retry now: a retrying or wedged subscriber makes one attempt at its failing event
        at once, keeping its attempt count. Needs reactions_admin.operate_subscriber."""
        secret = secret_of(ctx)
        return await run(
            lambda: retry_now(
                subscriber_name, reason, actor_for_token(secret), via="mcp"
            ).as_payload()
        )

    @server.tool(annotations=write)
    async def pause_subscriber(
        subscriber_name: SubscriberName, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Pause a subscriber: no worker starts work for it until it is resumed; work in
        flight finishes. Needs reactions_admin.operate_subscriber."""
        secret = secret_of(ctx)
        return await run(
            lambda: pause(subscriber_name, reason, actor_for_token(secret), via="mcp").as_payload()
        )

    @server.tool(annotations=write)
    async def resume_subscriber(
        subscriber_name: SubscriberName, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Resume a paused subscriber with the status it had. Needs
        reactions_admin.operate_subscriber."""
        secret = secret_of(ctx)
        return await run(
            lambda: resume(subscriber_name, reason, actor_for_token(secret), via="mcp").as_payload()
        )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def list_failure_groups(ctx: Context) -> CallToolResult:
        """Failing items (subscribers retrying or wedged on an event) grouped by error
        fingerprint (exception type and message with numbers, ids and quoted values
        masked), with how many match each."""
        secret = secret_of(ctx)
        return await run(
            lambda: {"groups": [g.as_json() for g in failure_groups(actor_for_token(secret))]}
        )

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def dismiss_failure_group(
        fingerprint: Fingerprint, expected_count: ExpectedCount, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Dismiss the failing event of every item in a failure group, all or nothing, each
        with its own audited decision. Needs reactions_admin.dismiss_event."""
        secret = secret_of(ctx)
        return await run(
            lambda: dismiss_group(
                fingerprint, expected_count, reason, actor_for_token(secret), via="mcp"
            ).as_payload()
        )

    @server.tool(annotations=write)
    async def retry_failure_group(
        fingerprint: Fingerprint, expected_count: ExpectedCount, reason: Reason, ctx: Context
    ) -> CallToolResult:
        """Retry now every item of a failure group (attempts kept), all or nothing. Needs
        reactions_admin.operate_subscriber."""
        secret = secret_of(ctx)
        return await run(
            lambda: retry_group(
                fingerprint, expected_count, reason, actor_for_token(secret), via="mcp"
            ).as_payload()
        )
