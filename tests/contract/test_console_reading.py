"""Reading the console from every door: REST (projections too), MCP ``diagnose_subscriber``,
``manage.py subscribers``, and the decisions list (a link to the event, filters)."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from mcp import Client as McpClient

from eventstore.types import RecordedEvent
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)


def viewer(username: str = "viewer") -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def events() -> list[RecordedEvent]:
    events = wait_until_visible(append_events(4))
    wedged_reaction("mailer", events[0], failing=events[1])
    Bookmark.objects.create(
        subscriber_name="board", kind="projection", last_transaction_id=events[-1].transaction_id,
        last_position=events[-1].position,
    )  # fmt: skip
    return events


def get(path: str, secret: str) -> Any:
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_rest_lists_projections_and_reactions_with_their_diagnosis(events) -> None:
    secret = issue_token(viewer()).secret
    response = get("/agent/subscribers", secret)
    assert response.status_code == 200, response.content
    body = response.json()
    by_name = {s["name"]: s for s in body["subscribers"]}
    assert set(by_name) == {"board", "mailer"}
    assert by_name["board"]["kind"] == "projection"
    # Issuing the token appended its audit decision: one event the projection has yet to see.
    assert by_name["board"]["lag"] == 1
    assert by_name["board"]["diagnosis"]["summary"] == "no live worker runs it"
    mailer = by_name["mailer"]
    assert mailer["failing_event_id"] == str(events[1].event_id)
    assert mailer["diagnosis"]["state"] == "wedged"
    assert mailer["diagnosis"]["summary"].startswith(f"wedged on event {events[1].event_id}")
    assert body["counts"] == {"wedged": 1, "retrying": 0, "paused": 0, "stalled": 2, "total": 2}
    one = get("/agent/subscribers/board", secret)
    assert one.status_code == 200
    assert one.json()["name"] == "board"
    missing = get("/agent/subscribers/nope", secret)
    assert (missing.status_code, missing.json()["code"]) == (404, "subscriber_not_found")
    # The reactions-only listing is kept as it was.
    assert [r["name"] for r in get("/agent/reactions", issue_token(operator()).secret).json()] == [
        "mailer"
    ]


def test_the_openapi_document_lists_the_reading_operations() -> None:
    paths = Client().get("/agent/openapi.json").json()["paths"]
    assert {"/agent/subscribers", "/agent/subscribers/{name}", "/agent/workers"} <= set(paths)


def mcp(secret: str, tool: str | None = None, arguments: dict[str, Any] | None = None) -> Any:
    async def main() -> Any:
        async with McpClient(build_mcp_server(token=secret)) as client:
            if tool is None:
                return await client.list_tools()
            return await client.call_tool(tool, arguments or {})

    return anyio.run(main)


def test_mcp_diagnose_subscriber(events) -> None:
    secret = issue_token(viewer()).secret
    result = mcp(secret, "diagnose_subscriber", {"subscriber_name": "mailer"})
    assert not result.is_error, result.content
    assert result.structured_content["diagnosis"]["state"] == "wedged"
    missing = mcp(secret, "diagnose_subscriber", {"subscriber_name": "nope"})
    assert missing.is_error
    assert json.loads(missing.content[0].text)["code"] == "subscriber_not_found"


def test_mcp_input_schemas_describe_every_argument_and_mark_event_ids_as_uuids() -> None:
    tools = mcp("edk_any").tools
    assert {"diagnose_subscriber", "list_subscribers", "list_workers"} <= {t.name for t in tools}
    for tool in tools:
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
            if name == "event_id":
                assert schema.get("format") == "uuid", tool.name


def test_cli_lists_name_kind_status_lag_failing_event_and_diagnosis(events) -> None:
    out = io.StringIO()
    call_command("subscribers", stdout=out)
    text = out.getvalue()
    assert text.splitlines()[0] == "2 subscriber(s): 1 wedged, 0 retrying, 0 paused, 1 stalled"
    assert "caught up; no live worker runs it" in text
    [mailer] = [line for line in text.splitlines() if line.startswith("mailer")]
    assert "reaction" in mailer
    assert "wedged" in mailer
    assert str(events[1].event_id) in mailer
    assert "wedged on event" in mailer
    out = io.StringIO()
    call_command("subscribers", "--json", "--as", viewer().username, stdout=out)
    assert {s["name"] for s in json.loads(out.getvalue())["subscribers"]} == {"board", "mailer"}


def test_decisions_link_to_the_event_and_filter_by_subscriber_choice_actor_date(events) -> None:
    user = operator()
    dismiss_event_in_reaction("mailer", events[1].event_id, "poison", user)
    day = events[0].recorded_at
    client = Client()
    client.force_login(user)
    page = client.get("/admin/reactions_admin/decision/").content.decode()
    assert f'href="/admin/eventstore/event/{events[1].position}/change/"' in page
    for query, shown in [
        ("subscriber=mailer", True),
        ("subscriber=other", False),
        ("choice=EventDismissed", True),
        ("actor=operator", True),
        ("actor=someone", False),
        (
            f"recorded_at__year={day.year}&recorded_at__month={day.month}"
            f"&recorded_at__day={day.day}",
            True,
        ),
        (f"recorded_at__year={day.year - 1}", False),
    ]:
        listing = client.get(f"/admin/reactions_admin/decision/?{query}")
        assert listing.status_code == 200, query
        assert (str(events[1].event_id) in listing.content.decode()) is shown, query
