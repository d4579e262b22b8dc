"""Stream-ordered claims under the worker's one lease mechanism: the renewer thread keeps a
long ``handle``'s lease, and a ``handle`` past the reaction's own timeout fails its attempt."""

from __future__ import annotations

import threading
import time
import uuid
from typing import ClassVar

import pytest
from django.test import override_settings

from eventstore import RecordedEvent, StreamAppend
from subscribers.stream_work import parked_streams
from subscribers.worker import Worker
from tests.factories import jobs
from tests.stream_invariants import check_streams, handled_by_stream, handled_count, rows
from tests.subscribers import StreamJobs, handled
from tests.support import raw_connection, wait_for
from tests.workers import running_worker, stream_reaction

pytestmark = pytest.mark.django_db(transaction=True)

NAME = StreamJobs.name
#: Longer than the 1 s lease: without a renewal, the lease runs out while handle works.
HANDLE_SECONDS = 1.6
LEASE_SECONDS = 1.0


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    StreamJobs.reset()


def expired_claims() -> int:
    """Claimed rows whose lease has run out (another worker could claim them again)."""
    query = (
        "SELECT count(*) FROM reaction_work WHERE lease_token <> '' AND lease_expires_at <= now()"
    )
    return int(rows(query)[0][0])


@override_settings(
    EVENTDESK={
        "lease_seconds": LEASE_SECONDS,
        "poll_interval_seconds": 0.2,
        "retry_base_seconds": 0.05,
    }
)
def test_a_stream_handle_longer_than_the_lease_keeps_it_through_the_workers_renewer() -> None:
    for n in range(6):
        jobs(f"run-{n}", 2, sleep=HANDLE_SECONDS)
    subs = stream_reaction(concurrency=4)
    blocker = raw_connection(autocommit=False)
    try:
        with running_worker(subs), running_worker(subs):
            wait_for(lambda: StreamJobs.running >= 2, what="handle calls running")
            # Someone else holds the bookmark row (an operator's dismissal, a slow intake
            # elsewhere): both loop threads wait for it at their next claim. The leases
            # of the handles running now must not depend on those threads.
            blocker.execute(
                "SELECT 1 FROM projection_bookmarks WHERE subscriber_name = %s FOR UPDATE",
                [NAME],
            )
            locked_at = time.monotonic()
            wait_for(
                lambda: (
                    StreamJobs.running == 0 and time.monotonic() > locked_at + 2 * LEASE_SECONDS
                ),
                what="the running handles to return, two leases after the lock",
            )
            claimed = int(rows("SELECT count(*) FROM reaction_work WHERE lease_token <> ''")[0][0])
            assert claimed >= 2
            assert expired_claims() == 0  # renewed while the loops were blocked
            blocker.rollback()
            wait_for(lambda: handled_count() == 12, timeout=90, what="every job handled")
            wait_for(lambda: not rows("SELECT 1 FROM reaction_work"), what="the last settle")
    finally:
        blocker.close()
    check_streams(NAME)  # per-stream order, nothing doubled, nothing passed over
    assert set(StreamJobs.attempts.values()) == {1}  # handle ran once per event
    assert len(StreamJobs.attempts) == 12
    print(
        f"\nFIGURES stream leases: 2 workers, lease {LEASE_SECONDS:g}s, handle"
        f" {HANDLE_SECONDS}s, 12 events over 6 streams, {len(StreamJobs.calls)} handle calls,"
        f" {handled_count()} answers"
    )


class StuckJobs(StreamJobs):
    """A job with ``stuck`` hangs in ``handle`` until the test lets it go; its reaction
    declares its own ``handle_timeout_seconds`` (the option stays at its default)."""

    name = "test.streams_stuck"
    handle_timeout_seconds = 0.3
    let_go: ClassVar[threading.Event] = threading.Event()
    returned: ClassVar[list[uuid.UUID]] = []

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        if not event.data.get("stuck"):
            return super().handle(event)
        with StreamJobs.lock:
            StreamJobs.attempts[event.event_id] += 1
        self.let_go.wait(60)
        self.returned.append(event.event_id)
        return [StreamAppend(f"done-{event.stream_id}", [handled(event)])]


@override_settings(
    EVENTDESK={
        "max_attempts": 3,
        "retry_base_seconds": 0.01,
        "retry_cap_seconds": 0.02,
        "poll_interval_seconds": 0.2,
    }
)
def test_a_stream_handle_past_the_reactions_own_timeout_fails_its_attempts_then_parks() -> None:
    StuckJobs.let_go.clear()
    StuckJobs.returned.clear()
    [stuck] = jobs("stuck", 1, stuck=True)
    jobs("stuck", 1)  # waits behind it
    jobs("fine", 2)
    subs = stream_reaction(StuckJobs)
    name = StuckJobs.name
    try:
        with running_worker(subs):
            [parked] = wait_for(lambda: parked_streams(name), what="the stuck stream parked")
            wait_for(lambda: handled_count() == 2, what="the other stream")
            StuckJobs.let_go.set()  # every abandoned handle returns now, late
            wait_for(lambda: len(StuckJobs.returned) == 3, what="the late results")
        Worker(subs).run_once()  # one more pass: nothing of theirs lands
    finally:
        StuckJobs.let_go.set()
    assert (parked.stream_id, parked.event_id, parked.attempts) == ("stuck", stuck.event_id, 3)
    assert parked.last_error == "HandleTimeout: handle ran past 0.3s"
    assert parked.waiting == 1
    [(trace,)] = rows(
        "SELECT last_traceback FROM reaction_work WHERE event_id = %s", [stuck.event_id]
    )
    assert "self.let_go.wait(60)" in trace  # where the abandoned handle was stuck
    assert StreamJobs.attempts[stuck.event_id] == 3  # each timeout was an attempt
    assert "stuck" not in handled_by_stream()  # no late result landed
    assert handled_count() == 2
    assert [p.event_id for p in parked_streams(name)] == [stuck.event_id]


def test_a_reactions_own_handle_timeout_wins_over_the_option() -> None:
    [entry] = stream_reaction(StuckJobs)
    assert entry.handle_timeout == 0.3
    [plain] = stream_reaction()
    with override_settings(EVENTDESK={"handle_timeout_seconds": 7}):
        assert plain.handle_timeout == 7
        assert entry.handle_timeout == 0.3
