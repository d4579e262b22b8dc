"""Issue 9, C11: for a reaction with ``event_types``, what an operator reads counts only the
events it would have handled -- the dismissal preview (with the total beside it), the
decision's ``handled_events_passed_over`` (``events_passed_over`` stays every event), the
Bookmarks page lag and the REST lag."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from eventstore import NewEvent, RecordedEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.acts.tokens.handler import issue_token
from tests.factories import operator, wedged_reaction
from tests.support import decisions, wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:subscribers_bookmark_changelist")
NAME = "typed.mailer"
TYPES = ["Other", "Wanted", "Other", "Other", "Wanted", "Else", "Wanted"]


class TypedReaction:
    """A reaction that handles only ``Wanted`` events (configured by its dotted path)."""

    name = NAME
    event_types = ("Wanted",)

    def handle(self, event: RecordedEvent) -> None:
        return None


@pytest.fixture
def events(settings: Any) -> list[RecordedEvent]:
    settings.EVENTDESK = {**settings.EVENTDESK, "subscribers": [f"{__name__}.TypedReaction"]}
    appends = [StreamAppend("mixed", [NewEvent(kind, {"n": n}) for n, kind in enumerate(TYPES)])]
    events = wait_until_visible(PostgresEventStore().append_streams(appends))
    wedged_reaction(NAME, None, failing=events[1])
    return events


def test_the_decision_counts_every_event_and_those_the_reaction_handles(events) -> None:
    result = dismiss_event_in_reaction(NAME, events[4].event_id, "poison", operator())
    assert (result.events_passed_over, result.handled_events_passed_over) == (5, 2)
    assert result.as_payload()["handled_events_passed_over"] == 2
    [decision] = decisions()
    assert decision.data["inputs"]["events_passed_over"] == 5
    assert decision.data["inputs"]["handled_events_passed_over"] == 2


def test_the_rest_payload_carries_both_counts(events) -> None:
    response = Client().post(
        f"/agent/reactions/{NAME}/dismiss-event",
        {"event_id": str(events[6].event_id), "reason": "poison"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(operator('robot')).secret}",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["events_passed_over"], body["handled_events_passed_over"]) == (7, 3)


def test_the_preview_lists_only_handled_events_with_the_total_beside(events) -> None:
    client = Client()
    client.force_login(operator())
    response = client.post(
        CHANGELIST,
        {
            "action": "dismiss_event",
            ACTION_CHECKBOX_NAME: [NAME],
            "event_id": str(events[5].event_id),
            "preview": "Preview this event",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    heading = re.search(r'<h3 id="passes-over">(.*?)</h3>', page, re.S)
    assert heading is not None
    assert " ".join(heading.group(1).split()) == (
        f"The move passes over 2 event(s) that {NAME} handles (6 event(s) in all)"
    )
    listed = re.search(r'<table id="passed-over">(.*?)</table>', page, re.S)
    assert listed is not None
    assert listed.group(1).count("<tr>") == 1 + 2  # the header and the two Wanted events
    assert str(events[1].event_id) in listed.group(1)
    assert str(events[4].event_id) in listed.group(1)
    assert str(events[0].event_id) not in listed.group(1)  # an Other


def _lag_cell(page: str) -> str:
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(NAME)}(?:(?!</tr>).)*</tr>", page, re.S)
    assert row is not None, "no row for the reaction"
    cell = re.search(r'<td class="field-lag">([^<]*)</td>', row.group(0))
    assert cell is not None
    return cell.group(1)


def test_the_bookmarks_page_lag_counts_only_handled_events(events) -> None:
    client = Client()
    client.force_login(operator())
    page = client.get(CHANGELIST).content.decode()
    assert _lag_cell(page) == "3"  # of 7 events, 3 are Wanted


def test_the_rest_lag_counts_only_handled_events(events) -> None:
    response = Client().get(
        f"/agent/reactions/{NAME}",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(operator('robot')).secret}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["lag"] == 3
