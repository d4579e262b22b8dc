"""Issue 11's 3 am story in real Chromium, against the server `make run` starts: the home
page names the wedged reaction and why; pause a projection and see it paused; resume it;
retry the wedged reaction and see its attempt count go up (the page refreshes itself);
dismiss in bulk by fingerprint after the preview; see the decisions.

Screenshots of each step go to .data/screenshots/console-*.png for a person to look at.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import override_settings

from demo.history import DEBRIEF_POISON_RUN
from eventstore.models import Event
from reactions_admin.acts.failure_groups.fingerprint import fingerprint
from subscribers.models import Bookmark
from subscribers.registry import load_registry
from subscribers.stream_work import parked_streams
from tests.browser.support import SHOTS, log_in
from tests.factories import operator
from tests.support import decisions
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

DRAFTER = "demo.caution_drafter"
BOARD = "demo.run_board"
DEBRIEFER = "demo.run_debriefer"
DEMO = {
    **django_settings.EVENTDESK,
    "demo_llm_latency_seconds": 0.001,
    "max_attempts": 2,
    "retry_base_seconds": 0.01,
}


def drafter() -> Bookmark:
    return Bookmark.objects.get(subscriber_name=DRAFTER)


@pytest.fixture
def wedged_demo() -> Event:
    """The demo history, worked until the caution drafter is wedged on the poison."""
    call_command("seed_demo", stdout=io.StringIO())
    operator("operator", permitted=True, operates=True)
    with override_settings(EVENTDESK=DEMO):
        drain(
            load_registry(),
            lambda: Bookmark.objects.filter(subscriber_name=DRAFTER, status="wedged").exists(),
            "the caution drafter to wedge",
        )
    failing = drafter().failing_event_id
    assert failing is not None
    return Event.objects.get(event_id=failing)


def row(page: Any, name: str) -> Any:
    return page.locator(f'#console-subscribers tr[data-subscriber="{name}"]')


def act_on(page: Any, base_url: str, name: str, button: str, reason: str) -> None:
    """Click an action of a row on the home page, give the reason, confirm."""
    row(page, name).get_by_role("link", name=button).click()
    page.wait_for_selector("#action-subscriber")
    page.fill("#id_reason", reason)
    page.click("form input[type=submit].default")
    page.wait_for_url(f"{base_url}/admin/console/")


def test_the_3am_story(page, console_server, wedged_demo) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = console_server.base_url
    poison = wedged_demo
    page.set_viewport_size({"width": 1600, "height": 1000})

    # 1. The home page names the wedged reaction and why.
    log_in(page, base, "operator", "pw-for-tests", "/admin/")
    drafter_row = row(page, DRAFTER)
    assert drafter_row.get_attribute("data-state") == "wedged"
    diagnosis = drafter_row.locator(".diagnosis").inner_text()
    assert f"wedged on event {poison.event_id} (CautionRaised) with error" in diagnosis
    assert "ContextWindowExceeded" in diagnosis
    # The drafter is wedged; the demo's stream-ordered debriefer, with its run-0004 parked,
    # is degraded (its other streams go on): each counted as what it is.
    counts = page.inner_text("#console-counts")
    assert "1 wedged" in counts, counts
    assert "1 degraded" in counts, counts
    page.screenshot(path=str(SHOTS / "console-1-home-wedged.png"), full_page=True)

    # 2. Pause a projection, and see it paused (by whom, why).
    page.goto(f"{base}/admin/console/")
    act_on(page, base, BOARD, "Pause…", "Rebuilding the run board tonight")
    assert "Pause: demo.run_board active → paused" in page.inner_text(".messagelist")
    board = row(page, BOARD)
    assert board.locator(".status").inner_text() == "Paused"
    assert "paused by operator since" in board.locator(".diagnosis").inner_text()
    assert "Rebuilding the run board tonight" in board.locator(".diagnosis").inner_text()
    page.screenshot(path=str(SHOTS / "console-2-paused.png"), full_page=True)

    # 3. Resume it.
    act_on(page, base, BOARD, "Resume…", "Rebuild done")
    assert row(page, BOARD).locator(".status").inner_text() == "Active"
    page.screenshot(path=str(SHOTS / "console-3-resumed.png"), full_page=True)

    # 4. Retry the wedged reaction; the worker attempts it again (it fails again), and the
    # page, refreshing itself, shows the attempt count go up without a reload.
    assert row(page, DRAFTER).locator(".attempts").inner_text() == "2"
    act_on(page, base, DRAFTER, "Retry now…", "Model provider raised the context window")
    assert row(page, DRAFTER).locator(".status").inner_text() == "Retrying"
    with override_settings(EVENTDESK=DEMO):
        drain(load_registry(), lambda: drafter().status == "wedged", "the retry to fail again")
    assert drafter().attempts == 3
    page.wait_for_function(
        """name => {
            const cell = document.querySelector(`tr[data-subscriber="${name}"] .attempts`);
            return cell && cell.textContent.trim() === "3";
        }""",
        arg=DRAFTER,
        timeout=30_000,
    )
    assert int(page.get_attribute("#console-live", "data-refreshes") or 0) >= 1
    page.screenshot(path=str(SHOTS / "console-4-retried-attempts-up.png"), full_page=True)

    # 5. Dismiss in bulk by fingerprint, after the preview says how many match: the
    # drafter and the head of the debriefer's parked stream run-0004 (the same error).
    group = fingerprint(drafter().last_error).id
    page.goto(f"{base}/admin/console/failures/")
    page.locator(f'tr[data-fingerprint="{group}"]').get_by_role("link", name="Preview…").click()
    assert page.inner_text("#group-count").startswith(
        "2 failing item(s) match ContextWindowExceeded"
    )
    assert str(poison.event_id) in page.inner_text("#group-items")
    assert DEBRIEF_POISON_RUN in page.inner_text("#group-items")
    page.fill("#id_reason", "Evidence too large for any model; notes drafted by hand")
    page.screenshot(path=str(SHOTS / "console-5-bulk-preview.png"), full_page=True)
    page.click("input[name=dismiss]")
    page.wait_for_url(f"{base}/admin/console/failures/")
    assert f"Dismissed 2 item(s) of {group}" in page.inner_text(".messagelist")
    assert drafter().status == "active"
    assert parked_streams(DEBRIEFER) == []

    # 6. See the decisions: each links to the event it acted on.
    page.goto(f"{base}/admin/reactions_admin/decision/")
    audit = page.inner_text("#result_list")
    for expected in ("EventDismissed", "GroupDismissed", "RetriedNow", "Paused", "Resumed"):
        assert expected in audit
    link = page.locator("#result_list a", has_text=str(poison.event_id)).first
    assert link.get_attribute("href") == f"/admin/eventstore/event/{poison.position}/change/"
    page.screenshot(path=str(SHOTS / "console-6-decisions.png"), full_page=True)
    dismissals = decisions()
    assert len(dismissals) == 2
    assert {d.metadata["via"] for d in dismissals} == {"admin"}
