"""A ``<script>`` or an ``<img onerror>`` in a dismissal reason, an event payload or a
bookmark's last error is shown as text in the admin, in real Chromium, and never runs:
on the decisions (audit) pages, the events pages and the "Dismiss event…" form."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from subscribers.models import Bookmark
from tests.browser.support import IMG, SCRIPT, assert_inert, log_in, watch_for_script
from tests.factories import append_events, operator, wedged_reaction
from tests.support import decisions, wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = f"{SCRIPT} {IMG}"


@pytest.fixture
def hostile(page: Any) -> dict[str, Any]:
    """An event whose payload and stream carry HTML, a reaction wedged on it with that
    HTML in its last error, and a decision whose reason carries it."""
    events = append_events(3, stream="orders-<b>1</b>", data={"note": HOSTILE})
    wait_until_visible(events)  # a dismissal refuses an event not visible to every reader
    bookmark = wedged_reaction("mailer", events[0], failing=events[1])
    bookmark.last_error = f"ValueError: {HOSTILE}"
    bookmark.save()
    wedged_reaction("pager", events[0], failing=events[1])
    user = operator("operator")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_decision", "view_event"])
    )
    dismiss_event_in_reaction("pager", events[2].event_id, HOSTILE, user, via="rest")
    [decision] = decisions()
    return {"events": events, "decision": decision}


def test_the_decisions_pages_show_a_hostile_reason_as_text(page, console_server, hostile) -> None:
    dialogs = watch_for_script(page)
    changelist = reverse("admin:reactions_admin_decision_changelist")
    log_in(page, console_server.base_url, "operator", "pw-for-tests", changelist)
    # The changelist truncates long reasons: the script, whole, is on it.
    assert_inert(page, dialogs, SCRIPT)
    detail = reverse("admin:reactions_admin_decision_change", args=[hostile["decision"].position])
    page.goto(f"{console_server.base_url}{detail}")
    assert_inert(page, dialogs, SCRIPT, IMG)


def test_the_events_pages_show_a_hostile_payload_as_text(page, console_server, hostile) -> None:
    dialogs = watch_for_script(page)
    changelist = reverse("admin:eventstore_event_changelist")
    log_in(page, console_server.base_url, "operator", "pw-for-tests", changelist)
    assert_inert(page, dialogs, "orders-<b>1</b>")
    detail = reverse("admin:eventstore_event_change", args=[hostile["events"][1].position])
    page.goto(f"{console_server.base_url}{detail}")
    assert_inert(page, dialogs, SCRIPT, IMG, "orders-<b>1</b>")


def test_the_dismiss_form_shows_hostile_payload_and_error_as_text(
    page, console_server, hostile
) -> None:
    dialogs = watch_for_script(page)
    changelist = reverse("admin:subscribers_bookmark_changelist")
    log_in(page, console_server.base_url, "operator", "pw-for-tests", changelist)
    assert_inert(page, dialogs)  # the changelist shows the (hostile) last error
    row = page.locator("#result_list tr", has_text="mailer")
    row.locator(f"input[name={ACTION_CHECKBOX_NAME}]").check()
    page.select_option("select[name=action]", "dismiss_event")
    page.click("button[name=index]")
    page.wait_for_selector("#dismissed-event")
    assert_inert(page, dialogs, SCRIPT, IMG, "orders-<b>1</b>", f"ValueError: {SCRIPT}")
    assert str(hostile["events"][1].event_id) in page.inner_text("#dismissed-event")
    # Submitting a hostile reason stores it as text and the message stays inert too.
    page.fill("#id_reason", HOSTILE)
    page.click("input[name=apply]")
    page.wait_for_selector(".messagelist .success")
    assert_inert(page, dialogs)
    assert Bookmark.objects.get(pk="mailer").cursor == hostile["events"][1].cursor
    assert decisions()[-1].data["reason"] == HOSTILE
