"""Who may rebuild a projection: 5 callers x 4 doors x the acts start, swap, cancel and roll
back, each in the state where the act would succeed; nothing changes on a refusal.

Doors: the REST endpoint, the admin action (its confirmation POST through the real
changelist), the MCP tool over streamable HTTP (real uvicorn, real JSON-RPC), and the
CLI. Callers, mapped onto each door's own kind of credential:

=============  ==================  =====================  ==================  ===============
caller         REST                admin                  MCP over HTTP       CLI
=============  ==================  =====================  ==================  ===============
anonymous      no header           no session             no header           no ``--as``
bad-token      unknown token       forged session cookie  unknown token       unknown user
no-permission  token / session / ``--as`` of a staff user with no permission at all
view-only      ... of a staff user with ``reactions_admin.view_console`` only
operator       ... of a staff user with ``reactions_admin.rebuild_projection``
=============  ==================  =====================  ==================  ===============
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client

from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.rebuilds.handler import REBUILD_STREAM
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.models import Bookmark, Rebuild
from tests.rebuild_doors import ACTION, OPTION, REST_PATH, TOOL
from tests.support import VIA, command_outcome, mcp_outcome, mcp_over_http

NAME = "test.rb_totals"
CHANGELIST = "/admin/subscribers/bookmark/"
CALLERS = ["anonymous", "bad-token", "no-permission", "view-only", "operator"]
USERS = {"no-permission": "intern", "view-only": "viewer", "operator": "ops"}
ACTS = ["start", "swap", "cancel", "roll_back"]

#: What each act needs to succeed, and the phase it leaves.
BEFORE = {"start": None, "swap": "ready", "cancel": "started", "roll_back": "swapped"}
AFTER = {"start": "copying_schema", "swap": "swapped", "cancel": "cancelled",
         "roll_back": "rolled_back"}  # fmt: skip
CHOICE = {"start": "RebuildStarted", "swap": "RebuildSwapped", "cancel": "RebuildCancelled",
          "roll_back": "RebuildRolledBack"}  # fmt: skip


@pytest.fixture
def tokens(rebuilds: Any, settings: Any) -> dict[str, str | None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_user("intern", password="pw", is_staff=True)
    for username, codename in (("viewer", "view_console"), ("ops", "rebuild_projection")):
        user = User.objects.create_user(username, password="pw", is_staff=True)
        user.user_permissions.add(
            Permission.objects.get(codename=codename, content_type__app_label="reactions_admin")
        )
    found: dict[str, str | None] = {
        "anonymous": None,
        "bad-token": "edk_" + secrets.token_urlsafe(32),
    }
    for caller, username in USERS.items():
        found[caller] = issue_token(User.objects.get(username=username)).secret
    return found


def state() -> tuple[Any, ...]:
    """What a rebuild act could change: rebuilds, bookmarks, decisions, the live tables."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, n, total FROM rb_totals ORDER BY key")
        live = cursor.fetchall()
    return (
        list(Rebuild.objects.order_by("pk").values()),
        list(Bookmark.objects.order_by("pk").values()),
        [event.event_id for event in PostgresEventStore().read_stream(REBUILD_STREAM)],
        live,
    )


# -- the doors: each returns (status or exit code, what the caller saw) -------------------------


def rest_door(
    act: str, caller: str, tokens: dict[str, str | None], base_url: str
) -> tuple[int, str]:
    secret = tokens[caller]
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    response = Client(enforce_csrf_checks=True).post(
        f"/agent/subscribers/{NAME}/rebuild{REST_PATH[act]}",
        json.dumps({"reason": "matrix"}),
        content_type="application/json",
        **headers,
    )
    return response.status_code, response.json().get("code", "")


