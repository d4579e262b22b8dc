"""The dismissal against the real PostgreSQL: happy path, every refusal, atomicity, and a
dismissal racing a worker that advances the same bookmark."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from django.db import DatabaseError, connection

from eventstore.types import START, Cursor
from reactions_admin import errors
from reactions_admin.acts.dismissal.decider import DECISION_STREAM
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from subscribers.models import Bookmark
from tests.factories import append_events, operator, wedged_reaction
from tests.support import decisions, raw_connection, wait_until_visible


@pytest.mark.django_db(transaction=True)
def test_happy_path_moves_the_bookmark_clears_the_failure_and_audits() -> None:
    events = wait_until_visible(append_events(5))
    wedged_reaction("mailer", events[0], failing=events[1])
    actor = operator()

    result = dismiss_event_in_reaction(
        "mailer", events[3].event_id, "  poison: bad address ", actor
    )

    bookmark = Bookmark.objects.get(pk="mailer")
    assert bookmark.cursor == events[3].cursor
    assert bookmark.status == Bookmark.Status.ACTIVE
    assert (bookmark.attempts, bookmark.failing_event_id, bookmark.last_error) == (0, None, "")
    assert (bookmark.last_traceback, bookmark.next_retry_at, bookmark.lease_owner) == ("", None, "")
    assert bookmark.lease_expires_at is None
    assert result.cursor_before == events[0].cursor
    assert result.cursor_after == events[3].cursor
    assert result.events_passed_over == 3  # events 1, 2 and the dismissed 3

    [decision] = decisions()
    assert decision.event_id == result.decision_event_id
    assert decision.event_type == "DecisionRegistered"
    assert decision.data["context"] == "ReactionDismissal"
    assert decision.data["choice"] == "EventDismissed"
    assert decision.data["reason"] == "poison: bad address"
    assert decision.data["actor"] == {"username": "operator", "id": actor.pk}
    assert decision.data["inputs"] == {
        "reaction": "mailer",
        "event_id": str(events[3].event_id),
        "event_type": "OrderPlaced",
        "cursor_before": events[0].cursor._asdict(),
        "cursor_after": events[3].cursor._asdict(),
        "events_passed_over": 3,
        "handled_events_passed_over": 3,  # "mailer" is not configured: every type counts
    }
    assert decision.metadata["actor"]["username"] == "operator"
    assert uuid.UUID(decision.metadata["correlation_id"])
    assert decision.metadata["causation_id"] == str(events[3].event_id)


def _refusal_cases() -> list[tuple[Any, ...]]:
    return [
        ("unknown reaction", "nobody", 1, "reason", errors.ReactionNotFound, 404),
        ("a projection", "read-model", 1, "reason", errors.ReactionNotFound, 404),
        ("unknown event", "mailer", None, "reason", errors.EventNotFound, 404),
        ("blank reason", "mailer", 2, "   ", errors.ReasonRequired, 400),
        ("reason too long", "mailer", 2, "x" * 2001, errors.ReasonTooLong, 400),
        ("the event at the bookmark", "mailer", 1, "again", errors.RewindRefused, 409),
        ("an event before the bookmark", "mailer", 0, "rewind", errors.RewindRefused, 409),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "name", "index", "reason", "error", "status"),
    _refusal_cases(),
    ids=[case[0] for case in _refusal_cases()],
)
def test_each_refusal_maps_to_its_error_and_writes_nothing(
    case, name, index, reason, error, status
) -> None:
    events = append_events(4)
    wedged_reaction("mailer", events[1], failing=events[2])
    Bookmark.objects.create(subscriber_name="read-model", kind=Bookmark.Kind.PROJECTION)
    target = uuid.uuid4() if index is None else events[index].event_id

    with pytest.raises(error) as refused:
        dismiss_event_in_reaction(name, target, reason, operator())

    assert refused.value.status == status
    bookmark = Bookmark.objects.get(pk="mailer")
    assert bookmark.cursor == events[1].cursor
    assert bookmark.status == Bookmark.Status.WEDGED
    assert decisions() == []


@pytest.mark.django_db
def test_an_actor_without_the_permission_writes_nothing() -> None:
    events = append_events(2)
    wedged_reaction("mailer", None, failing=events[0])
    with pytest.raises(errors.PermissionDenied):
        dismiss_event_in_reaction("mailer", events[0].event_id, "reason", operator(permitted=False))
    assert Bookmark.objects.get(pk="mailer").cursor == START
    assert decisions() == []


FAIL_DECISIONS = f"""
CREATE FUNCTION test_fail_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stream_id = '{DECISION_STREAM}' THEN RAISE EXCEPTION 'decision append refused'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_fail_decisions BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION test_fail_decisions();
"""
ALLOW_DECISIONS = """
DROP TRIGGER IF EXISTS test_fail_decisions ON events;
DROP FUNCTION IF EXISTS test_fail_decisions();
"""


@pytest.mark.django_db(transaction=True)
def test_when_the_decision_append_fails_the_bookmark_does_not_move() -> None:
    events = wait_until_visible(append_events(3))  # a dismissal refuses an unseen event
    wedged_reaction("mailer", events[0], failing=events[1])
    actor = operator()
    with connection.cursor() as cursor:
        cursor.execute(FAIL_DECISIONS)
    try:
        with pytest.raises(DatabaseError, match="decision append refused"):
            dismiss_event_in_reaction("mailer", events[1].event_id, "poison", actor)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(ALLOW_DECISIONS)

    bookmark = Bookmark.objects.get(pk="mailer")
    assert bookmark.cursor == events[0].cursor
    assert bookmark.status == Bookmark.Status.WEDGED
    assert bookmark.failing_event_id == events[1].event_id
    assert decisions() == []


@pytest.mark.django_db(transaction=True)
def test_a_dismissal_waiting_too_long_for_the_row_lock_is_a_503() -> None:
    events = append_events(2)
    wedged_reaction("mailer", None, failing=events[0])
    actor = operator()
    with raw_connection(autocommit=False) as holder:
        holder.execute(
            "SELECT 1 FROM projection_bookmarks WHERE subscriber_name = 'mailer' FOR UPDATE"
        )
        with pytest.raises(errors.DatabaseUnavailable) as refused:
            dismiss_event_in_reaction("mailer", events[0].event_id, "poison", actor)
        holder.rollback()
    assert refused.value.status == 503
    assert Bookmark.objects.get(pk="mailer").cursor == START
    assert decisions() == []


RECORD_MOVES = """
CREATE TABLE test_bookmark_moves (old_tx bigint, old_pos bigint, new_tx bigint, new_pos bigint);
CREATE FUNCTION test_record_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_bookmark_moves VALUES
        (OLD.last_transaction_id, OLD.last_position, NEW.last_transaction_id, NEW.last_position);
    RETURN NEW;
