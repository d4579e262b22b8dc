"""Stream-ordered reactions: order within a stream, concurrency across streams, parking."""

from __future__ import annotations

import pytest
from django.test import override_settings

from eventstore.postgres import PostgresEventStore
from subscribers.bookmarks import ensure_bookmarks
from subscribers.leases import LeaseKeeper
from subscribers.models import Bookmark, ReactionWork
from subscribers.registry import build_registry
from subscribers.stream_work import parked_streams, stream_rows, work_summary
from subscribers.streams import (
    OrderingSwitchRefused,
    run_handle,
    settle,
    take_in_and_claim,
)
from subscribers.worker import Worker
from tests.factories import append, jobs
from tests.stream_invariants import (
    check_streams,
    handled_by_stream,
    handled_count,
    intake_point,
    jobs_by_stream,
    rows,
    waiting_by_stream,
)
from tests.subscribers import EveryEvent, StreamJobs
from tests.support import wait_until_visible
from tests.workers import drain, stream_reaction

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"retry_base_seconds": 0.01, "retry_cap_seconds": 0.02, "max_attempts": 3}
NAME = StreamJobs.name


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    StreamJobs.reset()
    EveryEvent.seen.clear()


def head() -> tuple[int, int]:
    at = PostgresEventStore().head()
    return (at.transaction_id, at.position)


def test_each_stream_is_handled_in_order_once_with_streams_at_once() -> None:
    for n in range(12):
        jobs(f"run-{n}", 3, sleep=0.05)
    append("other", "Noise")  # not wanted: the intake point moves past it
    subs = stream_reaction(concurrency=4)
    drain(subs, lambda: handled_count() == 36, what="every job answered")
    check_streams(NAME)
    assert StreamJobs.overlaps == []  # never two calls on one stream at once
    assert 1 < StreamJobs.most_at_once <= 4
    assert sorted(StreamJobs.calls) == sorted(StreamJobs.attempts)  # once each
    assert ReactionWork.objects.count() == 0
    drain(subs, lambda: intake_point(NAME) == head(), what="intake at the head")


@override_settings(EVENTDESK=FAST)
def test_a_poison_event_parks_its_stream_and_every_other_stream_goes_on() -> None:
    first = jobs("bad", 1)
    poison = jobs("bad", 1, poison=True)
    behind = jobs("bad", 2)
    for n in range(5):
        jobs(f"good-{n}", 2)
    subs = stream_reaction(concurrency=3)
    drain(subs, lambda: parked_streams(NAME), what="the bad stream parked")
    drain(subs, lambda: handled_count() == 11, what="every other job")
    check_streams(NAME)
    assert handled_by_stream()["bad"] == [str(first[0].event_id)]
    assert waiting_by_stream(NAME)["bad"] == [str(e.event_id) for e in poison + behind]
    [parked] = parked_streams(NAME)
    assert (parked.stream_id, parked.event_id, parked.attempts, parked.waiting) == (
        "bad", poison[0].event_id, 3, 2,
    )  # fmt: skip
    assert "RuntimeError" in parked.last_error
    assert StreamJobs.attempts[poison[0].event_id] == 3  # then never again
    assert all(StreamJobs.attempts[e.event_id] == 0 for e in behind)
    [head_row, *rest] = stream_rows(NAME, "bad")
    assert head_row.parked_at is not None
    assert [r.parked_at for r in rest] == [None, None]
    summary = work_summary(NAME)
    assert (summary.unfinished, summary.parked_streams, summary.open_rows) == (3, 1, 0)
    # New events keep being taken in past the parked stream, and handled.
    later = jobs("good-0", 1) + jobs("bad", 1)
    drain(subs, lambda: handled_count() == 12, what="a later job of another stream")
    assert waiting_by_stream(NAME)["bad"][-1] == str(later[1].event_id)
    assert intake_point(NAME) == head()
    check_streams(NAME)


@override_settings(EVENTDESK={**FAST, "max_attempts": 5})
def test_a_failing_event_is_retried_with_backoff_and_then_handled_once() -> None:
    flaky = jobs("flaky", 1, fail=2) + jobs("flaky", 1)
    drain(stream_reaction(), lambda: handled_count() == 2, what="the flaky stream")
    assert StreamJobs.attempts[flaky[0].event_id] == 3
    assert handled_by_stream()["flaky"] == [str(e.event_id) for e in flaky]
    assert ReactionWork.objects.count() == 0


