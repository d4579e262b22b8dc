"""A projection batch's happy path has no savepoint: its writes go straight into the
bookmark's transaction. A failure rolls that transaction back whole, and a fresh one
applies the events before the failing event, moves the bookmark to just before it and
records the failure (the contract of ``subscribers/projections.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.test import override_settings

from eventstore.postgres import PostgresEventStore
from eventstore.types import NewEvent, RecordedEvent
from subscribers.bookmarks import ensure_bookmarks
from subscribers.failures import Failure
from subscribers.projections import _after_failure, _RolledBack, run_projection_batch
from subscribers.registry import Registered, build_registry
from subscribers.watchdog import BatchWatch
from tests.factories import append, append_to
from tests.readmodels.models import Tally
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


# --- the subscriber's own atomic blocks make no savepoint on the happy path -------------


class TallyCreator:
    """The plain per-event ORM way: ``get_or_create`` (an atomic block per created row),
    then ``save``."""

    name = "test.tally_creator"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        row, _ = Tally.objects.get_or_create(group="g", name=event.data["key"])
        row.count += 1
        row.save()


class CatchesTheRace:
    """Creates in an atomic block and, on an IntegrityError, updates instead: correct only
    with the block's savepoint (without it, the update hits a broken transaction)."""

    name = "test.catches_the_race"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        key = event.data["key"]
        try:
            with transaction.atomic():
                Tally.objects.create(group="g", name=key, count=1)
        except IntegrityError:
            Tally.objects.filter(group="g", name=key).update(count=F("count") + 1)
        record(self.name, event)


class SwallowsTheError:
    """Ignores a duplicate it tries to create and sends nothing after it for that event."""

    name = "test.swallows"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
        try:
            with transaction.atomic():
                Tally.objects.create(group="g", name="once")
        except IntegrityError:
            pass


class SavepointByHand:
    """Takes a savepoint by hand around a statement the database refuses, rolls back to it
    and goes on."""

    name = "test.savepoint_by_hand"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        if event.data.get("poison"):
            refused_under_a_hand_savepoint()
        record(self.name, event)


def refused_under_a_hand_savepoint() -> None:
    """A statement the database refuses, under a savepoint taken by hand and rolled back
    to when it fails."""
    sid = transaction.savepoint()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
    except DatabaseError:
        transaction.savepoint_rollback(sid)


def _ready(subscriber: Any, events: list[RecordedEvent]) -> Registered:
    """``subscriber`` registered with its bookmark at the start, ``events`` visible."""
    visible(events)
    subs = build_registry([subscriber])
    ensure_bookmarks(subs)
    return subs[str(subscriber.name)]


def _ticks(*keys: str, **data: Any) -> list[RecordedEvent]:
    return append_to("k", [NewEvent("Tick", {"key": key, **data}) for key in keys])


def _tallies() -> dict[str, int]:
    return dict(Tally.objects.values_list("name", "count"))


def test_get_or_create_in_a_batch_sends_no_savepoint() -> None:
    events = _ticks("a", "b", "a", "c", "a")
    entry = _ready(TallyCreator, events)
    outcome, sent = statements_of(lambda: run_projection_batch(entry))
    assert (outcome.processed, outcome.failure) == (5, None)
    assert not [s for s in sent if "SAVEPOINT" in s.upper()]
    assert _tallies() == {"a": 3, "b": 1, "c": 1}
    assert bookmark(entry.name).cursor == events[-1].cursor


def test_an_error_caught_in_an_atomic_block_is_redone_with_its_savepoint() -> None:
    events = _ticks("a", "a", "b", "a")  # the second "a" hits the unique key
    entry = _ready(CatchesTheRace, events)
    outcome, sent = statements_of(lambda: run_projection_batch(entry))
    assert (outcome.processed, outcome.failure) == (4, None)
    assert [s for s in sent if "SAVEPOINT" in s.upper()], "the redo makes the savepoints"
    assert _tallies() == {"a": 3, "b": 1}  # what the per-event code writes with savepoints
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]
    mark = bookmark(entry.name)
    assert (mark.cursor, mark.attempts, mark.failing_event_id) == (events[-1].cursor, 0, None)


def test_an_error_swallowed_with_nothing_sent_after_it_is_not_a_silent_rollback() -> None:
    events = _ticks("x", "y", "z")  # the second and third creates hit the unique key
    entry = _ready(SwallowsTheError, events)
    outcome = run_projection_batch(entry)
    assert (outcome.processed, outcome.failure) == (3, None)
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]
    assert _tallies() == {"once": 0}
    assert bookmark(entry.name).cursor == events[-1].cursor


