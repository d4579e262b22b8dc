"""Issue 4's story, end to end in real Chromium: the demo is seeded and its worker wedges
``demo.caution_drafter`` on the poison caution; an operator logs into the admin, sees it
wedged on the bookmarks page, runs "Dismiss event…", gives a reason, submits, sees the
success message and the reaction active again, finds the decision on the audit page,
and the worker resumes the reaction past the poison.

Screenshots of the wedged changelist and of the form go to .data/screenshots/.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from demo.history import POISON_RUN
from demo.models import Caution
from eventstore.models import Event
from eventstore.types import Cursor
from subscribers.models import Bookmark
from subscribers.registry import load_registry
from tests.browser.support import SHOTS, log_in
from tests.factories import operator
from tests.support import decisions
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

DRAFTER = "demo.caution_drafter"
DEMO = {
    **django_settings.EVENTDESK,
    "demo_llm_latency_seconds": 0.001,
    "max_attempts": 2,
    "retry_base_seconds": 0.01,
}
REASON = "Evidence excerpt exceeds the model's context window; note drafted by hand."


def drafter() -> Bookmark | None:
    return Bookmark.objects.filter(subscriber_name=DRAFTER).first()


@pytest.fixture
def wedged_demo(page: Any) -> Event:
    """The demo history, worked until the caution drafter is wedged on the poison."""
    call_command("seed_demo", stdout=io.StringIO())
    user = operator("operator")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_decision", "view_event"])
    )
    with override_settings(EVENTDESK=DEMO):
        drain(
            load_registry(),
            lambda: (bookmark := drafter()) is not None and bookmark.status == "wedged",
            "the caution drafter to wedge",
        )
    bookmark = drafter()
    assert bookmark is not None
    assert bookmark.failing_event_id is not None
    return Event.objects.get(event_id=bookmark.failing_event_id)


def test_an_operator_dismisses_the_demo_poison_in_the_browser(
    page, console_server, wedged_demo
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    poison = wedged_demo
    assert (poison.event_type, poison.stream_id) == ("CautionRaised", POISON_RUN)
    changelist = reverse("admin:subscribers_bookmark_changelist")
    page.set_viewport_size({"width": 1600, "height": 900})

    # Log in and see the reaction wedged, with its failing event and error.
    log_in(page, console_server.base_url, "operator", "pw-for-tests", changelist)
    row = page.locator("#result_list tbody tr", has_text=DRAFTER)
    assert row.count() == 1
    assert "\tWedged\t" in row.inner_text()
    assert "ContextWindowExceeded" in row.inner_text()
    page.screenshot(path=str(SHOTS / "1-wedged-changelist.png"), full_page=True)

    # Run "Dismiss event…": the form shows the poison event by default.
    row.locator(f"input[name={ACTION_CHECKBOX_NAME}]").check()
    page.select_option("select[name=action]", "dismiss_event")
    page.click("button[name=index]")
    page.wait_for_selector("#dismissed-event")
    shown = page.inner_text("#dismissed-event")
    assert str(poison.event_id) in shown
    assert "CautionRaised" in shown
    assert POISON_RUN in shown
    assert page.input_value("#id_event_id") == str(poison.event_id)
    page.fill("#id_reason", REASON)
    page.screenshot(path=str(SHOTS / "2-dismiss-form.png"), full_page=True)

    # Submit: the success message, and the reaction is active again.
    page.click("input[name=apply]")
    page.wait_for_url(f"{console_server.base_url}{changelist}")
    success = page.inner_text(".messagelist .success")
    assert f"Dismissed event {poison.event_id} in {DRAFTER}" in success
    row = page.locator("#result_list tbody tr", has_text=DRAFTER)
    assert "\tActive\t" in row.inner_text()
    assert "Wedged" not in row.inner_text()
    page.screenshot(path=str(SHOTS / "3-after-dismissal.png"), full_page=True)

    # The decision is on the audit page: who, which reaction and event, why.
    page.goto(f"{console_server.base_url}{reverse('admin:reactions_admin_decision_changelist')}")
    audit = page.inner_text("#result_list")
    for expected in ("operator", DRAFTER, str(poison.event_id), REASON):
        assert expected in audit
    [decision] = decisions()
    assert decision.metadata["via"] == "admin"
    assert decision.data["inputs"]["event_id"] == str(poison.event_id)

    # The worker resumes the reaction past the poison: the cautions after it get notes.
    later = Caution.objects.filter(run_id__gt=POISON_RUN)
    assert later.exists()
    assert not later.exclude(note="").exists()
    with override_settings(EVENTDESK=DEMO):
        drain(load_registry(), lambda: not later.filter(note="").exists(), "the drafter to resume")
    bookmark = drafter()
    assert bookmark is not None
    assert bookmark.status == "active"
    assert bookmark.cursor > Cursor(int(poison.transaction_id), poison.position)