END $$;
CREATE TRIGGER test_record_move AFTER UPDATE ON projection_bookmarks
    FOR EACH ROW EXECUTE FUNCTION test_record_move();
"""
FORGET_MOVES = """
DROP TRIGGER IF EXISTS test_record_move ON projection_bookmarks;
DROP FUNCTION IF EXISTS test_record_move();
DROP TABLE IF EXISTS test_bookmark_moves;
"""


def _advance_like_a_worker(events, stop: threading.Event) -> None:
    # A worker's compare-and-set: lock the row, move one event forward, commit.
    with raw_connection(autocommit=False) as worker:
        for event in events:
            if stop.is_set():
                break
            row = worker.execute(
                "SELECT last_transaction_id, last_position FROM projection_bookmarks"
                " WHERE subscriber_name = 'mailer' FOR UPDATE"
            ).fetchone()
            assert row is not None
            if Cursor(*row) < event.cursor:
                worker.execute(
                    "UPDATE projection_bookmarks SET last_transaction_id = %s, last_position = %s"
                    " WHERE subscriber_name = 'mailer'",
                    (event.transaction_id, event.position),
                )
            worker.commit()
            time.sleep(0.005)  # let dismissals interleave


@pytest.mark.django_db(transaction=True)
def test_a_dismissal_racing_a_worker_is_serialised_and_never_moves_backward() -> None:
    events = wait_until_visible(append_events(60))
    wedged_reaction("mailer", None, failing=events[0])
    actor = operator()
    with connection.cursor() as cursor:
        cursor.execute(RECORD_MOVES)
    outcomes: list[Any] = []
    stop = threading.Event()

    def dismiss(index: int) -> None:
        try:
            outcomes.append(
                dismiss_event_in_reaction("mailer", events[index].event_id, f"race {index}", actor)
            )
        except errors.ReactionsError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    try:
        worker = threading.Thread(target=_advance_like_a_worker, args=(events, stop))
        dismissals = [threading.Thread(target=dismiss, args=(i,)) for i in (5, 20, 20, 35, 50)]
        worker.start()
        for thread in dismissals:
            thread.start()
        for thread in [*dismissals, worker]:
            thread.join(timeout=60)
        with connection.cursor() as cursor:
            cursor.execute("SELECT old_tx, old_pos, new_tx, new_pos FROM test_bookmark_moves")
            moves = cursor.fetchall()
    finally:
        stop.set()
        with connection.cursor() as cursor:
            cursor.execute(FORGET_MOVES)

    assert moves, "the bookmark never moved"
    for old_tx, old_pos, new_tx, new_pos in moves:
        assert Cursor(new_tx, new_pos) >= Cursor(old_tx, old_pos), "the bookmark moved backward"
    succeeded = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(outcomes) == 5
    assert all(isinstance(outcome, errors.RewindRefused) for outcome in refused)
    recorded = decisions()
    assert sorted(d.event_id for d in recorded) == sorted(r.decision_event_id for r in succeeded)
    assert Bookmark.objects.get(pk="mailer").cursor == events[-1].cursor
