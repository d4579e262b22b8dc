"""The global order never skips an event committed out of order (real PostgreSQL)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import ConcurrencyError, InvalidAppend, NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from eventstore.types import START, Cursor, RecordedEvent

pytestmark = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


def in_thread(work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` on its own thread, hence its own Django connection."""

    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def follow(store: PostgresEventStore, cursor: Cursor, seen: list[RecordedEvent]) -> Cursor:
    """Read everything visible after ``cursor``, as a subscriber would."""
    while batch := store.read_all(cursor, 50):
        seen.extend(batch)
        cursor = batch[-1].cursor
    return cursor


def test_slow_transaction_that_began_first_is_not_skipped() -> None:
    store = PostgresEventStore()
    a_appended, a_may_commit = threading.Event(), threading.Event()
    a_events: list[RecordedEvent] = []

    def transaction_a() -> None:
        with transaction.atomic():
            a_events.extend(store.append_streams([StreamAppend("slow", [NewEvent("A")])]))
            a_appended.set()
            assert a_may_commit.wait(10)

    thread = in_thread(transaction_a)
    assert a_appended.wait(10)
    b_events = store.append_streams([StreamAppend("fast", [NewEvent("B")])])  # commits at once
    assert b_events[0].transaction_id > a_events[0].transaction_id

    seen: list[RecordedEvent] = []
    cursor = follow(store, START, seen)
    assert seen == []  # B is committed, but A (older) is in flight: B must wait behind it

    a_may_commit.set()
    thread.join(10)
    deadline = time.monotonic() + 30  # another transaction on the server may hold the horizon
    while len(seen) < 2 and time.monotonic() < deadline:
        cursor = follow(store, cursor, seen)
    assert [e.event_type for e in seen] == ["A", "B"]
    assert [e.cursor for e in seen] == sorted(e.cursor for e in seen)


def test_two_appends_at_the_same_expected_version_one_wins() -> None:
    store = PostgresEventStore()
    store.append_streams([StreamAppend("order-1", [NewEvent("Placed")], 0)])
    first_holds_lock, release_first = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def first() -> None:
        with transaction.atomic():
            store.append_streams([StreamAppend("order-1", [NewEvent("Paid", {"by": "first"})], 1)])
            first_holds_lock.set()
            assert release_first.wait(10)
        outcomes["first"] = "ok"

    def second() -> None:
        try:
            store.append_streams(
                [StreamAppend("order-1", [NewEvent("Paid", {"by": "second"}), NewEvent("X")], 1)]
            )
            outcomes["second"] = "ok"
        except ConcurrencyError as exc:
            outcomes["second"] = exc

    one = in_thread(first)
    assert first_holds_lock.wait(10)
    two = in_thread(second)
    release_first.set()
    one.join(10)
    two.join(10)
    assert outcomes["first"] == "ok"
    assert isinstance(outcomes["second"], ConcurrencyError)
    stream = store.read_stream("order-1")
    assert [(e.stream_version, e.data.get("by")) for e in stream] == [(1, None), (2, "first")]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plans=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=3),  # events in the transaction
            st.floats(min_value=0, max_value=0.03),  # delay between append and commit
            st.booleans(),  # roll back instead of committing
        ),
        min_size=2,
        max_size=8,
    ),
    seed=st.integers(0, 2**16),
)
def test_concurrent_appenders_reader_sees_each_committed_event_once_in_order(
    plans: list[tuple[int, float, bool]], seed: int
) -> None:
    store = PostgresEventStore()
    run = uuid.uuid4().hex[:8]
    start = store.head()
    committed: set[uuid.UUID] = set()
    rolled_back: set[uuid.UUID] = set()
    lock = threading.Lock()
    jitter = random.Random(seed)
    starts = [jitter.uniform(0, 0.02) for _ in plans]

    def appender(index: int, count: int, delay: float, rollback: bool) -> Callable[[], None]:
        def work() -> None:
            threading.Event().wait(starts[index])
            events = [NewEvent("Tick", {"run": run, "i": index, "n": n}) for n in range(count)]
            ids = {e.event_id for e in events}
            try:
                with transaction.atomic():
                    store.append_streams([StreamAppend(f"{run}-{index}", events)])
                    threading.Event().wait(delay)
                    if rollback:
                        raise Rollback
            except Rollback:
                with lock:
                    rolled_back.update(ids)
                return
            with lock:
                committed.update(ids)

        return work

    threads = [in_thread(appender(i, *plan)) for i, plan in enumerate(plans)]
    seen: list[RecordedEvent] = []
    cursor = start
    while any(t.is_alive() for t in threads):
        cursor = follow(store, cursor, seen)
    for thread in threads:
        thread.join(10)
    # The horizon is cluster-wide: another transaction on the server may hold it back
    # for a moment. A follower keeps polling; so does this one, until a deadline.
    deadline = time.monotonic() + 30
    while not committed <= {e.event_id for e in seen} and time.monotonic() < deadline:
        cursor = follow(store, cursor, seen)

    mine = [e for e in seen if e.data.get("run") == run]
    ids = [e.event_id for e in mine]
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert set(ids) == committed, "a committed event was skipped"
    assert not set(ids) & rolled_back
    assert [e.cursor for e in seen] == sorted(e.cursor for e in seen)


def test_text_postgresql_cannot_store_is_a_typed_error_and_writes_nothing() -> None:
    store = PostgresEventStore()
    with pytest.raises(InvalidAppend, match="PostgreSQL refused"):
        store.append_streams([StreamAppend("s", [NewEvent("E", {"text": "\ud800"})])])
    assert store.read_stream("s") == []


def test_concurrent_any_version_appends_to_one_stream_all_land_in_sequence() -> None:
    store = PostgresEventStore()
    errors: list[BaseException] = []

    def appender(index: int) -> Callable[[], None]:
        def work() -> None:
            try:
                for _ in range(15):
                    store.append_streams([StreamAppend("shared", [NewEvent("E", {"a": index})])])
            except BaseException as exc:
                errors.append(exc)

        return work

    threads = [in_thread(appender(i)) for i in range(6)]
    for thread in threads:
        thread.join(60)
    assert errors == []
    stream = store.read_stream("shared")
    assert [e.stream_version for e in stream] == list(range(1, 91))
    assert sorted(e.data["a"] for e in stream) == sorted(i for i in range(6) for _ in range(15))
