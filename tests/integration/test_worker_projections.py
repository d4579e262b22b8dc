"""Projection batches against the real PostgreSQL: order, exactly once, failures, the horizon."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import override_settings

from eventstore.postgres import PostgresEventStore
from eventstore.types import START
from subscribers.registry import build_registry
from subscribers.worker import Worker
from tests.factories import append, append_many
from tests.subscribers import applied, record
from tests.support import bookmark, raw_connection, wait_for
from tests.workers import drain

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

FIXTURES = "tests.subscribers."


def registry(*names: str) -> Any:
    return build_registry([FIXTURES + name for name in names])


def test_applies_every_event_once_in_global_order_across_batches() -> None:
    events = append_many(35)
    subs = registry("RecordingProjection")
    drain(subs, lambda: bookmark("test.recorder").cursor == events[-1].cursor)
    assert [row[0] for row in applied("test.recorder")] == [e.event_id for e in events]
    assert Worker(subs).run_once() == 0
    more = append("s-late", "Tick")
    drain(subs, lambda: bookmark("test.recorder").cursor == more[0].cursor)
    assert [row[0] for row in applied("test.recorder")] == [e.event_id for e in events + more]


def test_bookmark_moves_past_events_it_does_not_want() -> None:
    append("a", "Other", "Other", "Other")
    wanted = append("b", "Wanted")
    tail = append("c", "Other", "Other")
    subs = registry("TypedProjection")
    # It comes to stand at the head, not on its last wanted event: nothing is scanned again.
    drain(subs, lambda: bookmark("test.typed").cursor == tail[-1].cursor)
    assert [row[0] for row in applied("test.typed")] == [wanted[0].event_id]
    assert Worker(subs).run_once() == 0


def test_apply_batch_is_used() -> None:
    events = append_many(12)
    drain(registry("BatchProjection"), lambda: len(applied("test.batch")) == 12)
    assert [row[0] for row in applied("test.batch")] == [e.event_id for e in events]


class Fresh:
    name = "test.fresh"
    start_at_head = True

    def apply(self, event: Any) -> None:
        record(self.name, event)


def test_start_at_head_skips_history() -> None:
    old = append("old", "Tick")
    # "The head" is what every reader can see: wait until that includes the old event.
    wait_for(lambda: PostgresEventStore().head() == old[0].cursor, what="the head")
    subs = build_registry([Fresh])
    drain(subs, lambda: bookmark("test.fresh").cursor == old[0].cursor)
    new = append("new", "Tick")
    drain(subs, lambda: applied("test.fresh"))
    assert [row[0] for row in applied("test.fresh")] == [new[0].event_id]


@override_settings(EVENTDESK={"max_attempts": 3, "retry_base_seconds": 0.01})
@pytest.mark.parametrize("name", ["FragileProjection", "BatchProjection"])
def test_failing_event_commits_the_events_before_it_then_retries_and_wedges(name: str) -> None:
    subscriber = "test.fragile" if name == "FragileProjection" else "test.batch"
    good = append("s", "Tick", "Tick")
    poison = append("p", "Tick", poison=True)
    after = append("t", "Tick")
    subs = registry(name)
    drain(subs, lambda: bookmark(subscriber).failing_event_id is not None)
    assert [row[0] for row in applied(subscriber)] == [e.event_id for e in good]
    mark = bookmark(subscriber)
    assert mark.cursor == good[-1].cursor
    assert mark.failing_event_id == poison[0].event_id
    assert mark.status in {"retrying", "wedged"}
    assert "ValueError" in mark.last_error
    assert "Traceback" in mark.last_traceback
    assert mark.failed_at is not None

    drain(subs, lambda: bookmark(subscriber).status == "wedged", "the bookmark to wedge")
    mark = bookmark(subscriber)
    assert (mark.attempts, mark.cursor, mark.next_retry_at) == (3, good[-1].cursor, None)
    Worker(subs).run_once()  # a wedged bookmark is left alone until an operator acts
    assert bookmark(subscriber).attempts == 3
    assert [row[0] for row in applied(subscriber)] == [e.event_id for e in good]
    assert after[0].event_id not in {row[0] for row in applied(subscriber)}


def test_first_failure_is_recorded_as_retrying_with_a_next_retry_time() -> None:
    append("p", "Tick", poison=True)
    subs = registry("FragileProjection")
    drain(subs, lambda: bookmark("test.fragile").attempts == 1)
    mark = bookmark("test.fragile")
    assert mark.status == "retrying"
    assert mark.next_retry_at is not None
    assert applied("test.fragile") == []  # the failing event's own write rolled back


def test_slow_transaction_that_began_first_is_not_overtaken_by_the_worker() -> None:
    """A transaction takes its id, a later one commits first: the worker must not pass
    over the slow one's event, with or without an event-type filter."""
    subs = registry("RecordingProjection", "TypedProjection")
    with raw_connection(autocommit=False) as slow:
        slow.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
            " VALUES (%s, 'slow', 1, 'Wanted', '{}', '{}')",
            [uuid.uuid4()],
        )
        fast = append("fast", "Wanted")
        fast_other = append("fast-other", "Other")
        for _ in range(3):
            Worker(subs).run_once()
        assert applied("test.recorder") == []
        assert applied("test.typed") == []
        # The horizon holds both bookmarks before the slow transaction's event.
        assert bookmark("test.recorder").cursor == START
        assert bookmark("test.typed").cursor == START
        slow.commit()
    drain(subs, lambda: bookmark("test.typed").cursor == fast_other[0].cursor)
    drain(subs, lambda: len(applied("test.recorder")) == 3)
    assert [(row[2], row[1] == fast[0].position) for row in applied("test.recorder")] == [
        ("Wanted", False),
        ("Wanted", True),
        ("Other", False),
    ]
    assert [row[1] for row in applied("test.typed")][1] == fast[0].position
    assert len(applied("test.typed")) == 2
