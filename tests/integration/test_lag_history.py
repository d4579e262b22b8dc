"""The lag history: samples once per bucket however many workers take them, pruned past
the retention, sampled by a running worker; the rate and ETA; the Bookmarks page's
sparkline and the subscriber page's chart; a projection's progress line with its ETA."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from eventstore.types import Cursor
from subscribers import history
from subscribers.models import Bookmark, SubscriberSample
from subscribers.outcome import Outcome
from subscribers.progress import Progress
from subscribers.registry import build_registry
from tests.factories import append, append_many, operator
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TYPED = build_registry(["tests.subscribers.TypedProjection"])


def test_two_workers_sampling_the_same_bucket_write_one_row(settings: Any) -> None:
    # A bucket of an hour: both samples certainly fall in the same one.
    settings.EVENTDESK = {"history_sample_seconds": 3600}
    append("orders-1", "Wanted", "Noise", "Wanted")
    Bookmark.objects.create(subscriber_name="test.typed", kind="projection")
    assert history.sample(TYPED) == 1
    assert history.sample(TYPED) == 0  # the second worker: ON CONFLICT DO NOTHING
    (row,) = SubscriberSample.objects.filter(subscriber_name="test.typed")
    assert row.lag_events == 2  # only the types it handles
    assert not row.lag_capped


def test_samples_past_the_retention_are_pruned(settings: Any) -> None:
    settings.EVENTDESK = {"history_retention_seconds": 600}
    now = timezone.now()
    for minutes in (30, 11, 5, 0):
        SubscriberSample.objects.create(
            subscriber_name="test.typed", bucket=now - timedelta(minutes=minutes),
            transaction_id=1, position=minutes, head_position=40, lag_events=3,
        )  # fmt: skip
    assert history.prune() == 2
    kept = SubscriberSample.objects.order_by("bucket").values_list("position", flat=True)
    assert list(kept) == [5, 0]


def test_a_running_worker_samples_its_subscribers(settings: Any, applied_table: None) -> None:
    settings.EVENTDESK = {"history_sample_seconds": 0.2, "poll_interval_seconds": 0.2}
    append_many(30, kind="Wanted")
    from subscribers.worker import Worker

    worker = Worker(TYPED, sample_history=True)
    worker.start(listen_for_notifications=False)
    try:
        wait_for(
            lambda: (
                SubscriberSample.objects.filter(subscriber_name="test.typed", lag_events=0)
                .values("bucket")
                .distinct()
                .count()
                >= 2
            ),
            what="two samples of the caught-up projection",
        )
    finally:
        worker.request_stop()
        assert worker.join(30)
    estimate = history.rate_and_eta("test.typed")
    assert estimate.samples >= 2
    assert not estimate.behind
    assert estimate.eta_seconds is None


def test_rate_and_eta_of_a_subscriber_catching_up() -> None:
    now = timezone.now()
    for seconds, position, lag in ((-20, 100, 900), (-10, 300, 700), (0, 500, 500)):
        SubscriberSample.objects.create(
            subscriber_name="busy", bucket=now + timedelta(seconds=seconds),
            transaction_id=1, position=position, head_position=1000, lag_events=lag,
        )  # fmt: skip
    estimate = history.rate_and_eta("busy")
    assert estimate.events_per_second == pytest.approx(20.0)
    assert estimate.eta_seconds == pytest.approx(25.0)  # 500 left, shrinking 20/s
    assert estimate.behind


def test_the_bookmarks_page_draws_a_sparkline_and_the_subscriber_page_a_chart() -> None:
    now = timezone.now()
    Bookmark.objects.create(subscriber_name="busy", kind="projection")
    for seconds, position, lag in ((-20, 100, 900), (-10, 300, 700), (0, 500, 500)):
        SubscriberSample.objects.create(
            subscriber_name="busy", bucket=now + timedelta(seconds=seconds),
            transaction_id=1, position=position, head_position=1000, lag_events=lag,
        )  # fmt: skip
    client = Client()
    client.force_login(operator())
    page = client.get("/admin/subscribers/bookmark/").content.decode()
    assert '<svg class="lag-sparkline"' in page
    assert "<polyline points=" in page
    assert "20.0 events/s, caught up in ~25 s" in page
    detail = client.get("/admin/subscribers/bookmark/busy/change/").content.decode()
    assert '<svg class="lag-chart"' in detail
    assert "peak 900 events behind" in detail
    assert "http" not in detail.split('<svg class="lag-chart"')[1].split("</svg>")[0].replace(
        "http://www.w3.org/2000/svg", ""
    )  # drawn here: nothing fetched from elsewhere


def test_a_projection_catching_up_logs_its_rate_and_eta(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.EVENTDESK = {"progress_interval_seconds": 1e-9}
    events = append_many(100, kind="Wanted")
    progress = Progress("test.typed")
    with caplog.at_level(logging.INFO, logger="eventdesk.progress"):
        progress.note(Outcome("test.typed", claimed=True, processed=10, full=True,
                              advanced_to=Cursor(*events[9].cursor)))  # fmt: skip
        progress.note(Outcome("test.typed", claimed=True, processed=10, full=True,
                              advanced_to=Cursor(*events[19].cursor)))  # fmt: skip
    (line,) = [r.getMessage() for r in caplog.records if "catching up" in r.getMessage()]
    assert "~80 behind the head" in line
    assert "ETA ~" in line
