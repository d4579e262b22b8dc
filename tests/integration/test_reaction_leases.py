"""Reaction leases: a token per claim, renewed while ``handle`` runs, and a handle timeout.

Two live workers and a ``handle`` longer than the lease used to livelock (each worker
took the lease over from the other and threw its result away); now the lease is
renewed, so each event is handled once and answered once.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import NewEvent, RecordedEvent, StreamAppend
from eventstore.models import Event
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from subscribers import sql
from subscribers.bookmarks import ensure_bookmarks
from subscribers.leases import LeaseKeeper
from subscribers.models import Bookmark
from subscribers.reactions import claim_lease
from subscribers.registry import build_registry
from subscribers.settlement import ReactionStep, settle
from subscribers.worker import Worker
from tests.factories import append, operator
from tests.subscribers import applied, record
from tests.support import bookmark, decisions, wait_for
from tests.workers import drain, running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(2999, 1, 1, tzinfo=UTC)

#: How long the slow reaction's handle works: longer than the 1 s lease.
HANDLE_SECONDS = 1.6
#: Five events take 8 s of handling one after the other; the rest is slack for a busy machine.
DEADLINE_SECONDS = 90.0


class SlowAnswer:
    """Answers each Question after ``HANDLE_SECONDS`` of work; notes every call."""

    name = "test.slow_answer"
    event_types = ("Question",)
    batch_size = 1

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        record(self.name, event)  # one row per call: how often handle ran for the event
        time.sleep(HANDLE_SECONDS)  # the work itself (an LLM round-trip, say)
        answer = NewEvent("Answered", {"question": str(event.event_id)})
        # No expected version: a second answer to the same question would land too.
        return [StreamAppend("answers", [answer])]


def answers() -> Counter[str]:
    """How many times each question was answered in the store."""
    return Counter(
        e.data["question"] for e in Event.objects.filter(event_type="Answered").order_by("position")
    )


def handle_calls(name: str) -> Counter[str]:
    return Counter(str(row[0]) for row in applied(name))


@override_settings(
    EVENTDESK={"lease_seconds": 1, "poll_interval_seconds": 0.2, "retry_base_seconds": 0.05}
)
def test_two_workers_with_a_handle_longer_than_the_lease_answer_each_event_once() -> None:
    questions = [str(append(f"question-{n}", "Question")[0].event_id) for n in range(5)]
    subs = build_registry([SlowAnswer()])
    with running_worker(subs), running_worker(subs):
        wait_for(
            lambda: set(answers()) == set(questions),
            timeout=DEADLINE_SECONDS,
            what="every question to be answered",
        )
        wait_for(lambda: bookmark(SlowAnswer.name).lease_owner == "", what="the last settle")
    assert answers() == Counter({q: 1 for q in questions})  # exactly once in the store
    assert handle_calls(SlowAnswer.name) == Counter({q: 1 for q in questions})  # no rerun
    mark = bookmark(SlowAnswer.name)
    assert (mark.status, mark.attempts, mark.last_error) == ("active", 0, "")
    print(
        f"\nFIGURES leases: 2 workers, lease 1s, handle {HANDLE_SECONDS}s, {len(questions)}"
        f" events, {sum(handle_calls(SlowAnswer.name).values())} handle calls,"
        f" {sum(answers().values())} answers"
    )


def answer_to(event: RecordedEvent) -> list[StreamAppend]:
    return [StreamAppend("answers", [NewEvent("Answered", {"question": str(event.event_id)})])]


def assert_healthy_and_unleased(name: str) -> None:
    """The bookmark of ``name`` is active again: no attempts, no error, no lease held."""
    mark = bookmark(name)
    assert (mark.status, mark.attempts, mark.last_error, mark.lease_owner) == ("active", 0, "", "")


def bookmark_attempts(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attempts FROM projection_bookmarks WHERE subscriber_name = %s", [name]
        )
        row = cursor.fetchone()
    return int(row[0]) if row else -1


class Stuck:
    """Hangs in ``handle`` until the test lets it go, then returns an answer (too late)."""

    name = "test.stuck"
    event_types = ("Question",)
    batch_size = 1

    let_go = threading.Event()
    returned: list[str] = []
    attempts_seen: list[int] = []

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        record(self.name, event)
        self.attempts_seen.append(bookmark_attempts(self.name))
        self.let_go.wait(60)
        self.returned.append(str(event.event_id))
        return answer_to(event)


class StuckWithItsOwnTimeout(Stuck):
    name = "test.stuck_own_timeout"
    handle_timeout_seconds = 0.3


@pytest.mark.parametrize(
    ("reaction", "timeout_option"),
    [(Stuck, {"handle_timeout_seconds": 0.3}), (StuckWithItsOwnTimeout, {})],
    ids=["option", "reaction-attribute"],
)
def test_a_handle_past_its_timeout_is_a_failed_attempt_and_its_late_result_never_lands(
    reaction: type[Stuck], timeout_option: dict[str, float]
) -> None:
    Stuck.let_go.clear()
    Stuck.returned.clear()
    Stuck.attempts_seen.clear()
    question = append("question", "Question")[0]
    subs = build_registry([reaction()])
    settings = {"max_attempts": 3, "retry_base_seconds": 0.05, "poll_interval_seconds": 0.2}
    try:
        with override_settings(EVENTDESK={**settings, **timeout_option}), running_worker(subs):
            wait_for(lambda: bookmark(reaction.name).status == "wedged", what="the wedge")
            # Every abandoned handle now returns its result, late.
            Stuck.let_go.set()
            wait_for(lambda: len(Stuck.returned) == 3, what="the late results")
            # One more pass of the loop: still nothing to do (wedged), nothing lands.
            Worker(subs).run_once()
    finally:
        Stuck.let_go.set()
    mark = bookmark(reaction.name)
    assert (mark.status, mark.attempts, mark.failing_event_id) == ("wedged", 3, question.event_id)
    assert mark.last_error == "HandleTimeout: handle ran past 0.3s"
    assert "handle was abandoned here, still running" in mark.last_traceback
    assert "self.let_go.wait(60)" in mark.last_traceback  # where it was stuck
    assert mark.lease_owner == ""
    assert Stuck.attempts_seen == [0, 1, 2]  # each timeout counted as an attempt
    assert handle_calls(reaction.name) == Counter({str(question.event_id): 3})
    assert answers() == Counter()  # no late result landed


def test_a_late_result_of_an_earlier_claim_by_the_same_worker_is_refused() -> None:
    question = append("question", "Question")[0]
    subs = build_registry([SlowAnswer()])
    entry = subs[SlowAnswer.name]
    ensure_bookmarks(subs)
    keeper = LeaseKeeper("host:1:same-worker")

    first = claim_lease(entry, keeper.new_token())
    assert first is not None
    # A live lease holds off every other claim, the same worker's included.
    assert claim_lease(entry, keeper.new_token()) is None
    Bookmark.objects.filter(subscriber_name=entry.name).update(lease_expires_at=PAST)
    second = claim_lease(entry, keeper.new_token())  # the lease expired: the same worker again
    assert second is not None
    (claim1, batch1), (claim2, batch2) = first, second
    assert claim1.token != claim2.token
    assert claim1.state == claim2.state
    assert batch1.events == batch2.events == [question]

    with connection.cursor() as cursor:  # the statements themselves match the token
        cas: dict[str, Any] = {
            "name": entry.name,
            "tx": claim1.state.cursor[0],
            "pos": claim1.state.cursor[1],
        }
        cas |= {"to_tx": question.transaction_id, "to_pos": question.position}
        cursor.execute(sql.COMPARE_AND_SET, {**cas, "token": claim1.token})
        assert cursor.fetchone() is None
        cursor.execute(sql.RELEASE_LEASE, {"name": entry.name, "token": claim1.token})
        assert cursor.rowcount == 0
        cursor.execute(sql.RENEW_LEASES, {"tokens": [claim1.token], "lease": 60})
        assert cursor.fetchall() == []
    assert bookmark(entry.name).lease_owner == claim2.token

    def step(claim: Any, batch: Any) -> ReactionStep:
        to = batch.end(claim.state.cursor, entry.batch_size)
        events = tuple(batch.events)
        return ReactionStep(claim, events, 1, to, tuple(answer_to(question)), None, False)

    late = settle(entry, step(claim1, batch1))  # the earlier claim's result comes back late
    assert late.discarded
    assert late.advanced_to is None
    assert answers() == Counter()
    mark = bookmark(entry.name)
    assert (mark.cursor, mark.lease_owner, mark.attempts) == (claim1.state.cursor, claim2.token, 1)
    assert mark.last_error.startswith(f"LeaseLost: the lease {claim1.token} was lost")

    current = settle(entry, step(claim2, batch2))  # the standing claim lands
    assert current.advanced_to == question.cursor
    assert answers() == Counter({str(question.event_id): 1})
    assert_healthy_and_unleased(entry.name)


class LosesItsLease:
    """The first call finds its lease taken over meanwhile (as after a missed renewal)."""

    name = "test.loses_lease"
    event_types = ("Question",)
    batch_size = 1
    calls = 0

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        record(self.name, event)
        type(self).calls += 1
        if self.calls == 1:
            Bookmark.objects.filter(subscriber_name=self.name).update(
                lease_owner="elsewhere:9:beef#1", lease_expires_at=FUTURE
            )
        return answer_to(event)


@override_settings(EVENTDESK={"retry_base_seconds": 0.05, "poll_interval_seconds": 0.2})
def test_a_result_discarded_for_a_lost_lease_is_a_failed_attempt_then_retried() -> None:
    LosesItsLease.calls = 0
    question = append("question", "Question")[0]
    subs = build_registry([LosesItsLease()])
    Worker(subs).run_once()
    mark = bookmark(LosesItsLease.name)
    assert (mark.status, mark.attempts, mark.failing_event_id) == (
        "retrying", 1, question.event_id,
    )  # fmt: skip
    assert "LeaseLost" in mark.last_error
    assert "is now leased to elsewhere:9:beef#1" in mark.last_error
    assert mark.lease_owner == "elsewhere:9:beef#1"  # the new holder's lease is left alone
    assert mark.next_retry_at is not None
    assert answers() == Counter()
    # The other holder goes away (its lease runs out); the retry answers the question.
    Bookmark.objects.filter(subscriber_name=LosesItsLease.name).update(lease_expires_at=PAST)
    drain(subs, lambda: answers(), "the retry")
    assert answers() == Counter({str(question.event_id): 1})
    assert handle_calls(LosesItsLease.name) == Counter({str(question.event_id): 2})
    assert_healthy_and_unleased(LosesItsLease.name)


class PausedAndLosesItsLease:
    """While ``handle`` runs, an operator pauses the reaction and its lease is taken over."""

    name = "test.paused_loses_lease"
    event_types = ("Question",)
    batch_size = 1

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        record(self.name, event)
        Bookmark.objects.filter(subscriber_name=self.name).update(
            status="paused", paused_from="active", lease_owner="elsewhere:9:beef#2",
            lease_expires_at=FUTURE,
        )  # fmt: skip
        return answer_to(event)


def test_a_lost_lease_failure_during_a_pause_is_what_resume_brings_back() -> None:
    question = append("question", "Question")[0]
    subs = build_registry([PausedAndLosesItsLease()])
    Worker(subs).run_once()
    mark = bookmark(PausedAndLosesItsLease.name)
    # The pause stays; the failed attempt is what a resume returns to (not "active",
    # which would skip the backoff), exactly as for any other failure during a pause.
    assert (mark.status, mark.paused_from, mark.attempts, mark.failing_event_id) == (
        "paused", "retrying", 1, question.event_id,
    )  # fmt: skip
    assert "LeaseLost" in mark.last_error
    assert mark.lease_owner == "elsewhere:9:beef#2"  # the new holder's lease is left alone
    assert answers() == Counter()


class DismissedWhileHandled:
    """An operator dismisses the very event being handled, while ``handle`` runs."""

    name = "test.dismissed_meanwhile"
    event_types = ("Question",)
    batch_size = 1

    def handle(self, event: RecordedEvent) -> list[StreamAppend]:
        record(self.name, event)
        dismiss_event_in_reaction(self.name, event.event_id, "poison, says ops", operator())
        return answer_to(event)


def test_a_result_discarded_after_a_dismissal_is_not_a_failure() -> None:
    question = append("question", "Question")[0]
    subs = build_registry([DismissedWhileHandled()])
    Worker(subs).run_once()
    assert answers() == Counter()  # discarded: the operator moved the bookmark past it
    mark = bookmark(DismissedWhileHandled.name)
    assert mark.cursor == question.cursor
    assert (mark.status, mark.attempts, mark.last_error, mark.failing_event_id) == (
        "active", 0, "", None,
    )  # fmt: skip
    assert len(decisions()) == 1
    assert handle_calls(DismissedWhileHandled.name) == Counter({str(question.event_id): 1})


_examples = itertools.count()
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("claim"), st.integers(0, 1)),  # by worker 0 or 1
        st.tuples(st.just("time passes"), st.just(0)),  # leases and retry delays run out
        st.tuples(st.just("settle"), st.integers(0, 9)),  # a claim's result comes back
    ),
    max_size=16,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=_operations)
def test_only_the_standing_claim_lands_whatever_the_interleaving(
    operations: list[tuple[str, int]],
) -> None:
    """Claims by two workers, expiries and late results in any order: a result lands
    exactly when its claim still stands (same cursor, same token), never twice, and a
    claim is only granted when no live lease stands."""

    class Quizzer:
        name = f"test.quizzer_{next(_examples)}"
        event_types = ("Quiz",)
        batch_size = 1

        def handle(self, event: RecordedEvent) -> None:  # never called: steps are built
            raise AssertionError

    append("quiz", "Quiz", "Quiz", "Quiz")
    subs = build_registry([Quizzer()])
    entry = subs[Quizzer.name]
    ensure_bookmarks(subs)
    keepers = [LeaseKeeper("host:1:w0"), LeaseKeeper("host:2:w1")]
    claims: list[Any] = []
    row_token, row_cursor, live, landed = "", bookmark(entry.name).cursor, False, 0
    stream = f"answers-{entry.name}"
    for operation, arg in operations:
        if operation == "claim":
            claimed = claim_lease(entry, keepers[arg].new_token())
            if claimed is not None:
                assert not live, "a claim was granted over a live lease"
                claims.append(claimed)
                row_token, live = claimed[0].token, True
        elif operation == "time passes":
            Bookmark.objects.filter(subscriber_name=entry.name).update(
                lease_expires_at=PAST, next_retry_at=None, status="active"
            )
            live = False
        elif claims:
            claim, batch = claims[arg % len(claims)]
            event = batch.events[0]
            answer = NewEvent("Answered", {"question": str(event.event_id)})
            step = ReactionStep(
                claim, (event,), 1, event.cursor, (StreamAppend(stream, [answer]),), None, False
            )
            stands = claim.token == row_token and claim.state.cursor == row_cursor
            outcome = settle(entry, step)
            assert (outcome.advanced_to is not None) == stands
            if stands:
                row_token, row_cursor, live, landed = "", event.cursor, False, landed + 1
    assert bookmark(entry.name).cursor == row_cursor
    answered = Counter(
        e.data["question"] for e in Event.objects.filter(stream_id=stream, event_type="Answered")
    )
    assert sum(answered.values()) == landed
    assert set(answered.values()) <= {1}  # no question answered twice
