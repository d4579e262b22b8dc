"""A worker whose wake-ups do not arrive (its heartbeat says ``wakeups_working = false``)
is shown by every reading door: the home page's diagnosis, the Workers page,
``GET /agent/workers``, ``GET /agent/subscribers`` and the MCP ``diagnose_subscriber``:
"wake-ups are not arriving; polling every 5 s"."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from mcp import Client as McpClient

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from subscribers.models import Bookmark, WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = "wake-ups are not arriving; polling every 5 s"


def viewer() -> User:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    return User.objects.get(pk=user.pk)


def board_and_worker(pid: int, name: str, *, wakeups_working: bool) -> None:
    """The projection "board", and a live worker ``host:{pid}:{name}`` running it."""
    Bookmark.objects.create(subscriber_name="board", kind="projection")
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id=f"host:{pid}:{name}", host="host", pid=pid, started_at=now, last_seen_at=now,
        interval_seconds=5.0, subscribers=["board"], doing=[], wakeups_working=wakeups_working,
    )  # fmt: skip


@pytest.fixture
def polling_worker() -> None:
    board_and_worker(7, "polling", wakeups_working=False)


def mcp(secret: str, tool: str, arguments: dict[str, Any]) -> Any:
    async def main() -> Any:
        async with McpClient(build_mcp_server(token=secret)) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(main)


@pytest.mark.usefixtures("polling_worker")
def test_every_reading_door_says_the_wakeups_are_not_arriving() -> None:
    user = viewer()
    secret = issue_token(user).secret
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    [worker] = api.get("/agent/workers").json()
    assert (worker["wakeups_working"], worker["wakeups"]) == (False, WORDS)
    board = api.get("/agent/subscribers/board").json()
    assert WORDS in board["diagnosis"]["summary"]
    assert "wakeups_not_arriving" in [c["state"] for c in board["diagnosis"]["causes"]]
    result = mcp(secret, "diagnose_subscriber", {"subscriber_name": "board"})
    assert not result.is_error, result.content
    assert WORDS in result.structured_content["diagnosis"]["summary"]
    browser = Client()
    browser.force_login(user)
    for page in ("/admin/", "/admin/console/workers/"):
        response = browser.get(page)
        assert response.status_code == 200, page
        assert WORDS in response.content.decode(), page


def test_a_worker_whose_wakeups_arrive_says_nothing_of_it() -> None:
    board_and_worker(8, "listening", wakeups_working=True)
    secret = issue_token(viewer()).secret
    board = Client().get("/agent/subscribers/board", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert "wake-ups" not in board.content.decode()
