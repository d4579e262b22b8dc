"""A projection batch's happy path has no savepoint: its writes go straight into the
bookmark's transaction. A failure rolls that transaction back whole, and a fresh one
applies the events before the failing event, moves the bookmark to just before it and
records the failure (the contract of ``subscribers/projections.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from subscribers.bookmarks import ensure_bookmarks
from subscribers.failures import Failure
from subscribers.projections import _after_failure, _RolledBack, run_projection_batch
from subscribers.registry import build_registry
from subscribers.watchdog import BatchWatch
from tests.factories import append
from tests.subscribers import applied, record
from tests.support import bookmark, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

RETRY_FAST = {"max_attempts": 5, "retry_base_seconds": 0.01}


class DividesByZero:
    """Writes, then on a poison event sends a statement the database refuses: the
    transaction is aborted (no savepoint to roll back to)."""

    name = "test.divides"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
        if event.data.get("poison"):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")


def statements_of(run: Callable[[], Any]) -> tuple[Any, list[str]]:
    """What ``run`` returns, and every statement it sent through Django's connection."""
    sent: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        result = run()
    return result, sent


def visible(events: list[RecordedEvent]) -> None:
    """Wait until every reader sees ``events`` (the horizon is cluster-wide)."""
    wait_for(lambda: PostgresEventStore().head() >= events[-1].cursor, what="the head")


def test_a_batch_that_applies_cleanly_sends_no_savepoint() -> None:
    events = append("s", "Tick", "Tick", "Tick")
    visible(events)
    subs = build_registry(["tests.subscribers.RecordingProjection"])
    ensure_bookmarks(subs)
    outcome, sent = statements_of(lambda: run_projection_batch(subs["test.recorder"]))
    assert outcome.processed == 3
    assert not [s for s in sent if "SAVEPOINT" in s.upper()]
    assert [row[0] for row in applied("test.recorder")] == [e.event_id for e in events]
    assert bookmark("test.recorder").cursor == events[-1].cursor


@override_settings(EVENTDESK=RETRY_FAST)
def test_a_database_error_mid_batch_commits_only_the_events_before_it() -> None:
    good = append("s", "Tick", "Tick")
    poison = append("p", "Tick", poison=True)
    visible(append("t", "Tick"))
    subs = build_registry([DividesByZero])
    ensure_bookmarks(subs)
    outcome = run_projection_batch(subs["test.divides"])
    assert outcome.processed == 2
    assert outcome.failure is not None
    assert outcome.failure.event.event_id == poison[0].event_id
    assert [row[0] for row in applied("test.divides")] == [e.event_id for e in good]
    mark = bookmark("test.divides")
    assert (mark.cursor, mark.failing_event_id, mark.attempts) == (
        good[-1].cursor,
        poison[0].event_id,
        1,
    )
    assert "division by zero" in mark.last_error


def test_after_a_rollback_a_bookmark_that_moved_meanwhile_is_left_alone() -> None:
    """Between the rolled-back batch and the fresh transaction another worker may have
    taken the bookmark and moved it: the failure is then not this worker's to record."""
    events = append("s", "Tick", "Tick")
    visible(events)
    subs = build_registry(["tests.subscribers.RecordingProjection"])
    ensure_bookmarks(subs)
    run_projection_batch(subs["test.recorder"])  # the bookmark moves past both events
    before = bookmark("test.recorder")
    rolled = _RolledBack(events[0].cursor, 1, Failure(events[1], "ValueError: stale", ""))
    outcome = _after_failure(subs["test.recorder"], BatchWatch(), rolled)
    assert (outcome.claimed, outcome.processed, outcome.failure) == (False, 0, None)
    after = bookmark("test.recorder")
    assert (after.cursor, after.attempts, after.failing_event_id) == (before.cursor, 0, None)
    assert len(applied("test.recorder")) == 2
