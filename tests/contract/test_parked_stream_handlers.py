"""The operator's acts on a parked stream, through their handlers: dismiss the head
(``dismiss_event_in_reaction`` on a stream-ordered reaction), dismiss the whole stream,
retry it now. Each refusal has its code and changes nothing; the checks run in the
documented order; the whole-stream dismissal is all or nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection

from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from reactions_admin import errors
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.acts.parked_streams.handler import (
    RETRY_STREAM,
    dismiss_parked_stream,
    dismiss_stream_head,
    retry_parked_stream,
)
from reactions_admin.reads.reactions import list_parked_streams
from subscribers.bookmarks import ensure_bookmarks
from subscribers.leases import LeaseKeeper
from subscribers.registry import build_registry
from subscribers.stream_work import parked_streams, stream_rows, work_summary
from subscribers.streams import take_in_and_claim
from tests.contract.conftest import STREAM_JOBS, ParkedWorld
from tests.factories import append, jobs, operator
from tests.stream_invariants import handled_by_stream, handled_count, rows
from tests.subscribers import StreamJobs
from tests.support import bookmark, decisions
from tests.workers import drain

pytestmark = pytest.mark.django_db(transaction=True)

NAME = StreamJobs.name


def state() -> tuple[Any, ...]:
    """What an act could change: the work table, the bookmark, every event."""
    return (
        rows("SELECT * FROM reaction_work ORDER BY id"),
        rows("SELECT * FROM projection_bookmarks ORDER BY subscriber_name"),
        rows("SELECT event_id FROM events ORDER BY position"),
    )


def ids(events: list[Any]) -> list[str]:
    return [str(event.event_id) for event in events]


def run_worker_until(condition: Any, what: str) -> Any:
    return drain(build_registry([STREAM_JOBS]), condition, what)


# -- dismissing the parked head ----------------------------------------------------------------


def test_dismissing_the_parked_head_deletes_its_row_and_the_next_event_runs(
    parked: ParkedWorld,
) -> None:
    intake_before = bookmark(NAME).cursor
    result = dismiss_event_in_reaction(
        NAME, parked.poison.event_id, "  bad payload  ", operator(), via="cli"
    )
    assert (result.event_id, result.ordering, result.stream_id) == (
        parked.poison.event_id, "stream", "bad",
    )  # fmt: skip
    assert result.cursor_before == result.cursor_after == parked.poison.cursor
    assert (result.events_passed_over, result.handled_events_passed_over) == (1, 1)
    [decision] = decisions()
    assert decision.event_id == result.decision_event_id
    assert decision.data["context"] == "ReactionDismissal"
    assert decision.data["choice"] == "EventDismissed"
    assert decision.data["reason"] == "bad payload"
    inputs = decision.data["inputs"]
    cursor = {"transaction_id": parked.poison.transaction_id, "position": parked.poison.position}
    assert {k: inputs[k] for k in ("reaction", "ordering", "stream_id", "event_id",
                                   "events_passed_over", "cursor_before", "cursor_after")} == {
        "reaction": NAME, "ordering": "stream", "stream_id": "bad",
        "event_id": str(parked.poison.event_id), "events_passed_over": 1,
        "cursor_before": cursor, "cursor_after": cursor,
    }  # fmt: skip
    assert decision.metadata["via"] == "cli"
    # The intake point does not move; the row is gone, and the stream is no longer parked.
    assert bookmark(NAME).cursor == intake_before
    assert [r.event_id for r in stream_rows(NAME, "bad")] == [e.event_id for e in parked.behind]
    assert parked_streams(NAME) == []
    # The next waiting event is the head now, and runs; the one behind it follows, in order.
    run_worker_until(lambda: handled_count() == 5, "the events behind the dismissed head")
    assert handled_by_stream()["bad"] == ids([parked.handled, *parked.behind])
    assert StreamJobs.attempts[parked.poison.event_id] == 2  # never run again


def test_dismiss_stream_head_names_the_head_by_its_stream(parked: ParkedWorld) -> None:
    result = dismiss_stream_head(NAME, "bad", "poison", operator(), via="rest")
    assert result.event_id == parked.poison.event_id
    assert len(decisions()) == 1
    with pytest.raises(errors.StreamNotParked):
        dismiss_stream_head(NAME, "good", "poison", operator("other"))


@pytest.fixture
def pending_and_in_flight(parked: ParkedWorld) -> dict[str, Any]:
    """A row taken in but not claimed (stream "pending"), one claimed and running (stream
    "busy"), an event past the intake point, and an event of a type it does not handle."""
    [entry] = build_registry([STREAM_JOBS])
    ensure_bookmarks([entry])
    [noise] = append("bad", "Noise")
    [busy] = jobs("busy", 1)
    _, [claim] = take_in_and_claim(entry, LeaseKeeper("elsewhere"), 1)
    assert claim.event.event_id == busy.event_id
    [pending] = jobs("pending", 1)
    take_in_and_claim(entry, LeaseKeeper("elsewhere"), 0)  # intake only
    [late] = jobs("late", 1)  # never taken in: past the intake point
    return {"busy": busy, "pending": pending, "late": late, "noise": noise}


CODES = {
    errors.NotStreamHead: "not_stream_head",
    errors.EventAlreadyHandled: "event_already_handled",
    errors.EventTypeNotHandled: "event_type_not_handled",
    errors.EventNotReached: "event_not_reached",
    errors.EventInFlight: "event_in_flight",
    errors.StreamNotParked: "stream_not_parked",
}


@pytest.mark.parametrize(
    ("which", "refusal"),
    [
        ("behind", errors.NotStreamHead),
        ("handled", errors.EventAlreadyHandled),
        ("noise", errors.EventTypeNotHandled),
        ("late", errors.EventNotReached),
        ("busy", errors.EventInFlight),
        ("pending", errors.StreamNotParked),
    ],
)
def test_only_the_head_of_a_parked_stream_may_be_dismissed(
    parked: ParkedWorld,
    pending_and_in_flight: dict[str, Any],
    which: str,
    refusal: type[errors.StreamRefused],
) -> None:
    target = {"behind": parked.behind[0], "handled": parked.handled, **pending_and_in_flight}
    before = state()
    with pytest.raises(errors.StreamRefused) as refused:
        dismiss_event_in_reaction(NAME, target[which].event_id, "poison", operator())
    assert type(refused.value) is refusal
    assert refused.value.status == 409
    assert refused.value.code == CODES[refusal]
    assert state() == before
    assert decisions() == []


def test_a_dismissed_head_cannot_be_dismissed_twice(parked: ParkedWorld) -> None:
    dismiss_event_in_reaction(NAME, parked.poison.event_id, "poison", operator())
    with pytest.raises(errors.EventAlreadyHandled):
        dismiss_event_in_reaction(NAME, parked.poison.event_id, "poison", operator("other"))
    assert len(decisions()) == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        # 403 before everything, even an unknown reaction and a blank reason.
        ("unpermitted, unknown reaction, blank reason", "permission_denied"),
        # 503 (the in-memory store) before looking anything up.
        ("memory store, unknown reaction", "event_store_not_durable"),
        # 404 before the reason is read.
        ("unknown reaction, blank reason", "reaction_not_found"),
        ("unknown event, blank reason", "event_not_found"),
        # 400 before the work rows are looked at (a 409 would follow).
        ("not the head, blank reason", "reason_required"),
    ],
)
def test_the_checks_run_in_the_documented_order(
    parked: ParkedWorld, monkeypatch: pytest.MonkeyPatch, case: str, code: str
) -> None:
    user = operator(permitted="unpermitted" not in case)
    name = "nobody" if "unknown reaction" in case else NAME
    event_id = uuid.UUID(int=1) if "unknown event" in case else parked.behind[0].event_id
    if "memory" in case:
        monkeypatch.setattr("reactions_admin.guards.get_event_store", InMemoryEventStore)
    reason = "   " if "blank" in case else "poison"
    before = state()
    with pytest.raises(errors.ReactionsError) as refused:
        dismiss_event_in_reaction(name, event_id, reason, user)
    assert refused.value.code == code
    assert state() == before


# -- dismissing the whole parked stream --------------------------------------------------------


def test_dismissing_a_parked_stream_dismisses_every_event_in_it_one_decision_each(
    parked: ParkedWorld,
) -> None:
    result = dismiss_parked_stream(NAME, "bad", "the run is abandoned", operator(), via="admin")
    dismissed = [parked.poison, *parked.behind]
    assert [r.event_id for r in result.dismissed] == [e.event_id for e in dismissed]
    recorded = decisions()
    assert [d.data["inputs"]["event_id"] for d in recorded] == ids(dismissed)
    for decision, event in zip(recorded, dismissed, strict=True):
        inputs = decision.data["inputs"]
        cursor = {"transaction_id": event.transaction_id, "position": event.position}
        assert (inputs["ordering"], inputs["stream_id"], inputs["events_passed_over"]) == (
            "stream", "bad", 1,
        )  # fmt: skip
        assert inputs["cursor_before"] == inputs["cursor_after"] == cursor
        assert inputs["whole_stream"] is True
        assert decision.data["reason"] == "the run is abandoned"
    assert len({d.metadata["correlation_id"] for d in recorded}) == 1  # one act
    assert stream_rows(NAME, "bad") == []
    assert parked_streams(NAME) == []
    # The stream is no longer parked: its next event runs.
    [later] = jobs("bad", 1)
    run_worker_until(lambda: handled_count() == 4, "a later event of the dismissed stream")
    assert handled_by_stream()["bad"] == ids([parked.handled, later])


def test_dismissing_a_parked_stream_is_all_or_nothing(parked: ParkedWorld) -> None:
    """The append of the third decision fails (a real database error): no row is deleted
    and no decision is recorded."""
    third = str(parked.behind[1].event_id)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION refuse_third_decision() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.data -> 'inputs' ->> 'event_id' = %s THEN
                    RAISE EXCEPTION 'refused by the test';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_third_decision BEFORE INSERT ON events
                FOR EACH ROW EXECUTE FUNCTION refuse_third_decision();
            """.replace("%s", f"'{third}'")
        )
    try:
        before = state()
        with pytest.raises(DatabaseError, match="refused by the test"):
            dismiss_parked_stream(NAME, "bad", "the run is abandoned", operator())
        assert state() == before
        assert decisions() == []
        assert [p.stream_id for p in parked_streams(NAME)] == ["bad"]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER refuse_third_decision ON events;"
                " DROP FUNCTION refuse_third_decision();"
            )


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unpermitted", "permission_denied"),
        ("unknown reaction", "reaction_not_found"),
        ("blank reason", "reason_required"),
        ("stream without work", "stream_not_parked"),
        ("stream not parked", "stream_not_parked"),
    ],
)
def test_dismissing_a_stream_refuses_with_a_code_and_changes_nothing(
    parked: ParkedWorld, pending_and_in_flight: dict[str, Any], case: str, code: str
) -> None:
    user = operator(permitted=case != "unpermitted")
    name = "nobody" if case == "unknown reaction" else NAME
    stream = {"stream without work": "good", "stream not parked": "pending"}.get(case, "bad")
    before = state()
    with pytest.raises(errors.ReactionsError) as refused:
        dismiss_parked_stream(name, stream, "   " if "blank" in case else "why", user)
    assert refused.value.code == code
    assert state() == before
    assert decisions() == []


