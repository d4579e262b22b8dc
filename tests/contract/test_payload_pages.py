"""The failing event as an operator reads it: the event page and the dismissal form keep
the payload's own key order, show short fields first, fold long ones; the traceback is one
click away."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from eventstore import NewEvent
from eventstore.postgres import PostgresEventStore
from eventstore.types import StreamAppend
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)

DATA = {
    "run_id": "run-0007",
    "severity": "critical",
    "message": "Agent attached its whole SQL session log as evidence",
    "excerpt": "UPDATE customers SET ... -- 1 row\n" * 4000,
}


@pytest.fixture
def poison():
    [before] = wait_until_visible(append_events(1))
    [event] = wait_until_visible(
        PostgresEventStore().append_streams([StreamAppend("run-0007", [NewEvent("Caution", DATA)])])
    )
    wedged_reaction("drafter", before, failing=event)
    Bookmark.objects.filter(pk="drafter").update(
        last_traceback='Traceback (most recent call last):\n  File "demo/llm.py", line 40'
    )
    client = Client()
    client.force_login(operator())
    return event, client


def order_of(html: str) -> list[str]:
    return re.findall(r'<th class="payload-key">([^<]*)</th>', html)


def test_the_store_gives_the_keys_back_in_their_own_order(poison) -> None:
    event, _ = poison
    read = PostgresEventStore().get_event(event.event_id)
    assert read is not None
    assert list(read.data) != list(DATA)  # jsonb: shorter keys first
    from eventstore.types import in_key_order

    assert list(in_key_order(read.data, read.metadata)) == list(DATA)


def test_the_event_page_keeps_the_order_and_folds_the_long_field(poison) -> None:
    event, client = poison
    html = client.get(f"/admin/eventstore/event/{event.position}/change/").content.decode()
    assert order_of(html) == ["run_id", "severity", "message", "excerpt"]
    assert '<details class="payload-long"><summary>UPDATE customers' in html
    assert f"({len(DATA['excerpt'])} characters)" in html


def test_the_dismissal_form_shows_the_payload_and_the_traceback_one_click_away(poison) -> None:
    _, client = poison
    html = client.post(
        "/admin/subscribers/bookmark/",
        {"action": "dismiss_event", ACTION_CHECKBOX_NAME: ["drafter"], "index": 0},
    ).content.decode()
    assert order_of(html) == ["run_id", "severity", "message", "excerpt"]
    assert '<details id="traceback"><summary>Traceback</summary>' in html
    assert "demo/llm.py" in html


@pytest.mark.parametrize(
    "keys",
    [
        ["n", "payload"],
        ["payload", "n"],
        ["ab", "é"],
        ["é", "ab"],
        ["zz", "aa", "b", "ccc"],
        ["b", "zz", "aa", "ccc"],
        ["ä", "z", "ab", "ü"],
    ],
)
def test_the_order_comes_back_whether_or_not_jsonb_kept_it(keys) -> None:
    from eventstore.types import in_key_order

    data = {key: index for index, key in enumerate(keys)}
    [appended] = PostgresEventStore().append_streams([StreamAppend("k", [NewEvent("K", data)])])
    read = PostgresEventStore().get_event(appended.event_id)
    assert read is not None
    assert list(in_key_order(read.data, read.metadata)) == keys