def test_intake_pauses_at_the_limit_and_rows_behind_a_parked_stream_do_not_count() -> None:
    wait_until_visible(jobs("p", 6) + jobs("q", 1))  # the intake reads under the horizon
    [entry] = stream_reaction(intake_limit=3)
    ensure_bookmarks([entry])
    tokens = LeaseKeeper("test")
    intake, _ = take_in_and_claim(entry, tokens, 0)
    assert (intake.taken, intake.paused) == (3, False)
    intake, _ = take_in_and_claim(entry, tokens, 0)
    assert (intake.taken, intake.paused) == (0, True)
    assert Bookmark.objects.get(subscriber_name=NAME).intake_paused_at is not None
    # Park stream p (as the attempts running out would): its rows stop counting, so its
    # later events and q's are taken in although the table then holds 7 rows.
    head_row = ReactionWork.objects.order_by("transaction_id", "position").first()
    assert head_row is not None
    ReactionWork.objects.filter(pk=head_row.pk).update(parked_at="2026-01-01T00:00:00Z")
    intake, _ = take_in_and_claim(entry, tokens, 0)
    assert (intake.taken, intake.paused) == (3, False)
    assert Bookmark.objects.get(subscriber_name=NAME).intake_paused_at is None
    intake, _ = take_in_and_claim(entry, tokens, 0)
    assert (intake.taken, intake.paused) == (1, False)
    assert ReactionWork.objects.count() == 7
    assert intake_point(NAME) == head()
    assert work_summary(NAME).open_rows == 1


def test_a_claim_never_exceeds_concurrency_over_competing_workers() -> None:
    wait_until_visible([event for n in range(10) for event in jobs(f"s-{n}", 2)])
    [entry] = stream_reaction(concurrency=3)
    ensure_bookmarks([entry])
    first, second = LeaseKeeper("w1"), LeaseKeeper("w2")
    _, claimed_1 = take_in_and_claim(entry, first, 10)
    _, claimed_2 = take_in_and_claim(entry, second, 10)
    assert (len(claimed_1), len(claimed_2)) == (3, 0)
    assert len({c.event.stream_id for c in claimed_1}) == 3  # one per stream
    # An expired lease does not count: its row may be claimed again, under a new token.
    ReactionWork.objects.filter(lease_token=claimed_1[0].token).update(
        lease_expires_at="2000-01-01T00:00:00Z"
    )
    _, again = take_in_and_claim(entry, second, 10)
    assert [c.event.event_id for c in again] == [claimed_1[0].event.event_id]
    assert again[0].token != claimed_1[0].token


def test_a_result_settled_under_a_lost_claim_is_discarded() -> None:
    wait_until_visible(jobs("s", 1))
    [entry] = stream_reaction()
    ensure_bookmarks([entry])
    _, [old] = take_in_and_claim(entry, LeaseKeeper("w1"), 1)
    ReactionWork.objects.update(lease_expires_at="2000-01-01T00:00:00Z")  # w1 stalled
    _, [new] = take_in_and_claim(entry, LeaseKeeper("w2"), 1)
    late = settle(entry, run_handle(entry, old))
    assert (late.lost, late.handled) == (True, False)
    assert handled_count() == 0
    assert settle(entry, run_handle(entry, new)).handled
    assert handled_count() == 1
    assert ReactionWork.objects.count() == 0


def test_event_types_none_takes_in_decisions_and_everything_else() -> None:
    jobs("run-1", 2)
    append("decisions-x", "DecisionRegistered")
    subs = build_registry([EveryEvent()])
    drain(subs, lambda: handled_count() == 2 and intake_point("test.streams_all") == head())
    assert ("DecisionRegistered", "decisions-x") in EveryEvent.seen
    assert ReactionWork.objects.count() == 0
    assert handled_by_stream()["run-1"] == jobs_by_stream()["run-1"]


def test_switching_global_to_stream_keeps_the_cursor_as_the_intake_point() -> None:
    old = jobs("a", 2)
    mark = Bookmark.objects.create(
        subscriber_name=NAME, kind="reaction", status="wedged", attempts=5,
        last_transaction_id=old[0].transaction_id, last_position=old[0].position,
    )  # fmt: skip
    new = jobs("a", 1)
    drain(stream_reaction(), lambda: handled_count() == 2)
    # The first job was behind the cursor (done in global mode): not handled again.
    assert handled_by_stream()["a"] == [str(old[1].event_id), str(new[0].event_id)]
    mark.refresh_from_db()
    assert (mark.status, mark.attempts) == ("active", 0)


@override_settings(EVENTDESK=FAST)
def test_switching_stream_to_global_with_work_left_is_refused_at_start() -> None:
    jobs("bad", 1, poison=True)
    drain(stream_reaction(), lambda: parked_streams(NAME))
    as_global = stream_reaction(ordering="global", concurrency=1)
    with pytest.raises(OrderingSwitchRefused, match="ordering = 'stream'"):
        Worker(as_global).run_once()
    with pytest.raises(OrderingSwitchRefused):
        Worker(as_global).start()
    assert rows("SELECT count(*) FROM reaction_work")[0][0] == 1
