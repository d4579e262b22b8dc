"""The command-line door: ``manage.py dismiss_event`` and the API token commands."""

from __future__ import annotations

import io
import uuid

import anyio
import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.test import Client

from reactions_admin.management.commands.mcp_server import Command as McpServerCommand
from reactions_admin.models import ApiToken
from subscribers.models import Bookmark
from tests.factories import operator, wedged_mailer
from tests.support import decisions

# Transactional: a dismissal only targets an event every reader sees (committed, under
# the horizon); an event appended inside the test's own transaction never is.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def events():
    return wedged_mailer(3)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_dismiss_event_as_an_operator(events) -> None:
    operator()
    output = run(
        "dismiss_event", "mailer", str(events[1].event_id), "--reason", "poison", "--as", "operator"
    )
    assert f"Dismissed event {events[1].event_id} in mailer" in output
    assert Bookmark.objects.get(pk="mailer").cursor == events[1].cursor
    [decision] = decisions()
    assert decision.metadata["via"] == "cli"
    assert decision.data["actor"]["username"] == "operator"


@pytest.mark.parametrize(
    ("reaction", "event", "reason", "code", "returncode"),
    [
        ("nobody", 1, "x", "reaction_not_found", 3),
        ("mailer", None, "x", "event_not_found", 3),
        ("mailer", "bad", "x", "invalid_event_id", 3),
        ("mailer", 1, "  ", "reason_required", 3),
        ("mailer", 0, "x", "rewind_refused", 3),
    ],
)
def test_refusals_exit_non_zero_with_the_code(
    events, reaction, event, reason, code, returncode
) -> None:
    operator()
    event_id = {None: str(uuid.uuid4()), "bad": "not-a-uuid"}.get(event) or str(
        events[event].event_id
    )
    with pytest.raises(CommandError, match=code) as refused:
        run("dismiss_event", reaction, event_id, "--reason", reason, "--as", "operator")
    assert refused.value.returncode == returncode
    assert decisions() == []


def test_an_unknown_or_unpermitted_user_is_refused(events) -> None:
    with pytest.raises(CommandError, match="not_authenticated"):
        run("dismiss_event", "mailer", str(events[1].event_id), "--reason", "x", "--as", "ghost")
    operator("intern", permitted=False)
    with pytest.raises(CommandError, match="permission_denied"):
        run("dismiss_event", "mailer", str(events[1].event_id), "--reason", "x", "--as", "intern")
    assert decisions() == []


def test_create_api_token_prints_it_once_and_stores_only_a_digest(events) -> None:
    operator("robot")
    secret = run("create_api_token", "robot").strip()
    token = ApiToken.objects.get()
    assert secret.startswith(token.prefix)
    assert secret not in (token.digest, token.prefix)
    response = Client().get("/agent/reactions", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200


def test_create_api_token_for_an_unknown_user_fails() -> None:
    with pytest.raises(CommandError, match="No user"):
        run("create_api_token", "ghost")


def test_revoke_by_prefix_and_for_a_user(events) -> None:
    operator("robot")
    first = run("create_api_token", "robot").strip()
    second = run("create_api_token", "robot").strip()
    prefix = ApiToken.objects.get(digest__isnull=False, prefix=first[:12]).prefix
    assert "Revoked 1" in run("revoke_api_token", prefix)
    assert Client().get("/agent/reactions", HTTP_AUTHORIZATION=f"Bearer {first}").status_code == 401
    assert (
        Client().get("/agent/reactions", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 200
    )
    assert "Revoked 1" in run("revoke_api_token", "--user", "robot", "--all")
    assert (
        Client().get("/agent/reactions", HTTP_AUTHORIZATION=f"Bearer {second}").status_code == 401
    )
    with pytest.raises(CommandError):
        run("revoke_api_token", prefix)
    with pytest.raises(CommandError):
        run("revoke_api_token")


def test_mcp_server_refuses_to_start_without_a_live_token() -> None:
    with pytest.raises(CommandError, match="not_authenticated"):
        run("mcp_server", "--token", "edk_unknown")


def test_mcp_server_lists_its_tools_only_for_the_help() -> None:
    # Parsing a command line (every start; call_command from async code) runs no event
    # loop: listing the tools for --help does, so it waits until the help is asked for.
    async def parse_in_a_running_loop():
        return McpServerCommand().create_parser("manage.py", "mcp_server")

    parser = anyio.run(parse_in_a_running_loop)
    assert "retry_rebuild" in parser.format_help()


@pytest.mark.parametrize(
    ("command", "acts"), [("subscribers", False), ("failures", True), ("rebuild_projection", True)]
)
def test_as_says_an_act_needs_it_only_where_the_command_acts(command: str, acts: bool) -> None:
    # ``subscribers`` only reads; ``failures`` and ``rebuild_projection`` read without --as
    # and act with it.
    parser = load_command_class("reactions_admin", command).create_parser("manage.py", command)
    shown = " ".join(parser.format_help().split())
    assert ("an act needs one" in shown) is acts, shown
    assert "Without it, the command reads as the shell's account." in shown
