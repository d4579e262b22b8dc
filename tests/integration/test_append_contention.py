"""An append with no expected version always lands, however often it loses the race
for its stream's next version: after a few optimistic tries it takes the stream's lock.

The race is forced, not hoped for: other sessions keep the stream's next version taken
by a transaction still in flight, and commit it only once the append waits behind it.
"""

from __future__ import annotations

import functools
import threading
import uuid
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from eventstore import NewEvent, RecordedEvent, StreamAppend
from eventstore import postgres as postgres_store
from eventstore import sql as store_sql
from eventstore.postgres import PostgresEventStore
from tests.support import raw_connection, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "contended"
#: More races lost in a row than the 20 optimistic retries the store once gave up after.
ROUNDS = 25


class Appender:
    """One append to ``STREAM`` on a thread of its own (so its own Django connection),
    in a transaction of the caller's or alone."""

    def __init__(self, *, in_transaction: bool) -> None:
        self.in_transaction = in_transaction
        self.pid: int | None = None
        self.recorded: list[RecordedEvent] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = int(cursor.fetchone()[0])
            append = [StreamAppend(STREAM, [NewEvent("Appended", {})])]
            if self.in_transaction:
                with transaction.atomic():
                    self.recorded = PostgresEventStore().append_streams(append)
            else:
                self.recorded = PostgresEventStore().append_streams(append)
        except BaseException as exc:  # surfaced by the test's assertions
            self.errors.append(exc)
        finally:
            connection.close()


def take_version(version: int) -> tuple[psycopg.Connection[Any], int]:
    """A session whose transaction, still open, holds ``version`` of the stream."""
    session = raw_connection(autocommit=False)
    session.execute(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
        " VALUES (%s, %s, %s, 'Taken', '{}', '{}')",
        [uuid.uuid4(), STREAM, version],
    )
    [pid] = session.execute("SELECT pg_backend_pid()").fetchone() or (0,)
    return session, int(pid)


def waiting_or_done(appender: Appender, holder: int) -> bool:
    """The append waits for the session ``holder`` to finish (or has ended, in error)."""
    if not appender.thread.is_alive():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder, appender.pid or 0])
        return bool(cursor.fetchone()[0])


@pytest.mark.parametrize("in_transaction", [False, True], ids=["alone", "in_transaction"])
def test_append_with_no_expected_version_lands_after_losing_every_race(
    in_transaction: bool,
) -> None:
    store = PostgresEventStore()
    store.append_streams([StreamAppend(STREAM, [NewEvent("First", {})])])
    sessions: list[psycopg.Connection[Any]] = []
    try:
        session, holder = take_version(2)
        sessions.append(session)
        appender = Appender(in_transaction=in_transaction)
        wait_for(lambda: appender.pid is not None or appender.errors, what="the appender")
        for round_ in range(ROUNDS):
            # The append computed the taken version and waits for its holder to finish.
            wait_for(
                functools.partial(waiting_or_done, appender, holder),
                what=f"the append to wait behind round {round_}'s holder",
            )
            assert appender.errors == []
            if round_ < ROUNDS - 1:
                # The next version is taken before this one commits: the retry loses again.
                next_session, holder = take_version(round_ + 3)
                sessions.append(next_session)
            session.commit()
            if round_ < ROUNDS - 1:
                session = next_session
        appender.thread.join(60)
    finally:
        for session in sessions:
            session.close()
    assert appender.errors == []
    [recorded] = appender.recorded
    assert recorded.stream_version == ROUNDS + 2
    stream = store.read_stream(STREAM)
    assert [event.stream_version for event in stream] == list(range(1, ROUNDS + 3))
    assert [event.event_type for event in stream].count("Appended") == 1


def test_many_appenders_to_one_stream_all_land_in_sequence_with_one_optimistic_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One optimistic try: nearly every contended append takes the lock path.
    monkeypatch.setattr(postgres_store, "OPTIMISTIC_TRIES", 1)
    store = PostgresEventStore()
    errors: list[BaseException] = []
    per_thread, threads = 12, 8

    def work(index: int) -> None:
        try:
            for n in range(per_thread):
                append = [StreamAppend(STREAM, [NewEvent("E", {"a": index, "n": n})])]
                if (index + n) % 2:
                    with transaction.atomic():
                        store.append_streams(append)
                else:
                    store.append_streams(append)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    assert errors == []
    stream = store.read_stream(STREAM)
    assert [event.stream_version for event in stream] == list(range(1, per_thread * threads + 1))
    # Each thread's appends landed in the order it made them.
    for index in range(threads):
        mine = [event.data["n"] for event in stream if event.data["a"] == index]
        assert mine == list(range(per_thread))


def test_one_event_in_a_transaction_lands_in_one_statement() -> None:
    store = PostgresEventStore()
    store.append_streams([StreamAppend(STREAM, [NewEvent("First", {})])])
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        [recorded] = store.append_streams([StreamAppend(STREAM, [NewEvent("Second", {})])])
    assert recorded.stream_version == 2
    # The stream's lock taken in the insert itself: no lock statement, no savepoint.
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["BEGIN", "WITH", "COMMIT"]
    assert [event.event_type for event in store.read_stream(STREAM)] == ["First", "Second"]


def test_one_event_in_a_transaction_waits_its_turn_when_its_streams_lock_is_held() -> None:
    store = PostgresEventStore()
    store.append_streams([StreamAppend(STREAM, [NewEvent("First", {})])])
    holder = raw_connection(autocommit=False)
    try:
        holder.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [store_sql.STREAM_NAMESPACE, STREAM]
        )
        [pid] = holder.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        appender = Appender(in_transaction=True)
        wait_for(
            functools.partial(waiting_or_done, appender, int(pid)),
            what="the append to wait for the stream's lock",
        )
        assert (appender.recorded, appender.errors) == ([], [])
        # The lock's holder appends the next version meanwhile: the append comes after it.
        holder.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
            " VALUES (%s, %s, 2, 'Held', '{}', '{}')",
            [uuid.uuid4(), STREAM],
        )
        holder.commit()
        appender.thread.join(60)
    finally:
        holder.close()
    assert appender.errors == []
    assert [event.stream_version for event in appender.recorded] == [3]
    assert [event.event_type for event in store.read_stream(STREAM)] == [
        "First",
        "Held",
        "Appended",
    ]


def test_one_event_in_a_repeatable_read_transaction_goes_the_lock_path() -> None:
    store = PostgresEventStore()
    store.append_streams([StreamAppend(STREAM, [NewEvent("First", {})])])
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        [recorded] = store.append_streams([StreamAppend(STREAM, [NewEvent("Second", {})])])
    assert recorded.stream_version == 2
    # The one-statement try inserts nothing there; the lock path (lock, savepoint) lands.
    sent = [q["sql"].split()[0] for q in queries.captured_queries]
    assert sent == ["BEGIN", "SET", "WITH", "SELECT", "SAVEPOINT", "WITH", "RELEASE", "COMMIT"]
