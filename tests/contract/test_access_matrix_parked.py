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

import secrets
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.models import ParkedStream
from tests.contract import access
from tests.contract.conftest import ParkedWorld
from tests.factories import operator
from tests.stream_invariants import rows
from tests.support import VIA

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "test.streams"
CALLERS = ["anonymous", "bad token", "unpermitted", "permitted"]
PARKED = reverse("admin:reactions_admin_parkedstream_changelist")

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


def caller_of(act: str, caller: str, world: dict[str, Any]) -> access.Caller:
    """The caller in each door's credential ("bad token": a token and a user that are not)."""
    username = user_for(act, caller)
    if username == "ghost":
        return access.Caller(secret="edk_" + secrets.token_urlsafe(32), username=username)
    return access.Caller(secret=world["tokens"][username] if username else None, username=username)


def on_stream(act: str) -> access.Act:
    """``act`` on stream "bad" of the parked reaction, with reason "poison"."""
    path, tool, option, action, _ = ACTS[act]
    head = ParkedStream.objects.get(subscriber_name=NAME, stream_id="bad")
    selected = {"action": action, ACTION_CHECKBOX_NAME: [head.pk], "index": 0}
    body = {"stream_id": "bad", "reason": "poison"}
    return access.Act(
        rest=(f"/agent/reactions/{NAME}/parked-streams/{path}", body),
        admin=(PARKED, selected, {"reason": "poison", "apply": "Go"}),
        mcp=(tool, {"subscriber_name": NAME, **body}),
        cli=["parked_streams", NAME, option, "bad", "--reason", "poison"],
    )


def state() -> tuple[Any, ...]:
    return (
        rows("SELECT * FROM reaction_work ORDER BY id"),
        rows("SELECT event_id FROM events ORDER BY position"),
    )


EXPECTED = access.matrix(
    {
        "anonymous": access.WITHOUT_AS,
        "bad token": access.UNAUTHENTICATED,
        # The admin offers an action only to a user with its permission (Django's own check).
        "unpermitted": {**access.UNPERMITTED, "admin": (302, "No action selected")},
        "permitted": {**access.PERMITTED, "admin": (302, "<success>")},
    }
)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", access.DOORS)
@pytest.mark.parametrize("act", list(ACTS))
def test_only_a_permitted_user_acts_on_a_parked_stream_through_any_door(
    act: str, door: str, caller: str, callers: dict[str, Any], base_url: str
) -> None:
    before = state()
    observed = access.through(door, on_stream(act), caller_of(act, caller, callers), base_url)
    status, text = EXPECTED[(door, caller)]
    access.assert_observed(observed, (status, ACTS[act][4] if text == "<success>" else text))
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
