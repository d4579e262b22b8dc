"""Who may act on a parked stream: each act, door and kind of caller, and nothing
changes on a refusal (the access matrix of tests/contract/test_access_matrix.py, for the
acts of stream-ordered reactions).

Acts: dismiss the whole parked stream (``reactions_admin.dismiss_event``) and retry it now
(``reactions_admin.operate_subscriber``). The unpermitted caller holds the *other* of the
two permissions: neither one stands in for the other.

=============  ======================  ======================  ===================  ============
caller         REST                    admin                   MCP over HTTP        CLI
=============  ======================  ======================  ===================  ============
anonymous      no header               not logged in           no header            no ``--as``
bad token      unknown token           forged session cookie   unknown token        unknown user
unpermitted    token / session / ``--as`` of a staff user with the other permission only
permitted      token / session / ``--as`` of a staff user with the act's permission
=============  ======================  ======================  ===================  ============
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.models import ParkedStream
from tests.contract.conftest import ParkedWorld
from tests.factories import operator
from tests.stream_invariants import rows
from tests.support import VIA, command_outcome, mcp_outcome, mcp_over_http

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "test.streams"
CALLERS = ["anonymous", "bad token", "unpermitted", "permitted"]
PARKED = reverse("admin:reactions_admin_parkedstream_changelist")
LOGIN = reverse("admin:login")

#: act -> (REST path, MCP tool, CLI option, admin action, success words in the admin)
ACTS = {
    "dismiss stream": ("dismiss", "dismiss_parked_stream", "--dismiss-stream",
                       "dismiss_streams", "Dismissed stream"),
    "retry stream": ("retry", "retry_parked_stream", "--retry", "retry_streams",
                     "Retrying stream"),
}  # fmt: skip


@pytest.fixture
def callers(parked: ParkedWorld, settings: Any) -> dict[str, Any]:
    """Users "dismisser" (dismiss_event) and "operator" (operate_subscriber), their tokens."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    dismisser = operator("dismisser")
    ops = operator("ops", permitted=False, operates=True)
    return {
        "dismisser": dismisser,
        "ops": ops,
        "tokens": {"dismisser": issue_token(dismisser).secret, "ops": issue_token(ops).secret},
    }


def user_for(act: str, caller: str) -> str | None:
    """The username a caller acts as (None: anonymous; "ghost": no such user)."""
    holder, other = ("dismisser", "ops") if act == "dismiss stream" else ("ops", "dismisser")
    return {"permitted": holder, "unpermitted": other, "bad token": "ghost"}.get(caller)


def secret_for(act: str, caller: str, world: dict[str, Any]) -> str | None:
    username = user_for(act, caller)
    if username == "ghost":
        return "edk_" + secrets.token_urlsafe(32)
    return world["tokens"][username] if username else None


def state() -> tuple[Any, ...]:
    return (
        rows("SELECT * FROM reaction_work ORDER BY id"),
        rows("SELECT event_id FROM events ORDER BY position"),
    )


def rest_door(act: str, caller: str, world: dict[str, Any], base_url: str) -> tuple[int, str]:
    secret = secret_for(act, caller, world)
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    response = Client(enforce_csrf_checks=True).post(
        f"/agent/reactions/{NAME}/parked-streams/{ACTS[act][0]}",
        json.dumps({"stream_id": "bad", "reason": "poison"}),
        content_type="application/json",
        **headers,
    )
    return response.status_code, response.json().get("code", "")


def admin_door(act: str, caller: str, world: dict[str, Any], base_url: str) -> tuple[int, str]:
    client = Client()
    username = user_for(act, caller)
    if username == "ghost":
        client.cookies[settings.SESSION_COOKIE_NAME] = secrets.token_hex(16)
    elif username:
        client.force_login(User.objects.get(username=username))
    head = ParkedStream.objects.get(subscriber_name=NAME, stream_id="bad")
    selected = {"action": ACTS[act][3], ACTION_CHECKBOX_NAME: [head.pk], "index": 0}
    applied = client.post(PARKED, {**selected, "reason": "poison", "apply": "Go"})
    if applied.status_code == 302 and applied["Location"].startswith(LOGIN):
        return 302, "login"
    return applied.status_code, " ".join(str(m) for m in get_messages(applied.wsgi_request))


def mcp_door(act: str, caller: str, world: dict[str, Any], base_url: str) -> tuple[int, str]:
    secret = secret_for(act, caller, world)
    arguments = {"subscriber_name": NAME, "stream_id": "bad", "reason": "poison"}
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return mcp_outcome(mcp_over_http(base_url, ACTS[act][1], arguments, headers))


def cli_door(act: str, caller: str, world: dict[str, Any], base_url: str) -> tuple[int, str]:
    args = ["parked_streams", NAME, ACTS[act][2], "bad", "--reason", "poison"]
    username = user_for(act, caller)
    if username:
        args += ["--as", username]
    return command_outcome(*args)


DOORS: dict[str, Callable[[str, str, dict[str, Any], str], tuple[int, str]]] = {
    "rest": rest_door,
    "admin": admin_door,
    "mcp-http": mcp_door,
    "cli": cli_door,
}

EXPECTED: dict[tuple[str, str], tuple[int, str]] = {
    ("rest", "anonymous"): (401, "not_authenticated"),
    ("rest", "bad token"): (401, "not_authenticated"),
    ("rest", "unpermitted"): (403, "permission_denied"),
    ("rest", "permitted"): (200, ""),
    ("admin", "anonymous"): (302, "login"),
    ("admin", "bad token"): (302, "login"),
    # The admin offers an action only to a user with its permission (Django's own check).
    ("admin", "unpermitted"): (302, "No action selected"),
    ("admin", "permitted"): (302, "<success>"),
    ("mcp-http", "anonymous"): (401, "not_authenticated"),
    ("mcp-http", "bad token"): (401, "not_authenticated"),
    ("mcp-http", "unpermitted"): (200, "permission_denied"),
    ("mcp-http", "permitted"): (200, ""),
    ("cli", "anonymous"): (1, "--as"),  # argparse's usage error, through call_command
    ("cli", "bad token"): (3, "not_authenticated"),
    ("cli", "unpermitted"): (3, "permission_denied"),
    ("cli", "permitted"): (0, ""),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize("act", list(ACTS))
def test_only_a_permitted_user_acts_on_a_parked_stream_through_any_door(
    act: str, door: str, caller: str, callers: dict[str, Any], base_url: str
) -> None:
    before = state()
    observed_status, observed_text = DOORS[door](act, caller, callers, base_url)
    status, text = EXPECTED[(door, caller)]
    text = ACTS[act][4] if text == "<success>" else text
    assert observed_status == status, observed_text
    assert text in observed_text
    decisions = rows(
        "SELECT data->>'choice', metadata->>'via', data->'actor'->>'username' FROM events"
        " WHERE event_type = 'DecisionRegistered'"
        " AND data->>'choice' IN ('EventDismissed', 'StreamRetried') ORDER BY position"
    )
    if caller != "permitted":
        assert state() == before, f"a refused {door} call by {caller!r} changed state"
        assert decisions == []
        return
    choice = "EventDismissed" if act == "dismiss stream" else "StreamRetried"
    expected = 3 if act == "dismiss stream" else 1  # one decision per dismissed event
    assert decisions == [(choice, VIA[door], user_for(act, caller))] * expected
    assert state() != before