# -- retrying a parked stream now --------------------------------------------------------------


def test_retry_needs_the_operate_permission(parked: ParkedWorld) -> None:
    before = state()
    with pytest.raises(errors.PermissionDenied, match="operate_subscriber"):
        retry_parked_stream(NAME, "bad", operator())  # may dismiss, may not operate
    assert state() == before


def test_a_retried_stream_runs_its_head_once_more_and_parks_again_if_it_fails(
    parked: ParkedWorld,
) -> None:
    result = retry_parked_stream(
        NAME, "bad", operator(operates=True, permitted=False), reason="deployed a fix"
    )
    assert (result.event_id, result.attempts, result.waiting) == (parked.poison.event_id, 2, 2)
    [head, *_] = stream_rows(NAME, "bad")
    assert (head.parked_at, head.next_retry_at, head.attempts) == (None, None, 2)
    [decision] = PostgresEventStore().read_stream(RETRY_STREAM)
    assert (decision.data["context"], decision.data["choice"]) == (
        "ParkedStreamRetry", "StreamRetried",
    )  # fmt: skip
    assert decision.data["inputs"]["stream_id"] == "bad"
    assert decision.data["reason"] == "deployed a fix"
    # One attempt, no reset: the poison fails again and parks the stream at once.
    run_worker_until(
        lambda: StreamJobs.attempts[parked.poison.event_id] == 3 and parked_streams(NAME),
        "the retried head to fail and park again",
    )
    [again] = parked_streams(NAME)
    assert (again.event_id, again.attempts, again.waiting) == (parked.poison.event_id, 3, 2)


