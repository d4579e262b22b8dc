"""Worker heartbeats: each worker says it is alive, what it runs and what it is doing; a
clean stop says so; a worker that stops beating is shown as gone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from subscribers.heartbeat import live_workers, workers
from subscribers.models import WorkerHeartbeat
from subscribers.registry import build_registry
from tests.factories import append
from tests.subscribers import GatedReaction
from tests.support import wait_for
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

FAST = {"poll_interval_seconds": 0.2, "retry_base_seconds": 0.01}


def registry(*names: str) -> Any:
    return build_registry(["tests.subscribers." + name for name in names])


@override_settings(EVENTDESK=FAST)
def test_a_running_worker_beats_and_shows_the_event_it_is_handling() -> None:
    GatedReaction.reset()
    [ping] = append("p", "Ping")
    subs = registry("RecordingProjection", "GatedReaction")
    with running_worker(subs) as worker:
        assert GatedReaction.entered.wait(60), "the reaction never started handling"

        def busy() -> Any:
            # The reaction's handle call, not a projection batch that may be in flight too.
            found = [w for w in live_workers() if w.worker_id == worker.owner]
            gated = found and any(d["subscriber"] == "test.gated" for d in found[0].doing)
            return gated and found[0]

        info = wait_for(busy, what="a heartbeat naming the event in hand")
        assert info.state == "live"
        assert info.subscribers == ("test.recorder", "test.gated")
        [doing] = [d for d in info.doing if d["subscriber"] == "test.gated"]
        assert doing["event_id"] == str(ping.event_id)
        assert doing["attempt"] == 1
        assert doing["since"]
        GatedReaction.gate.set()
    # A clean stop is recorded as such, not left to go stale.
    [row] = [w for w in workers() if w.worker_id == worker.owner]
    assert row.state == "stopped"
    assert row.doing == ()
    assert worker.owner not in [w.worker_id for w in live_workers()]


def test_a_worker_that_stopped_beating_is_gone() -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        worker_id="host:1:dead", host="host", pid=1, started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(seconds=31), interval_seconds=10, subscribers=["a"],
    )  # fmt: skip
    WorkerHeartbeat.objects.create(
        worker_id="host:2:alive", host="host", pid=2, started_at=now - timedelta(hours=1),
        last_seen_at=now - timedelta(seconds=29), interval_seconds=10, subscribers=["a"],
    )  # fmt: skip
    states = {w.worker_id: w.state for w in workers()}
    assert states == {"host:1:dead": "gone", "host:2:alive": "live"}
    assert [w.worker_id for w in live_workers()] == ["host:2:alive"]


def test_live_workers_come_from_the_database_alone_among_a_day_of_gone_and_stopped_ones() -> None:
    """/metrics asks for the live workers on every scrape: the database picks them out of
    the day's rows (a cron of ``--once`` runs leaves hundreds), and the full list still
    has them all."""
    now = timezone.now()
    gone = [
        WorkerHeartbeat(
            worker_id=f"host:{n}:gone",
            host="host",
            pid=n,
            started_at=now - timedelta(hours=2),
            last_seen_at=now - timedelta(minutes=n),
            interval_seconds=10,
            subscribers=["a"],
        )
        for n in range(1, 301)
    ]
    stopped = [
        WorkerHeartbeat(
            worker_id=f"host:{n}:stopped",
            host="host",
            pid=n,
            started_at=now - timedelta(hours=1),
            last_seen_at=now,
            stopped_at=now,
            interval_seconds=10,
            subscribers=["a"],
        )
        for n in range(301, 401)
    ]
    WorkerHeartbeat.objects.bulk_create([*gone, *stopped])
    WorkerHeartbeat.objects.create(
        worker_id="host:999:alive", host="host", pid=999, started_at=now - timedelta(hours=1),
        last_seen_at=now, interval_seconds=10, subscribers=["a"],
    )  # fmt: skip
    [alive] = live_workers()
    assert (alive.worker_id, alive.state, alive.subscribers) == ("host:999:alive", "live", ("a",))
    assert [w.worker_id for w in workers(live_only=True)] == ["host:999:alive"]
    states = [w.state for w in workers()]
    assert (len(states), states[0]) == (401, "live")
    assert (states.count("gone"), states.count("stopped")) == (300, 100)
