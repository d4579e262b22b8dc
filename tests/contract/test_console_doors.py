"""The console's actions and readings through every door (REST, MCP, CLI, admin): the same
handler, the same error codes; and the access matrix of every new door x {anonymous, bad
token, no permission, view-only, operator}. A refusal changes nothing."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from mcp import Client as McpClient

from eventstore.models import Event
from reactions_admin.acts.failure_groups.fingerprint import fingerprint
from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from subscribers.models import Bookmark
from tests.factories import operator, wedged_mailer
from tests.support import command_outcome

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = ["anonymous", "bad-token", "no-permission", "view-only", "operator"]
USERS = {"no-permission": "intern", "view-only": "viewer", "operator": "ops"}
CHANGELIST = "/admin/subscribers/bookmark/"
ERROR = "ContextWindowExceeded: prompt is 38,545 tokens"


@dataclass
class World:
    tokens: dict[str, str | None]
    failing: str
    fingerprint: str


@pytest.fixture
def world(settings: Any) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    events = wedged_mailer(3)
    Bookmark.objects.filter(pk="mailer").update(last_error=ERROR)
    Bookmark.objects.create(subscriber_name="board", kind="projection")
    User.objects.create_user("intern", password="pw", is_staff=True)
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    operator("ops", permitted=True, operates=True)
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "bad-token": "edk_" + secrets.token_urlsafe(32),
    }
    for caller, username in USERS.items():
        tokens[caller] = issue_token(User.objects.get(username=username)).secret
    return World(tokens, str(events[1].event_id), fingerprint(ERROR).id)


def state() -> Any:
    return (
        list(Bookmark.objects.order_by("pk").values()),
        Event.objects.filter(stream_id__startswith="decisions-subscriber").count(),
        Event.objects.filter(stream_id="decisions-reaction-dismissal").count(),
    )


# -- the doors: each returns (status or exit code, error code or "") -----------------------


def rest(world: World, caller: str, method: str, path: str, body: Any = None) -> tuple[int, str]:
    secret = world.tokens[caller]
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    client = Client(enforce_csrf_checks=True)
    if method == "get":
        response = client.get(path, **headers)
    else:
        response = client.post(path, json.dumps(body), content_type="application/json", **headers)
    payload = response.json()
    return response.status_code, payload.get("code", "") if response.status_code >= 400 else ""


def mcp(world: World, caller: str, tool: str, arguments: dict[str, Any]) -> tuple[int, str]:
    async def main() -> Any:
        async with McpClient(build_mcp_server(token=world.tokens[caller])) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(main)
    return (1, json.loads(result.content[0].text)["code"]) if result.is_error else (0, "")


def cli(world: World, caller: str, *args: str) -> tuple[int, str]:
    username = {"bad-token": "ghost", **USERS}.get(caller)
    extra = ["--as", username] if username else []
    code, message = command_outcome(*args, *extra)
    return code, message.split(":")[0]


def admin(world: World, caller: str, action: str) -> tuple[int, str]:
    client = Client()
    if caller in USERS:
        client.force_login(User.objects.get(username=USERS[caller]))
    elif caller == "bad-token":
        client.cookies[settings.SESSION_COOKIE_NAME] = secrets.token_hex(16)
    data = {"action": action, ACTION_CHECKBOX_NAME: ["mailer"], "reason": "x", "apply": "go"}
    response = client.post(CHANGELIST, data)
    if response.status_code == 302 and "/login/" in response["Location"]:
        return 302, "login"
    return response.status_code, ""


# -- the same operation through each door -----------------------------------------------------

Door = Callable[[World, str], tuple[int, str]]

PAUSE: dict[str, Door] = {
    "rest": lambda w, c: rest(w, c, "post", "/agent/subscribers/mailer/pause", {"reason": "x"}),
    "mcp": lambda w, c: mcp(w, c, "pause_subscriber", {"subscriber_name": "mailer", "reason": "x"}),
    "cli": lambda w, c: cli(w, c, "pause_subscriber", "mailer", "--reason", "x"),
    "admin": lambda w, c: admin(w, c, "pause_action"),
}
READ: dict[str, Door] = {
    "rest": lambda w, c: rest(w, c, "get", "/agent/subscribers"),
    "mcp": lambda w, c: mcp(w, c, "diagnose_subscriber", {"subscriber_name": "mailer"}),
    "cli": lambda w, c: cli(w, c, "subscribers"),
}
BULK: dict[str, Door] = {
    "rest": lambda w, c: rest(
        w, c, "post", f"/agent/failures/{w.fingerprint}/dismiss",
        {"reason": "x", "expected_count": 1},
    ),
    "mcp": lambda w, c: mcp(
        w, c, "dismiss_failure_group",
        {"fingerprint": w.fingerprint, "expected_count": 1, "reason": "x"},
    ),
    "cli": lambda w, c: cli(
        w, c, "failures", "--dismiss", w.fingerprint, "--expect", "1", "--reason", "x"
    ),
}  # fmt: skip

#: (door, caller) -> what a refused caller observes; every other pair succeeds.
REFUSED: dict[tuple[str, str], tuple[int, str]] = {
    **{("rest", c): (401, "not_authenticated") for c in ("anonymous", "bad-token")},
    ("rest", "no-permission"): (403, "permission_denied"),
    ("rest", "view-only"): (403, "permission_denied"),
    **{("mcp", c): (1, "not_authenticated") for c in ("anonymous", "bad-token")},
    ("mcp", "no-permission"): (1, "permission_denied"),
    ("mcp", "view-only"): (1, "permission_denied"),
    ("cli", "anonymous"): (1, "Error"),  # argparse: --as is required to act
    ("cli", "bad-token"): (3, "not_authenticated"),
    ("cli", "no-permission"): (3, "permission_denied"),
    ("cli", "view-only"): (3, "permission_denied"),
    **{("admin", c): (302, "login") for c in ("anonymous", "bad-token")},
    ("admin", "no-permission"): (403, ""),  # no view permission: Django's own 403
    ("admin", "view-only"): (200, ""),  # the changelist: the action is not offered
}
SUCCESS = {"rest": (200, ""), "mcp": (0, ""), "cli": (0, ""), "admin": (302, "")}


def assert_done_or_refused(
    observed: tuple[int, str], door: str, caller: str, before: Any, done: Callable[[], bool]
) -> None:
    """The operator's call succeeds and ``done()`` holds; any other caller observes the
    refusal REFUSED lists, and nothing changed."""
    if caller == "operator":
        assert observed == SUCCESS[door]
        assert done()
        return
    assert observed == REFUSED[(door, caller)]
    assert state() == before


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", list(PAUSE))
def test_pause_through_every_door(world, door, caller) -> None:
    before = state()
    observed = PAUSE[door](world, caller)
    assert_done_or_refused(
        observed, door, caller, before, lambda: Bookmark.objects.get(pk="mailer").status == "paused"
    )


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", list(BULK))
def test_dismissing_a_failure_group_through_every_door(world, door, caller) -> None:
    before = state()
    observed = BULK[door](world, caller)
    if door == "cli" and caller == "anonymous":
        assert observed[0] == 2  # --dismiss needs --as: a usage error
        assert state() == before
        return
    assert_done_or_refused(
        observed, door, caller, before,
        lambda: Bookmark.objects.get(pk="mailer").failing_event_id is None,
    )  # fmt: skip


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", list(READ))
def test_reading_through_every_door(world, door, caller) -> None:
    observed = READ[door](world, caller)
    if caller in ("view-only", "operator") or (door == "cli" and caller == "anonymous"):
        # manage.py subscribers without --as reads as the shell's account.
        assert observed == SUCCESS[door]
        return
    assert observed == REFUSED[(door, caller)]


# -- the same error codes at every door -------------------------------------------------------


@pytest.mark.parametrize(
    ("rest_path", "tool", "command", "code"),
    [
        ("board/retry-now", "retry_subscriber_now", "retry_now", "nothing_to_retry"),
        ("board/resume", "resume_subscriber", "resume_subscriber", "not_paused"),
        ("nope/pause", "pause_subscriber", "pause_subscriber", "subscriber_not_found"),
    ],
)
def test_refusals_have_the_same_code_at_every_door(world, rest_path, tool, command, code) -> None:
    name = rest_path.split("/")[0]
    before = state()
    assert (
        rest(world, "operator", "post", f"/agent/subscribers/{rest_path}", {"reason": "x"})[1]
        == code
    )
    assert mcp(world, "operator", tool, {"subscriber_name": name, "reason": "x"}) == (1, code)
    assert cli(world, "operator", command, name, "--reason", "x") == (3, code)
    assert state() == before


def test_retry_now_and_resume_through_rest_mcp_and_cli(world) -> None:
    assert rest(world, "operator", "post", "/agent/subscribers/mailer/retry-now", {"reason": "x"})
    mark = Bookmark.objects.get(pk="mailer")
    assert (mark.status, mark.attempts) == ("retrying", 5)
    assert mcp(world, "operator", "pause_subscriber", {"subscriber_name": "mailer", "reason": "x"})
    assert cli(world, "operator", "resume_subscriber", "mailer", "--reason", "back") == (0, "")
    assert Bookmark.objects.get(pk="mailer").status == "retrying"
    choices = [
        e.data["choice"]
        for e in Event.objects.filter(stream_id="decisions-subscriber-operations").order_by(
            "position"
        )
    ]
    assert choices == ["RetriedNow", "Paused", "Resumed"]


def test_a_failure_group_preview_through_rest_mcp_and_cli(world) -> None:
    status, _ = rest(world, "view-only", "get", f"/agent/failures/{world.fingerprint}")
    assert status == 200
    body = (
        Client()
        .get(
            f"/agent/failures/{world.fingerprint}",
            HTTP_AUTHORIZATION=f"Bearer {world.tokens['view-only']}",
        )
        .json()
    )
    assert (body["count"], body["pattern"]) == (1, "prompt is <n> tokens")
    assert body["items"][0]["event_id"] == world.failing
    out = io.StringIO()
    call_command("failures", "--show", world.fingerprint, stdout=out)
    assert world.failing in out.getvalue()
    # A count that is not the previewed one: the same 409 everywhere.
    assert rest(
        world, "operator", "post", f"/agent/failures/{world.fingerprint}/dismiss",
        {"reason": "x", "expected_count": 2},
    ) == (409, "group_changed")  # fmt: skip
    assert cli(
        world, "operator", "failures", "--dismiss", world.fingerprint, "--expect", "2",
        "--reason", "x",
    ) == (3, "group_changed")  # fmt: skip


def test_every_action_and_its_permission_is_in_the_openapi_document() -> None:
    paths = Client().get("/agent/openapi.json").json()["paths"]
    for path, permission in [
        ("/agent/subscribers/{name}/retry-now", "reactions_admin.operate_subscriber"),
        ("/agent/subscribers/{name}/pause", "reactions_admin.operate_subscriber"),
        ("/agent/subscribers/{name}/resume", "reactions_admin.operate_subscriber"),
        ("/agent/failures/{fingerprint}/dismiss", "reactions_admin.dismiss_event"),
        ("/agent/failures/{fingerprint}/retry", "reactions_admin.operate_subscriber"),
        ("/agent/reactions/{name}/dismiss-event", "reactions_admin.dismiss_event"),
    ]:
        assert permission in paths[path]["post"]["description"], path
    assert "reactions_admin.view_console" in paths["/agent/subscribers"]["get"]["description"]


def test_failures_without_the_options_an_act_needs_is_a_usage_error() -> None:
    # Exit 2, as argparse's for a required option left out (dismiss_event without --reason).
    assert command_outcome("failures", "--dismiss", "f" * 16, "--as", "ops") == (
        2,
        "--dismiss/--retry need --expect N, --reason and --as USERNAME",
    )
    assert command_outcome("failures", "--retry", "f" * 16, "--expect", "1", "--reason", "x") == (
        2,
        "--dismiss/--retry need --as USERNAME",
    )
