"""The diagnosis: a pure function from a snapshot of facts to words."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from reactions_admin.reads.diagnosis import (
    HorizonFact,
    LeaseFact,
    State,
    SubscriberFacts,
    ago,
    count,
    diagnose,
    timestamp,
)

NOW = datetime(2026, 11, 28, 3, 12, 9, tzinfo=UTC)
EVENT = uuid.UUID("11111111-2222-3333-4444-555555555555")
BASE = SubscriberFacts(
    name="demo.caution_drafter", kind="reaction", status="active", now=NOW, lag=0,
    live_workers=("host:1:abc",),
)  # fmt: skip


def test_caught_up() -> None:
    diagnosis = diagnose(BASE)
    assert (diagnosis.state, diagnosis.summary, diagnosis.stalled) == (
        State.CAUGHT_UP, "caught up", False,
    )  # fmt: skip


def test_catching_up_with_and_without_a_rate() -> None:
    assert diagnose(replace(BASE, lag=120)).summary == "catching up: 120 event(s) behind"
    fast = diagnose(replace(BASE, lag=1200, rate=10.0))
    assert fast.state is State.CATCHING_UP
    assert fast.summary == "catching up at 10.0 events/s: 1200 event(s) behind, ETA 2 min"
    assert fast.eta_seconds == 120
    assert not fast.stalled


def test_wedged_names_the_event_the_error_and_since_when() -> None:
    facts = replace(
        BASE, status="wedged", lag=3, attempts=5, failing_event_id=EVENT,
        failing_event_type="CautionRaised", last_error="ContextWindowExceeded: 40000 tokens",
        failed_at=NOW - timedelta(minutes=4),
    )  # fmt: skip
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.WEDGED
    assert diagnosis.stalled
    assert diagnosis.summary == (
        f"wedged on event {EVENT} (CautionRaised) with error ContextWindowExceeded: 40000 "
        "tokens since 2026-11-28 03:08:09 UTC (4 min ago), after 5 attempt(s)"
    )


def test_retrying_says_when_the_next_attempt_is() -> None:
    facts = replace(
        BASE, status="retrying", lag=1, attempts=2, failing_event_id=EVENT,
        last_error="TimeoutError: upstream", next_retry_at=NOW + timedelta(seconds=12),
    )  # fmt: skip
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.RETRYING
    assert "next attempt at 2026-11-28 03:12:21 UTC (in 12 s)" in diagnosis.summary
    assert "attempt 2 of 5 failed: TimeoutError: upstream" in diagnosis.summary


def test_paused_says_by_whom_since_when_and_why() -> None:
    facts = replace(
        BASE, status="paused", lag=7, paused_by="alice", pause_reason="schema migration",
        paused_at=NOW - timedelta(seconds=30),
    )  # fmt: skip
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.PAUSED
    assert diagnosis.summary == (
        "paused by alice since 2026-11-28 03:11:39 UTC (30 s ago): schema migration"
    )


def test_parked_streams_and_paused_intake() -> None:
    facts = replace(
        BASE, lag=0, stream_ordered=True, parked_streams=3,
        oldest_parked=NOW - timedelta(hours=2), intake_paused_at=NOW - timedelta(minutes=1),
    )  # fmt: skip
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.INTAKE_PAUSED
    assert diagnosis.codes == {State.PARKED, State.INTAKE_PAUSED}
    texts = [cause.text for cause in diagnosis.causes]
    assert "3 stream(s) parked, the oldest since 2026-11-28 01:12:09 UTC (2 h ago)" in texts[0]
    assert texts[1] == "intake paused at its limit since 2026-11-28 03:11:09 UTC (1 min ago)"


def test_the_horizon_names_the_backend_and_how_long() -> None:
    facts = replace(BASE, lag=0, horizon=HorizonFact(4242, 75.0, "alice@eventdesk, psql", 12))
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.HORIZON
    assert diagnosis.summary.startswith(
        "the horizon is held by backend pid 4242 (alice@eventdesk, psql) for 75 s: "
        "12 committed event(s) stay invisible"
    )
    # A transaction hiding nothing is no cause.
    assert diagnose(replace(facts, horizon=HorizonFact(1, 99.0, "x", 0))).state is State.CAUGHT_UP


def test_no_live_worker() -> None:
    behind = diagnose(replace(BASE, lag=4, live_workers=()))
    assert (behind.state, behind.summary, behind.stalled) == (
        State.NO_WORKER, "no live worker runs it", True,
    )  # fmt: skip
    idle = diagnose(replace(BASE, live_workers=()))
    assert idle.state is State.CAUGHT_UP
    assert idle.summary == "caught up; no live worker runs it"
    assert not idle.stalled


def test_a_lease_held_by_a_worker_that_stopped_beating() -> None:
    facts = replace(BASE, lag=2, leases=(LeaseFact("host:7:dead", False, 95.0),))
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.LEASE_ORPHANED
    assert diagnosis.summary == (
        "its lease is held by worker host:7:dead, which stopped sending heartbeats 2 min ago"
    )
    live = replace(facts, leases=(LeaseFact("host:1:abc", True, 1.0),))
    assert diagnose(live).state is State.CATCHING_UP


def test_counts() -> None:
    diagnoses = [
        diagnose(BASE),
        diagnose(replace(BASE, status="wedged", lag=1)),
        diagnose(replace(BASE, status="retrying", lag=1)),
        diagnose(replace(BASE, status="paused", lag=1)),
        diagnose(replace(BASE, lag=1, live_workers=())),
    ]
    counts = count(diagnoses)
    assert counts.as_json() == {
        "wedged": 1,
        "degraded": 0,
        "retrying": 1,
        "paused": 1,
        "stalled": 4,
        "total": 5,
    }


def test_a_wedged_and_a_degraded_subscriber_count_once_each() -> None:
    wedged = diagnose(replace(BASE, status="wedged", lag=1))
    parked = diagnose(
        replace(
            BASE, stream_ordered=True, parked_streams=1, oldest_parked=NOW - timedelta(minutes=4)
        )
    )
    counts = count([wedged, parked])
    assert (counts.wedged, counts.degraded, counts.total) == (1, 1, 2)


def test_times_have_seconds_and_a_timezone_and_ages_read_naturally() -> None:
    assert timestamp(NOW) == "2026-11-28 03:12:09 UTC"
    assert ago(NOW - timedelta(minutes=4, seconds=10), NOW) == "4 min ago"
    assert ago(NOW + timedelta(seconds=5), NOW) == "in 5 s"
    assert ago(NOW - timedelta(days=3), NOW) == "3 d ago"


def test_a_parked_stream_is_the_headline_when_nothing_else_is_behind() -> None:
    facts = replace(
        BASE, stream_ordered=True, parked_streams=1, oldest_parked=NOW - timedelta(minutes=4)
    )
    diagnosis = diagnose(facts)
    assert diagnosis.state is State.PARKED
    assert diagnosis.summary.startswith("1 stream(s) parked, the oldest since ")
    assert "catching up" not in diagnosis.summary
    assert (count([diagnosis]).wedged, count([diagnosis]).degraded) == (0, 1)


def test_wakeups_that_do_not_arrive_qualify_caught_up_and_catching_up_without_stalling() -> None:
    polling = replace(BASE, polling_only=(5.0,))
    caught_up = diagnose(polling)
    assert caught_up.state is State.CAUGHT_UP
    assert caught_up.summary.startswith("caught up; wake-ups are not arriving; polling every 5 s")
    assert "EVENTDESK_LISTEN_DATABASE_URL" in caught_up.summary
    assert not caught_up.stalled
    behind = diagnose(replace(polling, lag=40))
    assert behind.state is State.CATCHING_UP
    assert [c.state for c in behind.causes] == [State.WAKEUPS]
    assert behind.summary.startswith("catching up: 40 event(s) behind; wake-ups are not arriving")
    assert behind.as_json()["causes"][0]["state"] == "wakeups_not_arriving"


def test_wakeups_that_do_not_arrive_on_some_workers_say_how_many() -> None:
    facts = replace(BASE, live_workers=("a", "b", "c"), polling_only=(5.0,))
    [cause] = diagnose(facts).causes
    assert cause.text.startswith(
        "wake-ups are not arriving on 1 of its 3 workers; polling every 5 s"
    )
