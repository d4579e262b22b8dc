"""Who may dismiss: every state-changing door, every kind of caller, and nothing changes
on a refusal.

Doors: the REST endpoint, the admin action (its form POST), the MCP tool over streamable
HTTP (real uvicorn, real JSON-RPC), and the CLI. Callers, mapped onto each door's own
kind of credential:

=============  ====================  ======================  ===================  ============
caller         REST                  admin                   MCP over HTTP        CLI
=============  ====================  ======================  ===================  ============
none           no header             anonymous               no header            no ``--as``
revoked        revoked token         session of a user       revoked token        deactivated
                                     deactivated since                            user
                                     login, + revoked token
wrong          unknown token         forged session cookie   unknown token        unknown user
                                     + unknown token
unpermitted    token of a staff user without ``reactions_admin.dismiss_event`` (all doors)
permitted      token / session / ``--as`` of a staff user with it (all doors)
=============  ====================  ======================  ===================  ============

Also: session POSTs without a CSRF token (REST and admin), the MCP endpoint's Origin
check and its refusal of a session cookie, and tokens stored only as digests.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from django.conf import settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from eventstore.models import Event
from eventstore.types import RecordedEvent
from reactions_admin.acts.tokens.handler import issue_token, revoke_tokens
from reactions_admin.models import ApiToken
from subscribers.models import Bookmark
from tests.contract import access
from tests.factories import operator, wedged_mailer
from tests.support import VIA, decisions, mcp_over_http

# The MCP door is served by uvicorn in a thread with its own database connection.
pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = ["none", "revoked", "wrong", "unpermitted", "permitted"]
CHANGELIST = reverse("admin:subscribers_bookmark_changelist")
REST_PATH = "/agent/reactions/mailer/dismiss-event"
TOOL = "dismiss_event_in_reaction"


@dataclass
class World:
    events: list[RecordedEvent]
    tokens: dict[str, str | None]

    @property
    def target(self) -> str:
        return str(self.events[1].event_id)


@pytest.fixture
def world(settings: Any) -> World:
    # Test users' passwords need no slow hash (PBKDF2 costs ~0.25 s per user).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    events = wedged_mailer(3, data={"note": "poison"})
    permitted = operator("operator")
    unpermitted = operator("intern", permitted=False)
    revoked = issue_token(operator("retired")).secret
    revoke_tokens(prefix=revoked)
    # Deactivated after being given the permission and a token: the CLI's and the admin's
    # analogue of a revoked credential.
    operator("departed")
    return World(
        events=events,
        tokens={
            "none": None,
            "revoked": revoked,
            "wrong": "edk_" + secrets.token_urlsafe(32),
            "unpermitted": issue_token(unpermitted).secret,
            "permitted": issue_token(permitted).secret,
        },
    )


def state() -> tuple[Any, ...]:
    """What a dismissal could change: every bookmark and every event."""
    return (
        list(Bookmark.objects.order_by("pk").values()),
        list(Event.objects.order_by("position").values_list("event_id", flat=True)),
    )


def deactivate(username: str) -> None:
    User.objects.filter(username=username).update(is_active=False)


# -- the act at each door, each caller's credentials -------------------------------------------


def dismissal(world: World) -> access.Act:
    """Dismiss the event "mailer" is wedged on, with reason "poison"."""
    selected = {"action": "dismiss_event", ACTION_CHECKBOX_NAME: ["mailer"], "index": 0}
    confirmed = {"event_id": world.target, "reason": "poison", "apply": "Dismiss the event"}
    return access.Act(
        rest=(REST_PATH, {"event_id": world.target, "reason": "poison"}),
        admin=(CHANGELIST, selected, confirmed),
        mcp=(TOOL, {"subscriber_name": "mailer", "event_id": world.target, "reason": "poison"}),
        cli=["dismiss_event", "mailer", world.target, "--reason", "poison"],
    )


def caller_of(name: str, world: World) -> access.Caller:
    """The caller ``name`` in each door's credential; "revoked" is the user "departed",
    deactivated after its login (the admin's and the CLI's analogue of a revoked token)."""
    username = {
        "revoked": "departed",
        "wrong": "ghost",
        "unpermitted": "intern",
        "permitted": "operator",
    }.get(name)
    return access.Caller(
        secret=world.tokens[name],
        username=username,
        secret_in_admin=name in ("revoked", "wrong"),
        since_login=(lambda: deactivate("departed")) if name == "revoked" else None,
    )


def mcp_call(base_url: str, headers: dict[str, str], event_id: str) -> httpx2.Response:
    arguments = {"subscriber_name": "mailer", "event_id": event_id, "reason": "poison"}
    return mcp_over_http(base_url, TOOL, arguments, headers)


EXPECTED = access.matrix(
    {
        "none": access.WITHOUT_AS,
        "revoked": access.UNAUTHENTICATED,
        "wrong": access.UNAUTHENTICATED,
        # The action is not offered without its permission (Django's delete_selected pattern).
        "unpermitted": {**access.UNPERMITTED, "admin": (200, access.BOOKMARKS)},
        "permitted": {**access.PERMITTED, "admin": (302, "Dismissed event")},
    }
)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("door", access.DOORS)
def test_only_a_permitted_user_dismisses_through_any_door(door, caller, world, base_url) -> None:
    before = state()
    observed = access.through(door, dismissal(world), caller_of(caller, world), base_url)
    access.assert_observed(observed, EXPECTED[(door, caller)])
    if caller != "permitted":
        assert state() == before, f"a refused {door} call by {caller!r} changed state"
        assert decisions() == []
        return
    bookmark = Bookmark.objects.get(pk="mailer")
    assert bookmark.cursor == world.events[1].cursor
    assert bookmark.status == Bookmark.Status.ACTIVE
    [decision] = decisions()
    assert decision.data["actor"]["username"] == "operator"
    assert decision.metadata["via"] == VIA[door]


# -- CSRF: a logged-in browser cannot be made to dismiss by another site ------------------------


def test_a_rest_session_post_with_a_wrong_csrf_token_is_refused(world) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="operator"))
    client.cookies[settings.CSRF_COOKIE_NAME] = "a" * 32
    before = state()
    response = client.post(
        REST_PATH,
        json.dumps({"event_id": world.target, "reason": "poison"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN="b" * 32,
    )
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert state() == before


@pytest.mark.parametrize("step", ["open the form", "apply"])
def test_an_admin_post_without_a_csrf_token_is_refused(world, step) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.get(username="operator"))
    data: dict[str, Any] = {"action": "dismiss_event", ACTION_CHECKBOX_NAME: ["mailer"]}
    if step == "apply":
        data |= {"event_id": world.target, "reason": "poison", "apply": "Dismiss the event"}
    before = state()
    response = client.post(CHANGELIST, data)
    assert response.status_code == 403
    assert "CSRF" in response.content.decode()
    assert state() == before
    assert decisions() == []


# -- the MCP endpoint's own gate --------------------------------------------------------------


def test_mcp_refuses_a_foreign_origin_even_with_a_valid_token(world, base_url) -> None:
    before = state()
    response = mcp_call(
        base_url,
        {
            "Authorization": f"Bearer {world.tokens['permitted']}",
            "Origin": "https://evil.example",
        },
        world.target,
    )
    assert response.status_code == 403
    assert response.json()["code"] == "origin_refused"
    assert state() == before


def test_mcp_accepts_its_own_origin(world, base_url) -> None:
    response = mcp_call(
        base_url,
        {
            "Authorization": f"Bearer {world.tokens['permitted']}",
            "Origin": base_url,
        },
        world.target,
    )
    assert response.status_code == 200
    assert not response.json()["result"]["isError"]


def test_mcp_ignores_an_admin_session_cookie(world, base_url) -> None:
    """A browser logged into the admin cannot be used to call the MCP tool."""
    client = Client()
    client.force_login(User.objects.get(username="operator"))
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    before = state()
    response = mcp_call(
        base_url,
        {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
        world.target,
    )
    assert response.status_code == 401
    assert state() == before


# -- tokens at rest ---------------------------------------------------------------------------


def test_tokens_are_stored_only_as_digests(world, base_url) -> None:
    """After the tokens were issued and used (REST, MCP), no table holds a secret."""
    for caller in ("unpermitted", "permitted"):
        access.through("rest", dismissal(world), caller_of(caller, world), base_url)
    access.through("mcp-http", dismissal(world), caller_of("unpermitted", world), base_url)
    secrets_issued = [secret for secret in world.tokens.values() if secret]
    for secret in secrets_issued:
        if secret == world.tokens["wrong"]:
            continue
        row = ApiToken.objects.get(prefix=secret[:12])
        assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in (row.digest, row.prefix, row.name)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [name for (name,) in cursor.fetchall()]
        assert "reactions_admin_apitoken" in tables
        for table in tables:
            for secret in secrets_issued:
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" AS t WHERE strpos(t::text, %s) > 0',
                    [secret],
                )
                assert cursor.fetchone() == (0,), f"{table} holds a token secret"
