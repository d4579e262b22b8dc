"""Text PostgreSQL cannot store (a NUL character, a lone surrogate), and a reason that only
looks filled in (Hangul fillers), through every door: a clear 4xx with a code, nothing
written, never a 500 or a database error leaking out.

Found while fuzzing the API: before the fix, each of these was a 500 (``DataError``).
Pinned here because a bounded fuzzing run does not hit them on every seed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from mcp import Client as McpClient

from eventstore.models import Event
from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import decisions

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings: Any) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    events = append_events(3)
    wedged_reaction("mailer", events[0], failing=events[1])
    return {"events": events, "token": issue_token(operator("robot")).secret}


def state() -> tuple[Any, ...]:
    return (
        list(Bookmark.objects.order_by("pk").values()),
        list(Event.objects.order_by("position").values_list("event_id", flat=True)),
    )


def bearer(world: dict[str, Any]) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {world['token']}"}


@pytest.mark.parametrize("path", ["/agent/reactions/%00", "/agent/reactions/mail%00er"])
def test_a_nul_in_a_reaction_name_is_404_when_read(world, path) -> None:
    response = Client().get(path, **bearer(world))
    assert response.status_code == 404
    assert response.json()["code"] == "reaction_not_found"


@pytest.mark.parametrize(
    ("path", "reason", "status", "code"),
    [
        ("/agent/reactions/mail%00er/dismiss-event", "poison", 404, "reaction_not_found"),
        ("/agent/reactions/mailer/dismiss-event", "poison\x00", 400, "unstorable_text"),
        ("/agent/reactions/mailer/dismiss-event", "\x00", 400, "unstorable_text"),
        # JSON may escape a lone surrogate; Python decodes it, PostgreSQL cannot store it.
        ("/agent/reactions/mailer/dismiss-event", "poison \ud800", 400, "unstorable_text"),
        # Letters by category that render as nothing: a reason that only looks filled in.
        ("/agent/reactions/mailer/dismiss-event", "\u3164", 400, "reason_required"),
        ("/agent/reactions/mailer/dismiss-event", "\u115f\u1160 \uffa0", 400, "reason_required"),
    ],
)
def test_unstorable_text_is_a_4xx_through_rest(world, path, reason, status, code) -> None:
    body = json.dumps({"event_id": str(world["events"][1].event_id), "reason": reason})
    before = state()
    response = Client().post(path, body, content_type="application/json", **bearer(world))
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert state() == before
    assert decisions() == []


@pytest.mark.django_db(transaction=True)  # the in-process server looks the token up in a thread
@pytest.mark.parametrize(
    ("name", "reason", "code"),
    [
        ("mail\x00er", "poison", "reaction_not_found"),
        ("mailer", "a\x00b", "unstorable_text"),
        ("mailer", "\u3164\u3164", "reason_required"),
    ],
)
def test_unstorable_text_is_a_tool_error_through_mcp(world, name, reason, code) -> None:
    arguments = {
        "subscriber_name": name,
        "event_id": str(world["events"][1].event_id),
        "reason": reason,
    }

    async def main() -> Any:
        async with McpClient(build_mcp_server(token=world["token"])) as client:
            return await client.call_tool("dismiss_event_in_reaction", arguments)

    before = state()
    result = anyio.run(main)
    assert result.is_error
    assert json.loads(result.content[0].text)["code"] == code
    assert state() == before


def test_a_nul_in_an_admin_reason_is_a_form_error(world) -> None:
    client = Client()
    client.force_login(User.objects.get(username="robot"))
    before = state()
    response = client.post(
        reverse("admin:subscribers_bookmark_changelist"),
        {
            "action": "dismiss_event",
            ACTION_CHECKBOX_NAME: ["mailer"],
            "event_id": str(world["events"][1].event_id),
            "reason": "poison\x00",
            "apply": "Dismiss the event",
        },
    )
    assert response.status_code == 200
    assert "Null characters are not allowed" in response.content.decode()
    assert state() == before


def test_a_nul_in_the_admin_selection_changes_nothing(world) -> None:
    client = Client()
    client.force_login(User.objects.get(username="robot"))
    before = state()
    response = client.post(
        reverse("admin:subscribers_bookmark_changelist"),
        {"action": "dismiss_event", ACTION_CHECKBOX_NAME: ["mail\x00er"], "index": 0},
    )
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Select exactly one reaction."]
    assert state() == before


def test_a_non_uuid_event_id_in_the_admin_form_changes_nothing(world) -> None:
    client = Client()
    client.force_login(User.objects.get(username="robot"))
    before = state()
    response = client.post(
        reverse("admin:subscribers_bookmark_changelist"),
        {
            "action": "dismiss_event",
            ACTION_CHECKBOX_NAME: ["mailer"],
            "event_id": "<script>x</script>",
            "reason": "poison",
            "preview": "Preview this event",
        },
    )
    assert response.status_code == 200
    assert "<script>x</script>" not in response.content.decode()
    assert state() == before
    assert uuid.UUID(str(world["events"][1].event_id))
