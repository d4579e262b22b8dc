"""How the MCP door lets a tool in, and how it adapts an act (``reactions_admin.acts.act``):
one tool a short function, which only says how its arguments make the act's input::

    @server.tool(**tool(PAUSE))
    async def pause_subscriber(subscriber_name: SubscriberName, reason: Reason, ctx: Context):
        return await door.act(ctx, PAUSE, OnSubscriber(subscriber_name, reason))

The SDK reads the argument schema from the function's signature, so the signature stays
the tool's; its name, description and hints come from the declaration.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Annotated, Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from reactions_admin import errors
from reactions_admin.acts.act import Act, In, Out
from reactions_admin.acts.tokens.handler import bearer_secret
from reactions_admin.doors.access import actor_for_token
from reactions_admin.guards import Actor

T = TypeVar("T")

#: The reason every act asks for (argument schema shared by the tools).
Reason = Annotated[
    str,
    Field(description="Why you act, in words (recorded in the audit trail; required)."),
]


def in_django(work: Callable[[], T]) -> T:
    """Run ``work`` the way Django runs a request: outside Django's request cycle nobody
    recycles connections for us, so a broken or expired one is dropped before and after."""
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


def tool(act: Act[Any, Any]) -> dict[str, Any]:
    """The keyword arguments of ``server.tool`` for ``act``."""
    hints = ToolAnnotations(destructive_hint=act.destructive, idempotent_hint=False)
    return {"name": act.name, "description": act.describe(), "annotations": hints}


#: A reading tool's annotations.
READ_ONLY = ToolAnnotations(read_only_hint=True)


@dataclass(frozen=True)
class McpDoor:
    """Who calls: over HTTP the request's bearer token, over stdio the server's ``token``."""

    token: str | None = None

    def secret(self, ctx: Context) -> str | None:
        """The caller's token."""
        headers = getattr(ctx.request_context.request, "headers", None)
        if headers is not None:
            return bearer_secret(headers.get("authorization"))
        return self.token

    async def read(self, ctx: Context, read: Callable[[Actor], dict[str, Any]]) -> CallToolResult:
        """``read`` as the caller, in Django's thread; a refusal as a tool error."""
        secret = self.secret(ctx)
        try:
            payload = await sync_to_async(in_django)(lambda: read(actor_for_token(secret)))
        except errors.ReactionsError as exc:
            return tool_result(exc.as_payload(), is_error=True)
        return tool_result(payload)

    async def act(self, ctx: Context, act: Act[In, Out], given: In) -> CallToolResult:
        """``act`` as the caller: its result's payload, or its refusal as a tool error."""
        return await self.read(ctx, lambda actor: act(given, actor, via="mcp").as_payload())


def add_act_tool(server: MCPServer, door: McpDoor, act: Act[Any, Any], **arguments: Any) -> None:
    """Add ``act`` to ``server`` as a tool named as the act whose arguments are
    ``arguments`` (name -> schema, an ``Annotated`` type; ``(schema, default)`` for an
    optional one), in order; they make the act's input in the same order
    (``fingerprint=…, expected_count=…, reason=…``: ``OnFailureGroup(fingerprint_id,
    expected_count, reason)``). Each argument is named as its field, or as an id field
    without its ``_id``; any other list is refused here, when the tool is added, not by a
    call that quietly hands one argument's value to another field. The SDK reads the
    arguments from the signature, so the signature is written out here, the same as a
    hand-written function's."""
    names = list(arguments)
    taken = [field.name for field in fields(act.input)]
    field_of = dict(zip(names, taken, strict=False))
    if len(names) != len(taken) or any(
        name not in (field, field.removesuffix("_id")) for name, field in field_of.items()
    ):
        raise TypeError(
            f"{act.name}: the tool's arguments ({', '.join(names)}) must name the fields of "
            f"{act.input.__name__} ({', '.join(taken)}), in order"
        )

    async def call(ctx: Context, **named: Any) -> CallToolResult:
        given = act.input(**{field: named[name] for name, field in field_of.items()})
        return await door.act(ctx, act, given)

    call.__name__ = call.__qualname__ = act.name  # the schema's title: "<name>Arguments"
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter(name, keyword, annotation=schema[0], default=schema[1])
        if isinstance(schema, tuple)
        else inspect.Parameter(name, keyword, annotation=schema)
        for name, schema in arguments.items()
    ]
    parameters.append(inspect.Parameter("ctx", keyword, annotation=Context))
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=CallToolResult
    )
    call.__annotations__ = {p.name: p.annotation for p in parameters}
    call.__annotations__["return"] = CallToolResult
    server.tool(**tool(act))(call)