def test_a_failed_retry_keeps_when_the_stream_first_parked(parked: ParkedWorld) -> None:
    [first] = parked_streams(NAME)
    assert first.first_parked_at == first.parked_at
    retry_parked_stream(NAME, "bad", operator(operates=True, permitted=False))
    run_worker_until(
        lambda: StreamJobs.attempts[parked.poison.event_id] == 3 and parked_streams(NAME),
        "the retried head to fail and park again",
    )
    [again] = parked_streams(NAME)
    # parked_at restarts with the new failure; the first parking is kept, and shown.
    assert again.parked_at > first.parked_at
    assert again.first_parked_at == first.first_parked_at
    [listed] = list_parked_streams(NAME, operator("reader", permitted=False))
    assert (listed["first_parked_at"], listed["parked_at"]) == (
        first.first_parked_at.isoformat(), again.parked_at.isoformat(),
    )  # fmt: skip
    # The oldest-parked age counts from the first parking.
    assert work_summary(NAME).oldest_parked == first.first_parked_at


def test_a_retried_stream_that_succeeds_runs_the_waiting_events_in_order(
    settings: Any, transactional_db: None
) -> None:
    settings.EVENTDESK = {
        **settings.EVENTDESK, "subscribers": [STREAM_JOBS], "max_attempts": 2,
        "retry_base_seconds": 0.01, "retry_cap_seconds": 0.02,
    }  # fmt: skip
    StreamJobs.reset()
    flaky = jobs("flaky", 1, fail=2) + jobs("flaky", 2)
    run_worker_until(lambda: parked_streams(NAME), "the flaky stream parked")
    with pytest.raises(errors.StreamNotParked):
        retry_parked_stream(NAME, "other", operator(operates=True))
    retry_parked_stream(NAME, "flaky", operator("ops", operates=True))
    run_worker_until(lambda: handled_count() == 3, "the flaky stream, after the retry")
    assert handled_by_stream()["flaky"] == ids(flaky)
    assert StreamJobs.attempts[flaky[0].event_id] == 3


def test_listing_parked_streams(parked: ParkedWorld) -> None:
    [listed] = list_parked_streams(NAME, operator())
    assert (listed["stream_id"], listed["event_id"], listed["attempts"], listed["waiting"]) == (
        "bad", str(parked.poison.event_id), 2, 2,
    )  # fmt: skip
    assert "RuntimeError" in listed["last_error"]
    with pytest.raises(errors.ReactionNotFound):
        list_parked_streams("nobody", operator("other"))
    with pytest.raises(errors.PermissionDenied):
        list_parked_streams(NAME, User.objects.create_user("bare", password="x"))
