"""The console's pages: the home page (the admin index) with its counts and one row per
subscriber, its refreshable fragment, the Workers page, failures by fingerprint with the
preview and the act, and the reason form of each action."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from reactions_admin.acts.failure_groups.fingerprint import fingerprint
from subscribers.models import Bookmark, SubscriberSample, WorkerHeartbeat
from tests.factories import operator, wedged_mailer
from tests.support import decisions

pytestmark = pytest.mark.django_db(transaction=True)

ERROR = "ContextWindowExceeded: prompt is 38,545 tokens"


@pytest.fixture
def events():
    events = wedged_mailer(3)
    Bookmark.objects.filter(pk="mailer").update(
        last_error=ERROR, failed_at=timezone.now() - timedelta(minutes=4)
    )
    Bookmark.objects.create(subscriber_name="board", kind="projection")
    return events


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ops() -> Client:
    return client_of(operator("ops", permitted=True, operates=True))


def viewer() -> Client:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_console", content_type__app_label="reactions_admin")
    )
    return client_of(User.objects.get(pk=user.pk))


def text(response) -> str:
    """What a person reads: the page without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_admin_index_is_the_home_page(events) -> None:
    page = ops().get("/admin/")
    assert page.status_code == 200
    shown = text(page)
    assert "1 wedged 0 degraded 0 retrying 0 paused 2 stalled of 2 subscriber(s)" in shown
    assert f"wedged on event {events[1].event_id} (OrderPlaced) with error {ERROR}" in shown
    assert "(4 min ago)" in shown
    assert re.search(r"updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", shown)
    html = page.content.decode()
    assert 'src="/static/reactions_admin/console.js"' in html
    assert 'data-src="/admin/console/fragment/"' in html
    assert "cdn" not in html.lower()


def test_the_fragment_is_what_the_page_refreshes(events) -> None:
    fragment = viewer().get("/admin/console/fragment/")
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert 'data-subscriber="mailer" data-state="wedged"' in fragment.content.decode()
    # A read-only operator is offered no action.
    assert "Pause…" not in fragment.content.decode()
    assert "Dismiss…" not in fragment.content.decode()


def test_the_script_is_served_by_the_project() -> None:
    response = Client().get("/static/reactions_admin/console.js")
    assert response.status_code == 200
    assert b"setInterval" in b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_the_workers_page(events) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="h:1:live", host="h", pid=11, started_at=now, last_seen_at=now,
        interval_seconds=5, subscribers=["mailer"],
        doing=[{"subscriber": "mailer", "event_id": str(events[1].event_id),
                "since": now.isoformat(), "attempt": 6}],
    )  # fmt: skip
    WorkerHeartbeat.objects.create(
        worker_id="h:2:gone", host="h", pid=12, started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(minutes=4), interval_seconds=5, subscribers=["board"],
    )  # fmt: skip
    shown = text(viewer().get("/admin/console/workers/"))
    assert "h:1:live live h 11" in shown
    assert f"mailer: event {events[1].event_id}, attempt 6" in shown
    assert "h:2:gone gone silent for 4 min ago" in shown


def test_failures_by_fingerprint_preview_then_dismiss_all(events) -> None:
    client = ops()
    fp = fingerprint(ERROR).id
    assert f"{fp} 1 ContextWindowExceeded prompt is <n> tokens" in text(
        client.get("/admin/console/failures/")
    ).replace("&lt;", "<").replace("&gt;", ">")
    preview = client.get(f"/admin/console/failures/{fp}/")
    assert "1 failing item(s) match ContextWindowExceeded" in text(preview)
    done = client.post(
        f"/admin/console/failures/{fp}/",
        {"reason": "oversized", "expected_count": "1", "dismiss": "Dismiss all 1"},
        follow=True,
    )
    assert f"Dismissed 1 item(s) of {fp}" in text(done)
    [decision] = decisions()
    assert decision.data["inputs"]["event_id"] == str(events[1].event_id)
    assert decision.metadata["via"] == "admin"


def test_an_action_asks_for_a_reason_then_acts(events) -> None:
    client = ops()
    form = client.get("/admin/console/subscribers/board/pause/")
    assert form.status_code == 200
    assert "Pause board" in text(form)
    blank = client.post("/admin/console/subscribers/board/pause/", {"reason": ""})
    assert blank.status_code == 200
    assert Bookmark.objects.get(pk="board").status == "active"
    done = client.post(
        "/admin/console/subscribers/board/pause/", {"reason": "migration"}, follow=True
    )
    assert "Pause: board active → paused" in text(done)
    assert "paused by ops since" in text(done)


def test_a_viewer_cannot_act_from_the_console(events) -> None:
    client = viewer()
    done = client.post("/admin/console/subscribers/board/pause/", {"reason": "nope"}, follow=True)
    assert "permission_denied" in text(done)
    assert Bookmark.objects.get(pk="board").status == "active"


def test_the_home_page_draws_each_subscribers_lag_trend(events) -> None:
    now = timezone.now()
    for minutes, lag in ((3, 30), (2, 20), (1, 10)):
        SubscriberSample.objects.create(
            subscriber_name="board",
            bucket=now - timedelta(minutes=minutes),
            transaction_id=0,
            position=0,
            head_position=lag,
            lag_events=lag,
        )
    fragment = ops().get("/admin/console/fragment/").content.decode()
    board = fragment[fragment.index('data-subscriber="board"') :]
    board = board[: board.index("</tr>")]
    assert '<svg class="lag-sparkline"' in board
    mailer = fragment[fragment.index('data-subscriber="mailer"') :]
    assert "no samples yet" in mailer[: mailer.index("</tr>")]


def test_a_reaction_with_a_parked_stream_reads_degraded_and_links_to_its_streams(parked) -> None:
    fragment = ops().get("/admin/console/fragment/").content.decode()
    row = fragment[fragment.index(f'data-subscriber="{parked.name}"') :]
    row = row[: row.index("</tr>")]
    assert ">Degraded<" in row
    assert f"parkedstream/?subscriber_name__exact={parked.name}" in row
    assert "1 parked stream(s)" in row


def test_the_console_is_branded_and_leaves_the_width_to_its_tables(events) -> None:
    html = ops().get("/admin/subscribers/bookmark/").content.decode()
    assert "| Eventdesk</title>" in html
    assert 'id="nav-sidebar"' not in html
