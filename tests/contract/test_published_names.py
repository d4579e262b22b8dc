"""What clients are built against stays as published: the REST operations (method, path,
operation id) and the MCP tools (name, arguments, which are required).

The doors add many acts in loops (``BY_FLAG`` gives the rebuild's REST paths, view names
and MCP tools; ``add_act_tool`` writes a tool's signature), so renaming a CLI flag or an
input's field would move a published name without any hand-written route changing. A
change here is a change of the published interface: say so in docs/deployment.md.
"""

from __future__ import annotations

import anyio

from reactions_admin.doors.mcp.server import build_mcp_server
from reactions_admin.doors.rest.api import api

OPERATIONS = {
    ("GET", "/agent/failures"): "console_failures",
    ("GET", "/agent/failures/{fingerprint}"): "console_failure",
    ("POST", "/agent/failures/{fingerprint}/dismiss"): "console_dismiss_group",
    ("POST", "/agent/failures/{fingerprint}/retry"): "console_retry_group",
    ("GET", "/agent/reactions"): "reactions_reactions",
    ("GET", "/agent/reactions/{name}"): "reactions_reaction",
    ("POST", "/agent/reactions/{name}/dismiss-event"): "reactions_dismiss_event",
    ("GET", "/agent/reactions/{name}/parked-streams"): "reactions_parked_streams",
    ("POST", "/agent/reactions/{name}/parked-streams/dismiss"): "reactions_dismiss_stream",
    ("POST", "/agent/reactions/{name}/parked-streams/dismiss-head"): "reactions_dismiss_head",
    ("POST", "/agent/reactions/{name}/parked-streams/retry"): "reactions_retry_stream",
    ("GET", "/agent/subscribers"): "console_subscribers",
    ("GET", "/agent/subscribers/{name}"): "console_subscriber",
    ("POST", "/agent/subscribers/{name}/pause"): "console_pause_subscriber",
    ("GET", "/agent/subscribers/{name}/rebuild"): "rebuilds_rebuild",
    ("POST", "/agent/subscribers/{name}/rebuild"): "rebuilds_start",
    ("POST", "/agent/subscribers/{name}/rebuild/cancel"): "rebuilds_cancel",
    ("POST", "/agent/subscribers/{name}/rebuild/pause"): "rebuilds_pause",
    ("POST", "/agent/subscribers/{name}/rebuild/resume"): "rebuilds_resume",
    ("POST", "/agent/subscribers/{name}/rebuild/retry"): "rebuilds_retry",
    ("POST", "/agent/subscribers/{name}/rebuild/roll-back"): "rebuilds_roll_back",
    ("POST", "/agent/subscribers/{name}/rebuild/swap"): "rebuilds_swap",
    ("POST", "/agent/subscribers/{name}/resume"): "console_resume_subscriber",
    ("POST", "/agent/subscribers/{name}/retry-now"): "console_retry_subscriber_now",
    ("GET", "/agent/workers"): "console_workers",
}

#: Tool -> its arguments in order, the optional ones marked with "?".
ON_SUBSCRIBER = ("subscriber_name", "reason")
ON_GROUP = ("fingerprint", "expected_count", "reason")
TOOLS = {
    "dismiss_event_in_reaction": ("subscriber_name", "event_id", "reason"),
    "list_reactions": (),
    "list_parked_streams": ("subscriber_name",),
    "dismiss_parked_stream": ("subscriber_name", "stream_id", "reason"),
    "retry_parked_stream": ("subscriber_name", "stream_id", "reason?"),
    "list_subscribers": (),
    "diagnose_subscriber": ("subscriber_name",),
    "list_workers": (),
    "retry_subscriber_now": ON_SUBSCRIBER,
    "pause_subscriber": ON_SUBSCRIBER,
    "resume_subscriber": ON_SUBSCRIBER,
    "list_failure_groups": (),
    "dismiss_failure_group": ON_GROUP,
    "retry_failure_group": ON_GROUP,
    "rebuild_state": ("subscriber_name",),
    "start_rebuild": ("subscriber_name", "reason", "swap_when_verified?"),
    "swap_rebuild": ON_SUBSCRIBER,
    "cancel_rebuild": ON_SUBSCRIBER,
    "roll_back_rebuild": ON_SUBSCRIBER,
    "pause_rebuild": ON_SUBSCRIBER,
    "resume_rebuild": ON_SUBSCRIBER,
    "retry_rebuild": ON_SUBSCRIBER,
}


def test_the_rest_operations_keep_their_paths_and_operation_ids() -> None:
    published = {
        (method.upper(), path): operation["operationId"].removeprefix("reactions_admin_doors_rest_")
        for path, methods in api.get_openapi_schema()["paths"].items()
        for method, operation in methods.items()
    }
    assert published == OPERATIONS


def test_the_mcp_tools_keep_their_names_and_arguments() -> None:
    listed = anyio.run(build_mcp_server().list_tools)
    published = {}
    for tool in listed:
        schema = tool.input_schema
        required = set(schema.get("required", ()))
        published[tool.name] = tuple(
            name if name in required else f"{name}?" for name in schema.get("properties", {})
        )
    assert published == TOOLS
