"""A projection that hangs on one event wedges after exactly ``max_attempts`` attempts,
and the batches given up on that return late neither write nor stop the worker.

The batch timeout gives up on the hung batch; the retry then commits the good events
before the hung one. That commit must not reset the hung event's attempt count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import override_settings

from eventstore import NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from subscribers.registry import build_registry
from tests.factories import append
from tests.subscribers import applied, record
from tests.support import bookmark, wait_for
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

FIXTURES = "tests.subscribers."


class HangsAfterGoodOnes:
    """Applies every event but the one marked ``hang``, on which it blocks until released.

    On entering the hang it notes the bookmark's attempt count as its batch sees it:
    the attempts already recorded on that event.
    """

    name = "test.hangs_after_good_ones"
    batch_size = 10

    def __init__(self) -> None:
        self.release = threading.Event()
        self.attempts_seen: list[int] = []
        self.hung_threads: list[threading.Thread] = []

    def apply(self, event: RecordedEvent) -> None:
        if event.data.get("hang"):
            self.hung_threads.append(threading.current_thread())
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT attempts FROM projection_bookmarks WHERE subscriber_name = %s",
                    [self.name],
                )
                self.attempts_seen.append(int(cursor.fetchone()[0]))
            self.release.wait()  # the watchdog's terminate has ended this batch's session
        record(self.name, event)


@pytest.fixture
def projection() -> Iterator[HangsAfterGoodOnes]:
    subscriber = HangsAfterGoodOnes()
    yield subscriber
    subscriber.release.set()  # the abandoned threads end on their dead sessions


@pytest.mark.parametrize("max_attempts", [2, 3])
def test_hung_event_wedges_after_exactly_max_attempts(
    projection: HangsAfterGoodOnes, max_attempts: int
) -> None:
    good = [NewEvent("Tick", {"amount": n}) for n in range(3)]
    *before, hung, _after = PostgresEventStore().append_streams(
        [StreamAppend("hang-1", [*good, NewEvent("Tick", {"hang": True}), NewEvent("Tick", {})])]
    )
    eventdesk = {
        "max_attempts": max_attempts,
        "batch_timeout_seconds": 2.0,
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.2,
        "poll_interval_seconds": 0.2,
    }
    subscribers = build_registry([projection, FIXTURES + "RecordingProjection"])
    with override_settings(EVENTDESK=eventdesk), running_worker(subscribers) as worker:
        wait_for(
            lambda: bookmark(projection.name).status == "wedged",
            timeout=120,
            what=f"{projection.name} to wedge",
        )
        mark = bookmark(projection.name)
        # One entry into the hang per attempt, each seeing the attempts recorded so far.
        assert projection.attempts_seen == list(range(max_attempts))
        assert mark.attempts == max_attempts
        assert mark.failing_event_id == hung.event_id
        assert "BatchTimeout" in mark.last_error
        # The good events before the hung one are applied, once, and the bookmark stands
        # just before the hung event.
        assert mark.cursor == before[-1].cursor
        assert [row[0] for row in applied(projection.name)] == [e.event_id for e in before]

        # The abandoned batches return late, on their ended sessions: they write nothing,
        # and the worker goes on (the other projection still follows the store).
        projection.release.set()
        for thread in projection.hung_threads:
            thread.join(60)
            assert not thread.is_alive()
        [later] = append("later", "Tick")
        wait_for(
            lambda: bookmark("test.recorder").cursor == later.cursor,
            timeout=60,
            what="the other projection to go on",
        )
        assert worker.crashed is None
        assert not worker.stop_event.is_set()
        assert [row[0] for row in applied(projection.name)] == [e.event_id for e in before]
        assert bookmark(projection.name).attempts == max_attempts
