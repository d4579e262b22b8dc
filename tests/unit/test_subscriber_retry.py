"""The retry decision and a batch's end: pure functions of the worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from eventstore.types import Cursor, RecordedEvent
from subscribers.bookmarks import Batch
from subscribers.retry import RetryDecision, decide_retry

A, B = uuid.uuid4(), uuid.uuid4()


def decide(
    previous_id: uuid.UUID | None,
    previous_attempts: int,
    event_id: uuid.UUID = A,
    max_attempts: int = 5,
) -> RetryDecision:
    return decide_retry(
        failing_event_id=event_id,
        previous_failing_event_id=previous_id,
        previous_attempts=previous_attempts,
        max_attempts=max_attempts,
        base_seconds=1.0,
        cap_seconds=5.0,
    )


def test_backoff_doubles_up_to_the_cap_then_wedges() -> None:
    delays, attempts, decision = [], 0, None
    for _ in range(5):
        decision = decide(A if attempts else None, attempts)
        attempts = decision.attempts
        delays.append(decision.delay_seconds)
    assert delays == [1.0, 2.0, 4.0, 5.0, None]
    assert decision is not None
    assert decision.wedged
    assert decision.status == "wedged"


def test_a_new_failing_event_starts_counting_again() -> None:
    decision = decide(B, 4)
    assert (decision.attempts, decision.wedged, decision.status) == (1, False, "retrying")


def test_one_attempt_allowed_wedges_at_once() -> None:
    assert decide(None, 0, max_attempts=1).wedged


def event(tx: int, pos: int) -> RecordedEvent:
    return RecordedEvent(pos, tx, uuid.uuid4(), "s", pos, "E", {}, {}, datetime.now(UTC))


def test_a_full_batch_ends_at_its_last_event_a_short_one_at_the_head() -> None:
    head = Cursor(9, 90)
    events = [event(5, 50), event(6, 60)]
    assert Batch(events, head).end(Cursor(1, 1), batch_size=2) == Cursor(6, 60)
    assert Batch(events, head).end(Cursor(1, 1), batch_size=3) == head
    assert Batch([], head).end(Cursor(1, 1), batch_size=3) == head
    # Never backwards, even if the head is behind the bookmark (a rebuilt store).
    assert Batch([], Cursor(0, 0)).end(Cursor(1, 1), batch_size=3) == Cursor(1, 1)
