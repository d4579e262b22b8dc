"""The bookmark changelist an operator reads: cursor, lag, status, the failing event, the error."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from subscribers.models import Bookmark
from subscribers.registry import build_registry
from tests.factories import append
from tests.support import bookmark, wait_for
from tests.workers import drain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

F = "tests.subscribers."


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_superuser("op", "", "pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


@override_settings(
    EVENTDESK={"max_attempts": 1, "subscribers": [F + "RecordingProjection", F + "EchoReaction"]}
)
def test_changelist_shows_kind_batch_size_cursor_lag_status_and_error(operator: Client) -> None:
    append("p", "Ping", poison=True)
    registry = build_registry([F + "EchoReaction"])
    drain(registry, lambda: bookmark("test.echo").status == "wedged")
    Bookmark.objects.create(subscriber_name="test.recorder", kind="projection")
    append("t", "Tick")

    def changelist() -> str:
        page = operator.get("/admin/subscribers/bookmark/")
        assert page.status_code == 200
        return page.content.decode()

    # The lag counts what every reader can see; a transaction open elsewhere on the
    # server may hide the newest event for a moment.
    def lag_is_two() -> str:
        text = changelist()
        return text if 'field-lag">2<' in text else ""

    html = wait_for(lag_is_two, what="the lag to show both events")
    for text in ("test.echo", "test.recorder", "reaction", "projection", "wedged", "RuntimeError"):
        assert text in html
    assert '<td class="field-batch_size">10</td>' in html  # the projection's declared size
    assert '<td class="field-lag">2</td>' in html  # test.recorder: both events behind
    assert "Ping p@1" in html  # the failing event, named


def test_bookmarks_cannot_be_added_changed_or_deleted_from_the_admin(operator: Client) -> None:
    Bookmark.objects.create(subscriber_name="x", kind="projection")
    assert operator.get("/admin/subscribers/bookmark/add/").status_code == 403
    change = operator.post("/admin/subscribers/bookmark/x/change/", {"last_position": 99})
    assert change.status_code in {200, 403}
    assert Bookmark.objects.get(subscriber_name="x").last_position == 0
    assert operator.get("/admin/subscribers/bookmark/x/delete/").status_code == 403


def test_demo_read_models_are_in_the_admin(operator: Client) -> None:
    for url in ("/admin/demo/run/", "/admin/demo/agentstats/", "/admin/demo/caution/"):
        assert operator.get(url).status_code == 200
