"""The diagnosis as the console reads it from the database: bookmarks, heartbeats, leases,
the horizon."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from reactions_admin import errors
from reactions_admin.reads import overview as overview_module
from reactions_admin.reads.overview import overview, subscriber_report
from subscribers.models import Bookmark, WorkerHeartbeat
from tests.factories import append_events, viewer, wedged_reaction
from tests.support import raw_connection, wait_until_visible

pytestmark = pytest.mark.django_db(transaction=True)


def beat(worker_id: str, subscribers: list[str], silent: float) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id=worker_id, host="h", pid=1, started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(seconds=silent), interval_seconds=5,
        subscribers=subscribers,
    )  # fmt: skip


def test_the_overview_diagnoses_each_subscriber_and_counts() -> None:
    events = wait_until_visible(append_events(3))
    mailer = wedged_reaction("mailer", events[0], failing=events[1])
    Bookmark.objects.filter(pk=mailer.pk).update(
        lease_owner="", failed_at=timezone.now() - timedelta(minutes=4)
    )
    Bookmark.objects.create(
        subscriber_name="board", kind="projection", last_transaction_id=events[-1].transaction_id,
        last_position=events[-1].position,
    )  # fmt: skip
    Bookmark.objects.create(
        subscriber_name="digest", kind="reaction", lease_owner="h:9:dead",
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )  # fmt: skip
    beat("h:1:live", ["board", "mailer"], silent=1)
    beat("h:9:dead", ["digest"], silent=60)

    seen = overview(viewer())
    by_name = {report.name: report.diagnosis for report in seen.reports}
    assert by_name["board"].summary == "caught up"
    assert by_name["mailer"].state.value == "wedged"
    assert by_name["mailer"].summary.startswith(
        f"wedged on event {events[1].event_id} (OrderPlaced) with error ValueError: poison since "
    )
    assert "(4 min ago), after 5 attempt(s)" in by_name["mailer"].summary
    assert by_name["digest"].summary == (
        "its lease is held by worker h:9:dead, which stopped sending heartbeats 1 min ago"
    )
    assert "no live worker runs it" in [c.text for c in by_name["digest"].causes]
    assert seen.counts.as_json() == {
        "wedged": 1, "degraded": 0, "retrying": 0, "paused": 0, "stalled": 2, "total": 3,
    }  # fmt: skip
    assert [w.state for w in seen.workers] == ["live", "gone"]


def test_the_horizon_holder_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overview_module, "HORIZON_SECONDS", 0.0)
    Bookmark.objects.create(subscriber_name="board", kind="projection")
    beat("h:1:live", ["board"], silent=1)
    with raw_connection(autocommit=False) as holder:
        [pid] = holder.execute("SELECT pg_backend_pid()").fetchall()[0]
        holder.execute("SELECT pg_current_xact_id()")  # holds an xid: the horizon stops here
        append_events(2)  # committed, but after the holder began: invisible to readers
        diagnosis = subscriber_report("board", viewer()).diagnosis
        holder.rollback()
    assert diagnosis.state.value == "horizon"
    assert diagnosis.summary.startswith(f"the horizon is held by backend pid {pid} (")
    assert "2 committed event(s) stay invisible" in diagnosis.summary


def test_reading_needs_a_permission_and_a_known_name() -> None:
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    with pytest.raises(errors.PermissionDenied):
        overview(nobody)
    with pytest.raises(errors.SubscriberNotFound):
        subscriber_report("nope", viewer())


def test_the_rate_and_eta_come_from_the_lag_history() -> None:
    from subscribers.models import SubscriberSample

    wait_until_visible(append_events(5))
    Bookmark.objects.create(subscriber_name="board", kind="projection")
    beat("h:1:live", ["board"], silent=1)
    now = timezone.now()
    for ago_seconds, position, lag in [(20, 100, 300), (10, 200, 200)]:
        SubscriberSample.objects.create(
            subscriber_name="board", bucket=now - timedelta(seconds=ago_seconds),
            transaction_id=1, position=position, head_position=400, lag_events=lag,
        )  # fmt: skip
    diagnosis = subscriber_report("board", viewer()).diagnosis
    assert diagnosis.state.value == "catching_up"
    assert diagnosis.rate == pytest.approx(10.0)
    assert diagnosis.summary.startswith("catching up at 10.0 events/s: 5 event(s) behind, ETA ")
