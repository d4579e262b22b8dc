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

import secrets
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.db import connection

from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.rebuilds.handler import REBUILD_STREAM
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.models import Bookmark, Rebuild
from tests.contract import access
from tests.rebuild_doors import ACTION, OPTION, REST_PATH, TOOL
from tests.support import VIA

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


def rebuild_act(act: str) -> access.Act:
    """``act`` on the projection, with reason "matrix"."""
    selected = {"action": ACTION[act], ACTION_CHECKBOX_NAME: [NAME], "index": 0}
    return access.Act(
        rest=(f"/agent/subscribers/{NAME}/rebuild{REST_PATH[act]}", {"reason": "matrix"}),
        admin=(CHANGELIST, selected, {"reason": "matrix", "apply": "go"}),
        mcp=(TOOL[act], {"subscriber_name": NAME, "reason": "matrix"}),
        cli=["rebuild_projection", NAME, *OPTION[act], "--reason", "matrix"],
    )


def caller_of(caller: str, tokens: dict[str, str | None]) -> access.Caller:
    username = {"bad-token": "ghost", **USERS}.get(caller)
    return access.Caller(secret=tokens[caller], username=username)


#: What each caller observes at each door: (status or exit code, text it must contain).
EXPECTED = access.matrix(
    {
        "anonymous": access.UNAUTHENTICATED,  # at the CLI too: an act needs --as
        "bad-token": access.UNAUTHENTICATED,
        # No view permission: Django's own 403.
        "no-permission": {**access.UNPERMITTED, "admin": (403, "")},
        # The changelist again: the actions are not offered without the permission.
        "view-only": {**access.UNPERMITTED, "admin": (200, access.BOOKMARKS)},
        "operator": {**access.PERMITTED, "admin": (302, "Decision")},
    }
)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", access.DOORS)
@pytest.mark.parametrize("act", ACTS)
def test_only_an_operator_rebuilds_through_any_door(
    act, door, caller, rebuilds, tokens, base_url
) -> None:
    setup = BEFORE[act]
    if setup is not None:
        getattr(rebuilds, setup)()
    before = state()
    observed = access.through(door, rebuild_act(act), caller_of(caller, tokens), base_url)
    access.assert_observed(observed, EXPECTED[(door, caller)])
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
