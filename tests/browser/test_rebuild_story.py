"""Issue 17's story in real Chromium, against the server `make run` starts: the demo's
scorecards run with their bug (a failed run counts as a success); the fix is deployed to
the worker; the operator starts a rebuild from the Bookmarks page after reading what it
will cost, watches its progress on the home page, reads the diff (two agents' rates
change, two failed runs appear), swaps it in, sees the repaired scorecards, and rolls back.

Screenshots of each step go to .data/screenshots/rebuild-*.png for a person to look at.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import override_settings

from demo.models import AgentScorecard
from demo.scorecards import totals
from subscribers.rebuilds.runner import run_rebuilds_once
from subscribers.registry import load_registry
from tests.browser.support import SHOTS, log_in
from tests.factories import operator
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "demo.scorecards"
WITH_THE_BUG = {**django_settings.EVENTDESK, "subscribers": ["demo.scorecards.AgentScorecards"]}
WITH_THE_FIX = {**WITH_THE_BUG, "demo_fixed_projections": True}


@pytest.fixture
def bugged_demo(rebuild_tables: None) -> None:
    """The demo history, projected by the scorecards with their bug; an operator who may
    rebuild."""
    call_command("seed_demo", stdout=io.StringIO())
    user = operator("operator")
    user.user_permissions.add(
        Permission.objects.get(
            codename="rebuild_projection", content_type__app_label="reactions_admin"
        ),
        Permission.objects.get(codename="view_agentscorecard", content_type__app_label="demo"),
    )
    with override_settings(EVENTDESK=WITH_THE_BUG):
        drain(load_registry(), lambda: sum(totals().values()) == 11, "the scorecards")
    assert totals() == {"completed": 11, "failed": 0}


def act(page: Any, base: str, button: str, reason: str) -> str:
    """On the rebuild's page: ``button``, then the reason and the confirmation; the messages
    the Bookmarks page then shows."""
    page.click(f"input[value='{button}']")
    page.fill("#id_reason", reason)
    page.click("form input[type=submit].default")
    page.wait_for_url(f"{base}/admin/subscribers/bookmark/")
    return str(page.inner_text(".messagelist"))


def test_the_rebuild_story(page, console_server, bugged_demo) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = console_server.base_url
    page.set_viewport_size({"width": 1600, "height": 1000})
    log_in(page, base, "operator", "pw-for-tests", "/admin/demo/agentscorecard/")
    # The bug, as a person sees it: every agent succeeds every time.
    cards = page.inner_text("#result_list")
    assert cards.count("100") >= 3
    page.screenshot(path=str(SHOTS / "rebuild-0-the-bug.png"), full_page=True)

    # 1. Bookmarks -> select the projection -> Rebuild…: what it will cost, then confirm.
    page.goto(f"{base}/admin/subscribers/bookmark/")
    page.check(f'input[name="_selected_action"][value="{NAME}"]')
    page.select_option("select[name=action]", "rebuild_action")
    page.click("button[name=index]")
    page.wait_for_selector("#rebuild-selected")
    assert page.inner_text("#rebuild-selected .events-to-replay").strip().isdigit()
    assert "not measured yet" in page.inner_text("#rebuild-selected .rate")
    assert "KB" in page.inner_text("#rebuild-selected .extra-disk")
    page.fill("#id_reason", "Failed runs were counted as successes; fix deployed")
    page.screenshot(path=str(SHOTS / "rebuild-1-start-form.png"), full_page=True)
    page.click("form input[type=submit].default")
    page.wait_for_url(f"{base}/admin/subscribers/bookmark/")
    assert "Rebuild: demo.scorecards: rebuild started" in page.inner_text(".messagelist")

    # 2. Watch it: the home page shows the rebuild beside the projection.
    page.goto(f"{base}/admin/console/")
    progress = page.locator(f'#console-subscribers tr[data-subscriber="{NAME}"] .rebuild-progress')
    assert progress.inner_text().startswith("rebuild copying schema")
    page.screenshot(path=str(SHOTS / "rebuild-2-progress.png"), full_page=True)
    with override_settings(EVENTDESK=WITH_THE_FIX):  # the worker runs the fixed code
        run_rebuilds_once(load_registry())
    page.goto(f"{base}/admin/console/")
    assert "rebuild ready to swap" in progress.inner_text()

    # 3. Read the diff: two agents' counts and rates change; two failed runs appear.
    progress.click()
    page.wait_for_selector("#diff-summary")
    assert "verify() found no problem" in page.inner_text("#diff-summary")
    changed = page.locator("table.diff[data-kind=differing] td.changed")
    assert changed.count() == 12  # completed, failed, success_percent; live and new; 2 agents
    only_new = page.inner_text("table.diff[data-kind=only_new]")
    assert "run-0005" in only_new
    assert "run-0010" in only_new
    page.screenshot(path=str(SHOTS / "rebuild-3-diff.png"), full_page=True)

    # 4. Swap it in, and see the scorecards repaired.
    shown = act(page, base, "Swap the rebuild in…", "The diff is exactly the fix")
    assert "rebuild swapped" in shown
    assert totals() == {"completed": 9, "failed": 2}
    page.goto(f"{base}/admin/demo/agentscorecard/")
    assert "75" in page.inner_text("#result_list")
    page.screenshot(path=str(SHOTS / "rebuild-4-swapped.png"), full_page=True)

    # 5. Roll back: the old data returns.
    page.goto(f"{base}/admin/subscribers/bookmark/{NAME}/rebuild/")
    shown = act(page, base, "Roll back the last swap…", "Showing the roll back")
    assert "rebuild rolled back" in shown
    assert totals() == {"completed": 11, "failed": 0}
    page.goto(f"{base}/admin/reactions_admin/decision/?context=ProjectionRebuild")
    audit = page.inner_text("#result_list")
    for choice in ("RebuildStarted", "RebuildSwapped", "RebuildRolledBack"):
        assert choice in audit
    page.screenshot(path=str(SHOTS / "rebuild-5-rolled-back.png"), full_page=True)
    assert AgentScorecard.objects.count() == 3
