"""The machinery of the access matrices (who may do an act, at which door): one act at each
of the four doors, one caller in each door's own kind of credential, and what each door
answers a refused or an admitted caller whatever the act.

Doors: the REST endpoint (CSRF enforced), the admin action (its selection POST through the
real changelist, then its confirmation), the MCP tool over streamable HTTP (real uvicorn,
real JSON-RPC) and the CLI (``call_command``). Each returns what the caller observed:
(status or exit code, the text the test looks in).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tests.support import command_outcome, mcp_outcome, mcp_over_http

#: (status or exit code, the text the caller saw)
Outcome = tuple[int, str]

DOORS = ["rest", "admin", "mcp-http", "cli"]
LOGIN = reverse("admin:login")
#: The Bookmarks changelist's title: the page again, when an action is not offered.
BOOKMARKS = "Subscribers: bookmarks, lag and health"


@dataclass(frozen=True)
class Act:
    """One state-changing act as each door takes it."""

    #: REST: the path, and the JSON body of the POST.
    rest: tuple[str, dict[str, Any]]
    #: Admin: the changelist, the action's selection, what its confirmation adds.
    admin: tuple[str, dict[str, Any], dict[str, Any]]
    #: MCP: the tool and its arguments.
    mcp: tuple[str, dict[str, Any]]
    #: CLI: the command and its arguments, without ``--as``.
    cli: list[str]


@dataclass(frozen=True)
class Caller:
    """One caller, in each door's own kind of credential."""

    #: REST and MCP: the bearer token (None: no Authorization header).
    secret: str | None
    #: Admin and CLI: the session's user and ``--as`` (None: anonymous, no ``--as``;
    #: "ghost": no such user, so a forged session cookie in the admin).
    username: str | None
    #: The admin's requests carry the bearer token too (a token never opens the admin).
    secret_in_admin: bool = False
    #: What befalls the user after the admin login (the CLI: before the command).
    since_login: Callable[[], None] | None = None


def through(door: str, act: Act, caller: Caller, base_url: str) -> Outcome:
    """``act`` by ``caller`` at ``door``: what the caller observed."""
    bearer = f"Bearer {caller.secret}" if caller.secret else None
    if door == "rest":
        path, body = act.rest
        headers: dict[str, Any] = {"HTTP_AUTHORIZATION": bearer} if bearer else {}
        response = Client(enforce_csrf_checks=True).post(
            path, json.dumps(body), content_type="application/json", **headers
        )
        return response.status_code, response.json().get("code", "")
    if door == "mcp-http":
        tool, arguments = act.mcp
        mcp_headers = {"Authorization": bearer} if bearer else {}
        return mcp_outcome(mcp_over_http(base_url, tool, arguments, mcp_headers))
    client = session(caller.username) if door == "admin" else None
    if caller.since_login:
        caller.since_login()
    if client is None:
        as_user = ["--as", caller.username] if caller.username else []
        return command_outcome(*act.cli, *as_user)
    if bearer and caller.secret_in_admin:
        return admin_outcome(client, *act.admin, HTTP_AUTHORIZATION=bearer)
    return admin_outcome(client, *act.admin)


def session(username: str | None) -> Client:
    """A browser: anonymous (None), with a forged session cookie ("ghost"), or logged in."""
    client = Client()
    if username == "ghost":
        client.cookies[settings.SESSION_COOKIE_NAME] = secrets.token_hex(16)
    elif username:
        client.force_login(User.objects.get(username=username))
    return client


def admin_outcome(
    client: Client,
    changelist: str,
    selected: dict[str, Any],
    confirmed: dict[str, Any],
    **headers: Any,
) -> Outcome:
    """An admin action: its selection POST, then its confirmation. (302, "login") when both
    were sent to the login page; else the status and the messages shown (and the page,
    when it is the changelist again)."""
    opened = client.post(changelist, selected, **headers)
    applied = client.post(changelist, {**selected, **confirmed}, **headers)
    if applied.status_code == 302 and applied["Location"].startswith(LOGIN):
        assert opened["Location"] == applied["Location"]
        return 302, "login"
    shown = [str(message) for message in get_messages(applied.wsgi_request)]
    if applied.status_code == 200:  # the changelist again: its messages are on the page
        shown.append(applied.content.decode())
    return applied.status_code, " ".join(shown)


# -- what a caller observes at each door, whatever the act ------------------------------------
# (The admin's answer to a caller who is logged in depends on the act's page: each matrix
# adds its own to UNPERMITTED and PERMITTED.)

UNAUTHENTICATED = {
    "rest": (401, "not_authenticated"),
    "admin": (302, "login"),
    "mcp-http": (401, "not_authenticated"),
    "cli": (3, "not_authenticated"),
}
#: No credential at a command whose ``--as`` is required: argparse's own usage error,
#: which exits 1 through ``call_command``.
WITHOUT_AS = {**UNAUTHENTICATED, "cli": (1, "--as")}
UNPERMITTED = {
    "rest": (403, "permission_denied"),
    "mcp-http": (200, "permission_denied"),
    "cli": (3, "permission_denied"),
}
PERMITTED = {"rest": (200, ""), "mcp-http": (200, ""), "cli": (0, "")}


def matrix(callers: dict[str, dict[str, Outcome]]) -> dict[tuple[str, str], Outcome]:
    """What each caller must observe at each door, from each caller's answers by door."""
    return {(door, caller): answers[door] for caller, answers in callers.items() for door in DOORS}


def assert_observed(observed: Outcome, expected: Outcome) -> None:
    """The status (or exit code) is the expected one and the text contains the expected."""
    status, text = expected
    assert observed[0] == status, observed[1]
    assert text in observed[1]
