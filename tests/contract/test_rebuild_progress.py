"""A rebuild's progress where an operator already looks: the console's home page, the
projection's page, ``GET /agent/subscribers``, MCP ``diagnose_subscriber`` and
``manage.py subscribers`` (phase, events done of total, rate, ETA); and its gauges on
``/metrics``."""

from __future__ import annotations

import io
from typing import Any

import anyio
import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client
from mcp import Client as McpClient
from prometheus_client.parser import text_string_to_metric_families

from reactions_admin.acts.tokens.handler import issue_token
from reactions_admin.doors.mcp.server import build_mcp_server
from tests.factories import operator

NAME = "test.rb_totals"


@pytest.fixture
def viewer(rebuilds: Any) -> User:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    rebuilds.ready()
    return User.objects.get(pk=user.pk)


def test_rest_and_mcp_show_the_progress_beside_the_subscriber(viewer) -> None:
    secret = issue_token(viewer).secret
    body = Client().get("/agent/subscribers", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    found = {s["name"]: s["rebuild"] for s in body["subscribers"]}
    assert found["test.rb_no_models"] is None
    progress = found[NAME]
    assert (progress["phase"], progress["events_done"], progress["events_total"]) == (
        "ready",
        20,
        20,
    )
    assert progress["rate_events_per_second"] > 0
    assert progress["eta_seconds"] == 0
    assert progress["text"].startswith("rebuild ready to swap: 20 of 20 events")

    async def main() -> Any:
        async with McpClient(build_mcp_server(token=secret)) as client:
            return await client.call_tool("diagnose_subscriber", {"subscriber_name": NAME})

    result = anyio.run(main)
    assert not result.is_error
    assert result.structured_content["rebuild"]["phase"] == "ready"


def test_the_cli_shows_the_progress_under_the_projection(viewer) -> None:
    out = io.StringIO()
    call_command("subscribers", stdout=out)
    lines = out.getvalue().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(NAME))
    assert "rebuild ready to swap: 20 of 20 events" in lines[row + 1]


def test_the_home_page_and_the_projection_page_show_the_progress(viewer) -> None:
    client = Client()
    client.force_login(viewer)
    home = client.get("/admin/console/").content.decode()
    assert "rebuild ready to swap: 20 of 20 events" in home
    assert f"/admin/subscribers/bookmark/{NAME}/rebuild/" in home
    page = client.get(f"/admin/subscribers/bookmark/{NAME}/change/").content.decode()
    assert "rebuild ready to swap" in page
    diff = client.get(f"/admin/subscribers/bookmark/{NAME}/rebuild/")
    assert diff.status_code == 200
    assert "Swap the rebuild in…" not in diff.content.decode()  # a viewer reads, acts not


def test_metrics_show_each_open_rebuild_apart_from_the_subscribers(rebuilds) -> None:
    rebuilds.started()
    secret = issue_token(operator("robot")).secret
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {secret}").content.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    phases = {
        s.labels["phase"]: s.value
        for s in families["eventdesk_rebuild_phase"].samples
        if s.labels["subscriber"] == NAME
    }
    assert phases["copying_schema"] == 1
    assert sum(phases.values()) == 1
    assert {"building", "ready", "failed"} <= set(phases)
    [still] = families["eventdesk_rebuild_seconds_since_progress"].samples
    assert still.labels == {"subscriber": NAME}
    assert still.value >= 0
    rebuilds.built()
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {secret}").content.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    [remaining] = families["eventdesk_rebuild_events_remaining"].samples
    assert (remaining.labels, remaining.value) == ({"subscriber": NAME}, 0)
    ready = [s for s in families["eventdesk_rebuild_phase"].samples if s.value == 1]
    assert [s.labels["phase"] for s in ready] == ["ready"]
