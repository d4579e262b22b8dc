"""A rebuild's replay (``replay_events``) applies a batch under one savepoint, the
subscriber's own ``atomic`` blocks making none; when an event raises, or an error was
caught and the code went on, the batch is rolled back to that savepoint and applied again
with every savepoint, so the tables and the failure are what the per-event code with its
savepoints gives (``apply_events``)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from eventstore.types import RecordedEvent
from subscribers.projections import apply_events, replay_events
from subscribers.registry import Registered, build_registry
from tests.factories import append
from tests.integration.test_projection_batch_path import (
    BREAKS_WITHOUT_RAISING,
    CatchesTheRace,
    CatchesTheRaceThenDivides,
    RollsBackOnPurpose,
    SavepointByHand,
    SwallowsTheError,
    TallyCreator,
    _events_with,
    _tallies,
    _ticks,
    refused_under_a_hand_savepoint,
    statements_of,
    visible,
)
from tests.readmodels.models import Tally
from tests.subscribers import applied, record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]


def _entry(subscriber: object, events: list[RecordedEvent]) -> Registered:
    visible(events)
    return build_registry([subscriber])[str(subscriber.name)]  # type: ignore[attr-defined]


def _savepoints(sent: list[str]) -> list[str]:
    return [s for s in sent if "SAVEPOINT" in s.upper()]


def _connection_state() -> tuple[bool, bool, list[str], int]:
    """What the caller's transaction relies on after a replay, redone or not."""
    return (
        connection.features.uses_savepoints,
        connection.needs_rollback,
        list(connection.savepoint_ids),
        len(connection.atomic_blocks),
    )


def test_a_clean_replay_makes_one_savepoint_for_the_batch_and_none_per_row() -> None:
    events = _ticks("a", "b", "a", "c", "a")
    entry = _entry(TallyCreator, events)
    with transaction.atomic():
        result, sent = statements_of(lambda: replay_events(entry, events))
    assert result == (5, None)
    assert len(_savepoints(sent)) == 2, _savepoints(sent)  # the batch's: taken, released
    assert _tallies() == {"a": 3, "b": 1, "c": 1}


def test_the_same_replay_with_every_savepoint_makes_one_per_created_row() -> None:
    """What the elision saves (the comparison the test above stands on)."""
    events = _ticks("a", "b", "a", "c", "a")
    entry = _entry(TallyCreator, events)
    with transaction.atomic():
        result, sent = statements_of(lambda: apply_events(entry, events))
    assert result == (5, None)
    assert len(_savepoints(sent)) == 2 + 2 * 3  # the batch's, and two per created row
    assert _tallies() == {"a": 3, "b": 1, "c": 1}


@pytest.mark.parametrize(
    ("subscriber", "keys", "extra", "tallies"),
    [
        (CatchesTheRace, ("a", "a", "b", "a"), {}, {"a": 3, "b": 1}),
        (SwallowsTheError, ("x", "y", "z"), {}, {"once": 0}),
        # the last event swallows the error: no statement after it would raise
        (SwallowsTheError, ("x", "y"), {}, {"once": 0}),
    ],
)
def test_an_error_caught_in_a_block_is_redone_with_the_savepoints(
    subscriber: object, keys: tuple[str, ...], extra: dict[str, object], tallies: dict[str, int]
) -> None:
    events = _ticks(*keys, **extra)
    entry = _entry(subscriber, events)
    with transaction.atomic():
        before = _connection_state()
        result, sent = statements_of(lambda: replay_events(entry, events))
        assert _connection_state() == before
        assert before[:2] == (True, False)
    assert result == (len(events), None)
    assert len(_savepoints(sent)) > 2, "the redo makes the blocks' savepoints"
    assert _tallies() == tallies
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]


class SavepointByHandLast:
    """Records, then on a poison event takes a savepoint by hand around a statement the
    database refuses, rolls back to it and sends nothing more."""

    name = "test.savepoint_by_hand_last"
    batch_size = 10

    def apply(self, event: RecordedEvent) -> None:
        record(self.name, event)
        if event.data.get("poison"):
            refused_under_a_hand_savepoint()


@pytest.mark.parametrize(
    ("subscriber", "last_poisoned"), [(SavepointByHand, False), (SavepointByHandLast, True)]
)
def test_a_savepoint_taken_by_hand_is_honoured_in_a_replay(
    subscriber: object, last_poisoned: bool
) -> None:
    """Its savepoint is not made while the blocks make none: the refused statement breaks
    the transaction and the batch is redone with the savepoints, even when nothing is sent
    after the refused statement."""
    events = [*_ticks("a"), *_ticks("b", poison=not last_poisoned), *_ticks("c", poison=True)]
    entry = _entry(subscriber, events)
    with transaction.atomic():
        result, sent = statements_of(lambda: replay_events(entry, events))
    assert result == (3, None)
    assert len(_savepoints(sent)) > 2, "redone with the hand-made savepoint made"
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]


def test_a_failure_after_a_caught_error_is_found_on_its_own_event_and_the_callers_writes_stay() -> (
    None
):
    good = _ticks("a", "a", "b")
    poison = append("p", "Tick", poison=True)
    events = [*good, *poison]
    entry = _entry(CatchesTheRaceThenDivides, events)
    with transaction.atomic():
        Tally.objects.create(group="caller", name="before", count=7)  # the rebuild's own
        count, failure = replay_events(entry, events)
        Tally.objects.create(group="caller", name="after", count=8)  # still usable
    assert count == 3
    assert failure is not None
    assert failure.event.event_id == poison[0].event_id
    assert "division by zero" in failure.error
    assert _tallies() == {"a": 2, "b": 1, "before": 7, "after": 8}
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in good]


def test_an_empty_replay_sends_nothing() -> None:
    entry = build_registry([TallyCreator])[TallyCreator.name]
    with transaction.atomic():
        result, sent = statements_of(lambda: replay_events(entry, []))
    assert result == (0, None)
    assert sent == []


@pytest.mark.parametrize(("subscriber", "data", "failing"), BREAKS_WITHOUT_RAISING)
def test_a_transaction_broken_without_raising_fails_the_replay_on_its_event(
    subscriber: object, data: list[dict[str, object]], failing: int
) -> None:
    """Before, ``apply_events`` returned such a batch as applied with its writes rolled
    back (the rebuild's bookmark moved past them), or looped for ever."""
    events = _events_with(data)
    entry = _entry(subscriber, events)
    with transaction.atomic():
        before = _connection_state()
        count, failure = replay_events(entry, events)
        assert _connection_state() == before
    assert count == failing
    assert failure is not None
    assert failure.event.event_id == events[failing].event_id
    assert "BrokenTransaction" in failure.error
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events[:failing]]


def test_a_rollback_to_a_savepoint_of_its_own_undoes_its_writes_in_a_replay() -> None:
    events = _ticks("a", "b", "c")
    entry = _entry(RollsBackOnPurpose, events)
    with transaction.atomic():
        result, sent = statements_of(lambda: replay_events(entry, events))
    assert result == (3, None)
    assert len(_savepoints(sent)) > 2, "redone with its savepoints made"
    assert not Tally.objects.filter(group="undone").exists()
    assert [row[0] for row in applied(entry.name)] == [e.event_id for e in events]