def admin_door(
    act: str, caller: str, tokens: dict[str, str | None], base_url: str
) -> tuple[int, str]:
    client = Client()
    if caller in USERS:
        client.force_login(User.objects.get(username=USERS[caller]))
    elif caller == "bad-token":
        client.cookies[settings.SESSION_COOKIE_NAME] = secrets.token_hex(16)
    selected = {"action": ACTION[act], ACTION_CHECKBOX_NAME: [NAME], "index": 0}
    opened = client.post(CHANGELIST, selected)
    applied = client.post(CHANGELIST, {**selected, "reason": "matrix", "apply": "go"})
    if applied.status_code == 302 and "/login/" in applied["Location"]:
        assert opened["Location"] == applied["Location"]
        return 302, "login"
    shown = [str(message) for message in get_messages(applied.wsgi_request)]
    if applied.status_code == 200:  # the changelist again: its messages are on the page
        shown.append(applied.content.decode())
    return applied.status_code, " ".join(shown)


def mcp_door(
    act: str, caller: str, tokens: dict[str, str | None], base_url: str
) -> tuple[int, str]:
    secret = tokens[caller]
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    arguments = {"subscriber_name": NAME, "reason": "matrix"}
    return mcp_outcome(mcp_over_http(base_url, TOOL[act], arguments, headers))


def cli_door(
    act: str, caller: str, tokens: dict[str, str | None], base_url: str
) -> tuple[int, str]:
    username = {"bad-token": "ghost", **USERS}.get(caller)
    args = [NAME, *OPTION[act], "--reason", "matrix"]
    if username:
        args += ["--as", username]
    return command_outcome("rebuild_projection", *args)


DOORS: dict[str, Callable[[str, str, dict[str, str | None], str], tuple[int, str]]] = {
    "rest": rest_door,
    "admin": admin_door,
    "mcp-http": mcp_door,
    "cli": cli_door,
}

#: What each caller observes at each door: (status or exit code, text it must contain).
EXPECTED: dict[tuple[str, str], tuple[int, str]] = {
    **{("rest", c): (401, "not_authenticated") for c in ("anonymous", "bad-token")},
    ("rest", "no-permission"): (403, "permission_denied"),
    ("rest", "view-only"): (403, "permission_denied"),
    ("rest", "operator"): (200, ""),
    **{("admin", c): (302, "login") for c in ("anonymous", "bad-token")},
    ("admin", "no-permission"): (403, ""),  # no view permission: Django's own 403
    # The changelist again: the actions are not offered without the permission.
    ("admin", "view-only"): (200, "Subscribers: bookmarks, lag and health"),
    ("admin", "operator"): (302, "Decision"),
    **{("mcp-http", c): (401, "not_authenticated") for c in ("anonymous", "bad-token")},
    ("mcp-http", "no-permission"): (200, "permission_denied"),
    ("mcp-http", "view-only"): (200, "permission_denied"),
    ("mcp-http", "operator"): (200, ""),
    ("cli", "anonymous"): (3, "not_authenticated"),  # an act needs --as
    ("cli", "bad-token"): (3, "not_authenticated"),
    ("cli", "no-permission"): (3, "permission_denied"),
    ("cli", "view-only"): (3, "permission_denied"),
    ("cli", "operator"): (0, ""),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize("act", ACTS)
def test_only_an_operator_rebuilds_through_any_door(
    act, door, caller, rebuilds, tokens, base_url
) -> None:
    setup = BEFORE[act]
    if setup is not None:
        getattr(rebuilds, setup)()
    before = state()
    observed_status, observed_text = DOORS[door](act, caller, tokens, base_url)
    status, text = EXPECTED[(door, caller)]
    assert observed_status == status, observed_text
    assert text in observed_text
    if caller != "operator":
        assert state() == before, f"a refused {act} at the {door} by {caller!r} changed state"
        return
    latest = Rebuild.objects.order_by("-created_at", "-id").first()
    assert latest is not None
    assert latest.phase == AFTER[act]
    decision = PostgresEventStore().read_stream(REBUILD_STREAM)[-1]
    assert decision.data["choice"] == CHOICE[act]
    assert decision.data["context"] == "ProjectionRebuild"
    assert decision.data["actor"]["username"] == "ops"
    assert decision.data["reason"] == "matrix"
    assert decision.metadata["via"] == VIA[door]