def test_a_savepoint_taken_by_hand_is_honoured() -> None:
    events = [*_ticks("a"), *_ticks("b", poison=True), *_ticks("c")]
    entry = _ready(SavepointByHand, events)
    outcome = run_projection_batch(entry)
    assert (outcome.processed, outcome.failure) == (3, None)
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]
    assert bookmark(entry.name).cursor == events[-1].cursor


@override_settings(EVENTDESK=RETRY_FAST)
def test_a_failure_after_a_caught_error_is_found_on_its_own_event() -> None:
    """The error caught on the second event breaks the happy path's transaction; the real
    failure, on the fourth, is recorded there, the three before it committed."""
    good = _ticks("a", "a", "b")
    poison = append("p", "Tick", poison=True)
    entry = _ready(CatchesTheRaceThenDivides, [*good, *poison])
    outcome = run_projection_batch(entry)
    assert outcome.processed == 3
    assert outcome.failure is not None
    assert outcome.failure.event.event_id == poison[0].event_id
    assert "division by zero" in outcome.failure.error
    assert _tallies() == {"a": 2, "b": 1}
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in good]
    mark = bookmark(entry.name)
    assert (mark.cursor, mark.failing_event_id) == (good[-1].cursor, poison[0].event_id)


class CatchesTheRaceThenDivides(CatchesTheRace):
    name = "test.catches_then_divides"

    def apply(self, event: RecordedEvent) -> None:
        if event.data.get("poison"):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        super().apply(event)


# --- a subscriber that breaks its transaction without raising ---------------------------


class SwallowsBareCreate:
    """Creates with no ``atomic`` block of its own and ignores the IntegrityError: the
    transaction is broken, with or without the blocks' savepoints (a bug of the
    subscriber's, which must end as a failure on its event, never as lost writes)."""

    name = "test.swallows_bare_create"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
        if event.data.get("dup"):
            with contextlib.suppress(IntegrityError):
                Tally.objects.create(group="g", name="dup")


class SwallowsRawError:
    """Sends a statement the database refuses, ignores the error and sends nothing more."""

    name = "test.swallows_raw_error"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
        if event.data.get("poison"):
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 / 0")
            except DatabaseError:
                pass


class RollsBackOnPurpose:
    """Writes a row under a savepoint of its own and rolls back to it (no error): the row
    must not be there."""

    name = "test.rolls_back_on_purpose"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        sid = transaction.savepoint()
        Tally.objects.create(group="undone", name=event.data["key"])
        transaction.savepoint_rollback(sid)
        record(self.name, event)


#: (subscriber, events' data, the failing event's index): the events before it commit.
BREAKS_WITHOUT_RAISING = [
    pytest.param(SwallowsBareCreate, [{"dup": 1}, {"dup": 1}, {}], 1, id="bare-create"),
    pytest.param(SwallowsBareCreate, [{"dup": 1}, {"dup": 1}], 1, id="bare-create-last"),
    pytest.param(SwallowsRawError, [{}, {"poison": 1}, {}], 1, id="raw-error"),
    pytest.param(SwallowsRawError, [{}, {}, {"poison": 1}], 2, id="raw-error-last"),
]


def _events_with(data: list[dict[str, Any]]) -> list[RecordedEvent]:
    return append_to("k", [NewEvent("Tick", {"n": n, **d}) for n, d in enumerate(data)])


@override_settings(EVENTDESK=RETRY_FAST)
@pytest.mark.parametrize(("subscriber", "data", "failing"), BREAKS_WITHOUT_RAISING)
def test_a_transaction_broken_without_raising_fails_on_its_event_and_loses_nothing(
    subscriber: Any, data: list[dict[str, Any]], failing: int
) -> None:
    events = _events_with(data)
    entry = _ready(subscriber, events)
    outcome = run_projection_batch(entry)
    assert outcome.processed == failing
    assert outcome.failure is not None
    assert outcome.failure.event.event_id == events[failing].event_id
    assert "BrokenTransaction" in outcome.failure.error
    assert "transaction.atomic()" in outcome.failure.error
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events[:failing]]
    mark = bookmark(entry.name)
    expected_cursor = events[failing - 1].cursor
    assert (mark.cursor, mark.failing_event_id) == (expected_cursor, events[failing].event_id)


def test_a_rollback_to_a_savepoint_of_its_own_undoes_its_writes() -> None:
    events = _ticks("a", "b", "c")
    entry = _ready(RollsBackOnPurpose, events)
    outcome = run_projection_batch(entry)
    assert (outcome.processed, outcome.failure) == (3, None)
    assert not Tally.objects.filter(group="undone").exists()
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]
    assert bookmark(entry.name).cursor == events[-1].cursor
