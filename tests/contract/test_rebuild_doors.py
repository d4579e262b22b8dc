"""The rebuild through each door (REST, MCP, CLI, admin): the whole walk (start, watch,
read the diff, swap, roll back, start again, cancel) with its decisions, and every refusal
code with the same code at every door. The access matrix is in
``test_access_matrix_rebuilds.py``."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from mcp import Client as McpClient

from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.rebuilds.handler import REBUILD_STREAM
from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from reactions_admin.templatetags.console import stamp
from subscribers.models import Rebuild
from tests.rebuild_doors import ACTION, OPTION, REST_PATH, TOOL

NAME = "test.rb_totals"
CHANGELIST = "/admin/subscribers/bookmark/"
PAGE = f"/admin/subscribers/bookmark/{NAME}/rebuild/"


@pytest.fixture
def ops(rebuilds: Any) -> User:
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            codename="rebuild_projection", content_type__app_label="reactions_admin"
        )
    )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def secret(ops: User) -> str:
    return issue_token(ops).secret


def choices() -> list[tuple[str, str]]:
    return [
        (event.data["choice"], event.metadata["via"])
        for event in PostgresEventStore().read_stream(REBUILD_STREAM)
    ]


def phase() -> str:
    return Rebuild.objects.order_by("-created_at", "-id").values_list("phase", flat=True)[0]


# -- the doors ----------------------------------------------------------------------------------


def rest(secret: str, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = f"/agent/subscribers/{path}"
    if method == "get":
        response = client.get(url)
    else:
        response = client.post(url, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def mcp(secret: str, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    async def main() -> Any:
        async with McpClient(build_mcp_server(token=secret)) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(main)
    return result.is_error, json.loads(result.content[0].text)


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("rebuild_projection", *args, stdout=out, stderr=io.StringIO())
    except CommandError as refused:
        return refused.returncode, str(refused)
    return 0, out.getvalue()


def admin_act(client: Client, action: str, name: str = NAME, **form: Any) -> tuple[int, str]:
    selected = {"action": action, ACTION_CHECKBOX_NAME: [name], "index": 0}
    opened = client.post(CHANGELIST, selected)
    assert opened.status_code == 200, opened.status_code
    applied = client.post(CHANGELIST, {**selected, "reason": "x", "apply": "go", **form})
    shown = " ".join(str(message) for message in get_messages(applied.wsgi_request))
    return applied.status_code, shown


# -- the walk, door by door -------------------------------------------------------------------


def test_rest(rebuilds, secret) -> None:
    status, fresh = rest(secret, "get", f"{NAME}/rebuild")
    assert status == 200
    assert fresh["acts"] == ["start"]
    assert fresh["estimate"]["events"] == 20
    status, started = rest(secret, "post", f"{NAME}/rebuild", {"reason": "fix"})
    assert (status, started["choice"]) == (200, "RebuildStarted")
    rebuilds.built()
    _, ready = rest(secret, "get", f"{NAME}/rebuild")
    assert ready["rebuild"]["phase"] == "ready"
    [totals, _] = ready["diff"]["tables"]
    assert (totals["table"], totals["differing"]) == ("rb_totals", 4)
    sample = totals["samples"]["differing"][0]
    assert sample["changed"] == ["total"]
    assert sample["new"]["total"] == 2 * sample["live"]["total"]
    status, swapped = rest(secret, "post", f"{NAME}/rebuild/swap", {"reason": "read"})
    assert (status, swapped["phase"]) == (200, "swapped")
    assert swapped["inputs"]["verification"]["tables"]["rb_totals"]["differing"] == 4
    assert rest(secret, "post", f"{NAME}/rebuild/roll-back", {"reason": "no"})[0] == 200
    assert (
        rest(secret, "post", f"{NAME}/rebuild", {"reason": "y", "swap_when_verified": True})[0]
        == 200
    )
    assert Rebuild.objects.get(phase="copying_schema").swap_when_verified
    assert rest(secret, "post", f"{NAME}/rebuild/cancel", {"reason": "z"})[0] == 200
    assert choices() == [
        ("RebuildStarted", "rest"), ("RebuildSwapped", "rest"), ("RebuildRolledBack", "rest"),
        ("RebuildStarted", "rest"), ("RebuildCancelled", "rest"),
    ]  # fmt: skip
    paths = Client().get("/agent/openapi.json").json()["paths"]
    assert {
        "/agent/subscribers/{name}/rebuild", "/agent/subscribers/{name}/rebuild/swap",
        "/agent/subscribers/{name}/rebuild/cancel", "/agent/subscribers/{name}/rebuild/roll-back",
    } <= set(paths)  # fmt: skip


def test_mcp(rebuilds, secret) -> None:
    failed, fresh = mcp(secret, "rebuild_state", subscriber_name=NAME)
    assert not failed
    assert fresh["acts"] == ["start"]
    failed, started = mcp(secret, "start_rebuild", subscriber_name=NAME, reason="fix")
    assert (failed, started["choice"]) == (False, "RebuildStarted")
    rebuilds.built()
    _, ready = mcp(secret, "rebuild_state", subscriber_name=NAME)
    assert ready["diff"]["tables"][0]["samples"]["differing"][0]["changed"] == ["total"]
    assert mcp(secret, "swap_rebuild", subscriber_name=NAME, reason="read")[1]["phase"] == "swapped"
    assert not mcp(secret, "roll_back_rebuild", subscriber_name=NAME, reason="no")[0]
    assert not mcp(secret, "start_rebuild", subscriber_name=NAME, reason="y")[0]
    assert not mcp(secret, "cancel_rebuild", subscriber_name=NAME, reason="z")[0]
    assert [c for c, _ in choices()] == [
        "RebuildStarted", "RebuildSwapped", "RebuildRolledBack", "RebuildStarted",
        "RebuildCancelled",
    ]  # fmt: skip
    assert {via for _, via in choices()} == {"mcp"}


def test_cli(rebuilds, ops) -> None:
    code, shown = cli(NAME)
    assert code == 0
    assert "No rebuild so far." in shown
    assert "replays 20 events" in shown
    code, out = cli(NAME, "--reason", "fix", "--as", "ops", "--swap-when-verified")
    assert code == 0
    assert out.startswith("Rebuild: test.rb_totals: rebuild started, now copying schema.")
    Rebuild.objects.update(swap_when_verified=False)  # the swap is the operator's, below
    rebuilds.built()
    code, shown = cli(NAME)
    assert "Rebuild ready to swap: 20 of 20 events" in shown
    assert "rb_totals: 4 live row(s), 4 new; 0 only in live, 0 only in new, 4 differing" in shown
    lines = shown.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["key", "total"])
    live, new = lines[header + 1].split(), lines[header + 2].split()
    assert (live[0], new[0]) == ("live", "new")
    assert live[2].endswith("*")
    assert new[2].endswith("*")
    assert int(new[2].rstrip("*")) == 2 * int(live[2].rstrip("*"))
    assert json.loads(cli(NAME, "--json")[1])["diff"]["changed_rows"] == 23
    assert cli(NAME, "--swap", "--reason", "read", "--as", "ops")[0] == 0
    assert cli(NAME, "--roll-back", "--reason", "no", "--as", "ops")[0] == 0
    assert cli(NAME, "--reason", "again", "--as", "ops")[0] == 0
    assert cli(NAME, "--cancel", "--reason", "z", "--as", "ops")[0] == 0
    assert choices() == [
        ("RebuildStarted", "cli"), ("RebuildSwapped", "cli"), ("RebuildRolledBack", "cli"),
        ("RebuildStarted", "cli"), ("RebuildCancelled", "cli"),
    ]  # fmt: skip


def test_admin(rebuilds, ops) -> None:
    client = Client()
    client.force_login(ops)
    form = client.post(
        CHANGELIST, {"action": "rebuild_action", ACTION_CHECKBOX_NAME: [NAME], "index": 0}
    )
    page = form.content.decode()
    assert form.status_code == 200
    # Before confirming: events to replay, the rate so far, the duration, the extra disk.
    for shown in ('class="events-to-replay">20<', "not measured yet", "extra-disk", "KB"):
        assert shown in page, shown
    assert admin_act(client, "rebuild_action")[1].startswith(
        "Rebuild: test.rb_totals: rebuild started"
    )
    rebuilds.built()
    diff = client.get(PAGE)
    text = diff.content.decode()
    assert diff.status_code == 200
    assert "ready to swap" in text
    assert "<strong>4</strong> differing" in text
    assert text.count('class="changed"') >= 8  # the total, marked on both sides of 4 rows
    assert "Swap the rebuild in…" in text
    assert (
        "progress and diff"
        in client.get(f"/admin/subscribers/bookmark/{NAME}/change/").content.decode()
    )
    assert "rebuild swapped, now swapped" in admin_act(client, "swap_rebuild_action")[1]
    assert (
        "rebuild rolled back, now rolled back" in admin_act(client, "roll_back_rebuild_action")[1]
    )
    assert "rebuild started" in admin_act(client, "rebuild_action", swap_when_verified="on")[1]
    assert Rebuild.objects.get(phase="copying_schema").swap_when_verified
    assert "rebuild cancelled" in admin_act(client, "cancel_rebuild_action")[1]
    assert {via for _, via in choices()} == {"admin"}
    assert len(choices()) == 5


# -- the same refusal code at every door --------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "act", "name", "status", "code"),
    [
        ("nothing", "start", "test.echo", 409, "reaction_cannot_be_rebuilt"),
        ("nothing", "start", "test.rb_no_models", 409, "projection_not_rebuildable"),
        ("nothing", "start", "test.nobody", 404, "subscriber_not_found"),
        ("started", "start", NAME, 409, "rebuild_in_progress"),
        ("nothing", "swap", NAME, 409, "no_rebuild"),
        ("started", "swap", NAME, 409, "rebuild_not_ready"),
        ("failed", "swap", NAME, 409, "rebuild_failed"),
        ("migrated", "swap", NAME, 409, "table_definition_changed"),
        ("nothing", "cancel", NAME, 409, "no_rebuild"),
        ("nothing", "roll_back", NAME, 409, "nothing_to_roll_back"),
    ],
)
def test_each_refusal_has_the_same_code_at_every_door(
    rebuilds, ops, secret, setup, act, name, status, code
) -> None:
    if setup != "nothing":
        getattr(rebuilds, setup)()
    before = (list(Rebuild.objects.order_by("pk").values()), choices())
    observed, body = rest(secret, "post", f"{name}/rebuild{REST_PATH[act]}", {"reason": "x"})
    assert (observed, body["code"]) == (status, code), body
    assert mcp(secret, TOOL[act], subscriber_name=name, reason="x") == (True, body)
    returncode, message = cli(name, *OPTION[act], "--reason", "x", "--as", "ops")
    assert (returncode, message) == (3, f"{code}: {body['detail']}")
    if name.startswith("test.rb_"):  # the admin acts on a bookmark it lists
        client = Client()
        client.force_login(ops)
        shown = admin_act(client, ACTION[act], name)[1]
        assert f"({code})" in shown
    assert (list(Rebuild.objects.order_by("pk").values()), choices()) == before


def test_the_admin_shows_a_refusal_with_the_subscriber_name_as_written(rebuilds, ops) -> None:
    # Django's admin capitalizes every message: "Test.rb_totals has no rebuild…" names a
    # subscriber that does not exist.
    client = Client()
    client.force_login(ops)
    selected = {"action": "cancel_rebuild_action", ACTION_CHECKBOX_NAME: [NAME], "index": 0}
    shown = client.post(CHANGELIST, {**selected, "reason": "x", "apply": "go"}, follow=True)
    page = shown.content.decode()
    assert f"{NAME}: {NAME} has no rebuild in progress. (no_rebuild)" in page
    assert NAME.capitalize() not in page


def test_the_rebuild_page_gives_times_with_seconds_and_timezone(rebuilds, ops) -> None:
    # As the console does ("Times carry seconds and the timezone"), not Django's
    # "Dec. 6, 2026, 3:15 a.m.".
    rebuilds.started()
    client = Client()
    client.force_login(ops)
    page = client.get(PAGE).content.decode()
    started = stamp(Rebuild.objects.get().created_at)
    assert started.endswith(" UTC")
    assert started in page, page


def test_the_cli_acts_only_as_a_named_user(rebuilds) -> None:
    assert cli(NAME, "--reason", "x") == (
        3,
        "not_authenticated: name the acting user with --as USERNAME.",
    )
    # A required option left out is a usage error (2), as argparse says for dismiss_event.
    assert cli(NAME, "--swap") == (2, "--reason is required to act (why, for the audit trail).")
    assert Rebuild.objects.count() == 0


def test_the_cli_names_the_acts_that_apply_as_its_options(rebuilds) -> None:
    rebuilds.swapped()
    code, shown = cli(NAME)
    assert code == 0
    assert "Acts now: --start, --roll-back" in shown.splitlines(), shown
    rebuilds.started()
    assert "Acts now: --pause, --cancel" in cli(NAME)[1].splitlines()


def test_pause_resume_and_retry_through_every_door(rebuilds, ops, secret) -> None:
    rebuilds.failed()
    status, retried = rest(secret, "post", f"{NAME}/rebuild/retry", {"reason": "fixed"})
    assert (status, retried["choice"]) == (200, "RebuildRetried")
    failed, paused = mcp(secret, "pause_rebuild", subscriber_name=NAME, reason="busy")
    assert (failed, paused["phase"]) == (False, "paused")
    code, out = cli(NAME, "--resume", "--reason", "quiet", "--as", "ops")
    assert code == 0
    assert "rebuild resumed" in out
    client = Client()
    client.force_login(ops)
    assert "rebuild paused" in admin_act(client, "pause_rebuild_action")[1]
    assert [via for _, via in choices()][-4:] == ["rest", "mcp", "cli", "admin"]
    assert phase() == "paused"
