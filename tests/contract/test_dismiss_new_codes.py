"""The new dismissal refusals through every door (issue 9, B5 and C12): each shows the same
code -- 409 ``event_not_visible_yet`` while a transaction that began before the target is
still open, 409 ``event_already_dismissed`` for an event dismissed before -- and the
success payload carries ``handled_events_passed_over``."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from mcp import Client as McpClient

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_mailer
from tests.support import decisions, raw_connection

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/agent/reactions/mailer/dismiss-event"


@pytest.fixture
def events():
    return wedged_mailer(3)


@pytest.fixture
def hidden(events) -> Iterator[tuple[Any, int]]:
    """An event committed while a transaction that began before it stays open (its pid)."""
    with raw_connection(autocommit=False) as session:
        session.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
            " VALUES (%s, %s, 1, 'OrderPlaced', '{}', '{}')",
            [uuid.uuid4(), f"slow-{uuid.uuid4()}"],
        )
        pid = _pid(session)
        [late] = append_events(1, stream="orders-late")
        yield late, pid
        session.rollback()


def _pid(session: psycopg.Connection[Any]) -> int:
    row = session.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def rest(token: str, event_id: Any, reason: str = "poison") -> Any:
    return Client().post(
        URL,
        json.dumps({"event_id": str(event_id), "reason": reason}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def cli(event_id: Any, username: str = "operator") -> str:
    out = io.StringIO()
    call_command(
        "dismiss_event", "mailer", str(event_id), "--reason", "poison", "--as", username,
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return out.getvalue()


def mcp(token: str, event_id: Any) -> Any:
    async def main() -> Any:
        async with McpClient(build_mcp_server(token=token)) as client:
            return await client.call_tool(
                "dismiss_event_in_reaction",
                {"subscriber_name": "mailer", "event_id": str(event_id), "reason": "poison"},
            )

    return anyio.run(main)


# --- 409 event_not_visible_yet --------------------------------------------------------------


def test_rest_refuses_an_event_not_yet_visible_naming_the_transaction(events, hidden) -> None:
    late, pid = hidden
    response = rest(issue_token(operator("robot")).secret, late.event_id)
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "event_not_visible_yet"
    assert f"pid {pid} " in body["detail"]
    assert Bookmark.objects.get(pk="mailer").cursor == events[0].cursor
    assert decisions() == []


def test_cli_refuses_an_event_not_yet_visible(events, hidden) -> None:
    late, pid = hidden
    operator()
    with pytest.raises(CommandError, match="event_not_visible_yet") as refused:
        cli(late.event_id)
    assert refused.value.returncode == 3
    assert f"pid {pid} " in str(refused.value)
    assert decisions() == []


def test_mcp_refuses_an_event_not_yet_visible(events, hidden) -> None:
    late, _ = hidden
    result = mcp(issue_token(operator("robot")).secret, late.event_id)
    assert result.is_error
    assert json.loads(result.content[0].text)["code"] == "event_not_visible_yet"
    assert decisions() == []


# --- 409 event_already_dismissed ------------------------------------------------------------


def test_rest_says_an_event_was_already_dismissed(events) -> None:
    alice, bob = (issue_token(operator(name)).secret for name in ("alice", "bob"))
    first = rest(alice, events[1].event_id)
    assert first.status_code == 200, first.content
    assert first.json()["events_passed_over"] == 1
    assert first.json()["handled_events_passed_over"] == 1

    again = rest(bob, events[1].event_id, "again")

    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "event_already_dismissed"
    assert "alice" in body["detail"]
    assert first.json()["decision_event_id"] in body["detail"]
    assert len(decisions()) == 1


def test_cli_says_an_event_was_already_dismissed(events) -> None:
    operator()
    output = cli(events[2].event_id)
    assert "2 event(s) passed over" in output
    [decision] = decisions()
    with pytest.raises(CommandError, match="event_already_dismissed") as refused:
        cli(events[2].event_id)
    assert refused.value.returncode == 3
    assert str(decision.event_id) in str(refused.value)
    assert "operator" in str(refused.value)
    assert len(decisions()) == 1


def test_mcp_says_an_event_was_already_dismissed(events) -> None:
    token = issue_token(operator("robot")).secret
    first = mcp(token, events[1].event_id)
    assert not first.is_error
    assert first.structured_content["handled_events_passed_over"] == 1
    again = mcp(token, events[1].event_id)
    assert again.is_error
    assert json.loads(again.content[0].text)["code"] == "event_already_dismissed"


# --- 400 reason_required for a reason of invisible characters only (B8) ---------------------


@pytest.mark.parametrize("reason", ["\u200b", " \u200b\u2060\ufeff ", "\u00ad"])
def test_rest_refuses_a_reason_of_invisible_characters(events, reason: str) -> None:
    response = rest(issue_token(operator("robot")).secret, events[1].event_id, reason)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "reason_required"
    assert decisions() == []
