"""The MCP door, through the SDK's own client: in-process, and over streamable HTTP at /mcp.

Transactional: the tools reach the database from their own thread (sync_to_async),
so the rows a test creates must be committed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import pytest
from mcp import Client

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from subscribers.models import Bookmark
from tests.factories import operator, wedged_mailer
from tests.support import decisions, served_asgi

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def events():
    return wedged_mailer(4)


def call(token: str | None, tool: str, arguments: dict[str, Any] | None = None):
    async def main():
        async with Client(build_mcp_server(token=token)) as client:
            return await client.call_tool(tool, arguments or {})

    return anyio.run(main)


def error_of(result) -> Any:
    assert result.is_error
    return json.loads(result.content[0].text)


def test_the_tools_are_listed(token) -> None:
    async def main():
        async with Client(build_mcp_server(token=token)) as client:
            return await client.list_tools()

    names = {tool.name for tool in anyio.run(main).tools}
    assert {"dismiss_event_in_reaction", "list_reactions"} <= names


def test_every_tool_names_the_subscriber_it_acts_on_subscriber_name(token) -> None:
    async def main():
        async with Client(build_mcp_server(token=token)) as client:
            return await client.list_tools()

    arguments = {tool.name: set(tool.input_schema["properties"]) for tool in anyio.run(main).tools}
    assert "subscriber_name" in arguments["rebuild_state"]
    assert "subscriber_name" in arguments["swap_rebuild"]
    assert all("projection_name" not in taken for taken in arguments.values()), arguments


def test_dismiss_event_in_reaction(events, token) -> None:
    arguments = {
        "subscriber_name": "mailer",
        "event_id": str(events[2].event_id),
        "reason": "poison",
    }
    result = call(token, "dismiss_event_in_reaction", arguments)
    assert not result.is_error, result.content
    payload = result.structured_content
    assert payload["cursor_after"] == events[2].cursor._asdict()
    assert payload["events_passed_over"] == 2
    [decision] = decisions()
    assert payload["decision_event_id"] == str(decision.event_id)
    assert decision.metadata["via"] == "mcp"
    assert decision.data["actor"]["username"] == "robot"
    assert Bookmark.objects.get(pk="mailer").cursor == events[2].cursor


@pytest.mark.parametrize(
    ("name", "event", "reason", "code"),
    [
        ("nobody", 1, "x", "reaction_not_found"),
        ("mailer", None, "x", "event_not_found"),
        ("mailer", "bad", "x", "invalid_event_id"),
        ("mailer", 1, "", "reason_required"),
        ("mailer", 0, "x", "rewind_refused"),
    ],
)
def test_refusals_are_tool_errors_with_the_same_codes(
    events, token, name, event, reason, code
) -> None:
    event_id = {None: str(uuid.uuid4()), "bad": "nope"}.get(event) or str(events[event].event_id)
    arguments = {"subscriber_name": name, "event_id": event_id, "reason": reason}
    assert error_of(call(token, "dismiss_event_in_reaction", arguments))["code"] == code
    assert decisions() == []


def test_without_a_valid_token_the_tools_refuse(events) -> None:
    arguments = {"subscriber_name": "mailer", "event_id": str(events[1].event_id), "reason": "x"}
    assert (
        error_of(call(None, "dismiss_event_in_reaction", arguments))["code"] == "not_authenticated"
    )
    assert error_of(call("edk_revoked", "list_reactions"))["code"] == "not_authenticated"
    intern = issue_token(operator("intern", permitted=False)).secret
    assert (
        error_of(call(intern, "dismiss_event_in_reaction", arguments))["code"]
        == "permission_denied"
    )
    assert decisions() == []


def test_list_reactions(events, token) -> None:
    result = call(token, "list_reactions")
    assert not result.is_error
    [mailer] = result.structured_content["reactions"]
    assert mailer["name"] == "mailer"
    assert mailer["status"] == "wedged"
    assert mailer["failing_event_id"] == str(events[1].event_id)


class Reply:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.body = status, body

    def json(self) -> Any:
        return json.loads(self.body)


def asgi_post(headers: dict[str, str]) -> Reply:
    """One POST /mcp through config.asgi.application, as an ASGI server would send it."""
    from config.asgi import application

    headers = {"Host": "127.0.0.1:8000", "Content-Type": "application/json", **headers}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(application, scope, receive, send)  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return Reply(
        status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )


def test_http_refuses_a_request_without_a_token() -> None:
    response = asgi_post({})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_http_refuses_an_unknown_token() -> None:
    response = asgi_post({"Authorization": "Bearer edk_unknown"})
    assert response.status_code == 401


def test_http_refuses_a_foreign_origin(token) -> None:
    response = asgi_post({"Authorization": f"Bearer {token}", "Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json()["code"] == "origin_refused"


def test_http_refuses_a_foreign_host(token) -> None:
    response = asgi_post({"Authorization": f"Bearer {token}", "Host": "evil.example"})
    assert response.status_code == 403
    assert response.json()["code"] == "host_refused"


@pytest.fixture
def served_app():
    """config.asgi.application under uvicorn on a free port, lifespan included."""
    with served_asgi() as base_url:
        yield f"{base_url}/mcp"


def test_a_dismissal_over_streamable_http(events, token, served_app) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(served_app, http_client=http)) as client:
            arguments = {
                "subscriber_name": "mailer",
                "event_id": str(events[1].event_id),
                "reason": "poison",
            }
            return await client.call_tool("dismiss_event_in_reaction", arguments)

    result = anyio.run(main)
    assert not result.is_error, result.content
    [decision] = decisions()
    assert result.structured_content["decision_event_id"] == str(decision.event_id)
    assert decision.data["actor"]["username"] == "robot"


def test_a_dismissal_over_stdio(events, token) -> None:
    """``manage.py mcp_server`` as a subprocess, acting with EVENTDESK_API_TOKEN."""
    import os
    import sys
    from urllib.parse import quote

    from django.conf import settings
    from django.db import connection
    from mcp import StdioServerParameters

    db = connection.settings_dict
    url = f"postgresql://{quote(db['USER'])}@{quote(db['HOST'], safe='')}:{db['PORT']}/{db['NAME']}"
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_server"],
        env={**os.environ, "DATABASE_URL": url, "EVENTDESK_API_TOKEN": token},
        cwd=str(settings.BASE_DIR),
    )

    async def main():
        async with Client(parameters) as client:
            listing = await client.call_tool("list_reactions", {})
            arguments = {
                "subscriber_name": "mailer",
                "event_id": str(events[1].event_id),
                "reason": "poison",
            }
            return listing, await client.call_tool("dismiss_event_in_reaction", arguments)

    listing, result = anyio.run(main)
    assert [r["name"] for r in listing.structured_content["reactions"]] == ["mailer"]
    assert not result.is_error, result.content
    assert Bookmark.objects.get(pk="mailer").cursor == events[1].cursor
    assert decisions()[0].metadata["via"] == "mcp"


def test_the_stdio_command_help_lists_every_tool_it_serves(token) -> None:
    import os
    import subprocess
    import sys

    from django.conf import settings

    async def main():
        async with Client(build_mcp_server(token=token)) as client:
            return await client.list_tools()

    shown = subprocess.run(
        [sys.executable, "manage.py", "mcp_server", "--help"],
        cwd=str(settings.BASE_DIR),
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    listed = shown[shown.index("Tools: ") :].replace("\n", " ")
    names = [tool.name for tool in anyio.run(main).tools]
    assert len(names) > 20
    for name in names:
        assert f" {name}," in listed or f" {name}." in listed, name
