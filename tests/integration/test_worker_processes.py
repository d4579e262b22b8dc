"""Worker processes on one database: a SIGKILL mid-batch, two workers at once, a lost connection."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from eventstore.models import Event
from tests.factories import append, append_many
from tests.subscribers import APPLIED_TABLE, applied
from tests.support import bookmark, wait_for
from tests.workers import run_worker, start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

F = "tests.subscribers."


def backends(application_name: str, *, in_transaction: bool = False) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            + (" AND backend_xid IS NOT NULL" if in_transaction else ""),
            [application_name],
        )
        return int(cursor.fetchone()[0])


def all_event_ids() -> list[object]:
    return list(
        Event.objects.order_by("transaction_id", "position").values_list("event_id", flat=True)
    )


def projected_total(subscriber: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(sum(amount), 0) FROM {APPLIED_TABLE} WHERE subscriber = %s",
            [subscriber],
        )
        return int(cursor.fetchone()[0])


def test_sigkill_mid_batch_then_restart_applies_every_event_exactly_once(
    processes, tmp_path: Path
) -> None:
    events = append_many(300)
    name = "eventdesk-test-killed"
    worker = start_worker(
        [F + "SlowRecordingProjection"], log=tmp_path / "worker.log", application_name_hint=name
    )
    processes.append(worker)
    # At least one batch committed, and the worker is inside the next one's transaction.
    wait_for(lambda: len(applied("test.slow_recorder")) >= 25, what="a first batch")
    wait_for(lambda: backends(name, in_transaction=True), what="a batch in flight")
    worker.send_signal(signal.SIGKILL)
    worker.wait(30)
    wait_for(lambda: backends(name) == 0, what="the server to drop the killed worker's session")
    committed = len(applied("test.slow_recorder"))
    assert 0 < committed < 300
    # Only whole batches survived: the rows and the bookmark committed together.
    assert [row[1] for row in applied("test.slow_recorder")][-1] == bookmark(
        "test.slow_recorder"
    ).last_position

    def restart() -> bool:
        done = run_worker([F + "SlowRecordingProjection"], "--once")
        assert done.returncode == 0, done.stderr
        return bookmark("test.slow_recorder").cursor == events[-1].cursor

    wait_for(restart, what="the restarted worker to catch up")
    ids = [row[0] for row in applied("test.slow_recorder")]
    assert ids == [e.event_id for e in events]  # each once, in global order
    assert projected_total("test.slow_recorder") == sum(e.data["amount"] for e in events)


def test_two_workers_never_apply_an_event_twice(processes) -> None:
    subscribers = [F + "RecordingProjection", F + "BatchProjection", F + "SlowEchoReaction"]
    processes.extend(start_worker(subscribers, lease_seconds="30") for _ in range(2))
    pings = []
    for round_ in range(10):
        append_many(20, per_append=5)
        pings += append(f"ping-{round_}", "Ping", "Ping")
    pong_stream_count = len(pings)

    def caught_up() -> bool:
        # Every Pong first: only the reaction appends after the pings, so once all of them
        # are in, the total is final (read the other way round, a Pong landing between the
        # two reads made a caught-up recorder look one event short of the store).
        if Event.objects.filter(event_type="Pong").count() != pong_stream_count:
            return False
        total = Event.objects.count()
        return len(applied("test.recorder")) == total and len(applied("test.batch")) == total

    wait_for(caught_up, what="both workers to catch up")
    assert all(process.poll() is None for process in processes)
    everything = all_event_ids()
    for subscriber in ("test.recorder", "test.batch"):
        ids = [row[0] for row in applied(subscriber)]
        assert Counter(ids).most_common(1)[0][1] == 1, f"{subscriber} applied an event twice"
        assert ids == everything
    answered = Counter(e.data["ping"] for e in Event.objects.filter(event_type="Pong"))
    assert sorted(answered) == sorted(str(p.event_id) for p in pings)
    assert set(answered.values()) == {1}


def test_worker_survives_a_lost_database_connection(processes, tmp_path: Path) -> None:
    name = "eventdesk-test-dropped"
    worker = start_worker(
        [F + "RecordingProjection"], log=tmp_path / "worker.log", application_name_hint=name
    )
    processes.append(worker)
    first = append("a", "Tick")
    wait_for(lambda: len(applied("test.recorder")) == 1, what="the first event")
    wait_for(lambda: backends(name) >= 2, what="the worker's connections (loop and listener)")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [name],
        )
    later = append("b", "Tick")
    wait_for(lambda: len(applied("test.recorder")) == 2, what="the worker to reconnect")
    assert [row[0] for row in applied("test.recorder")] == [first[0].event_id, later[0].event_id]
    assert worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    assert "retrying in" in (tmp_path / "worker.log").read_text()
