"""Out-of-order commits at scale: 8 appenders, random delays and rollbacks, 10,000 events.

A reader that follows the horizon while they run sees every committed event exactly
once, in (transaction_id, position) order, and never a rolled-back one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
from django.db import connection, transaction

from eventstore import NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor, RecordedEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

APPENDERS = 8
EVENTS = 10_000


class Rollback(Exception):
    pass


def test_eight_appenders_ten_thousand_events_none_skipped_none_doubled() -> None:
    store = PostgresEventStore()
    run = uuid.uuid4().hex[:8]
    committed: set[uuid.UUID] = set()
    rolled_back: set[uuid.UUID] = set()
    lock = threading.Lock()
    attempted = [0]
    errors: list[BaseException] = []

    def appender(index: int) -> None:
        rng = random.Random(index)
        try:
            while True:
                with lock:
                    if attempted[0] >= EVENTS:
                        return
                    count = min(rng.randint(1, 5), EVENTS - attempted[0])
                    attempted[0] += count
                events = [NewEvent("Tick", {"run": run, "a": index}) for _ in range(count)]
                ids = {e.event_id for e in events}
                try:
                    with transaction.atomic():
                        store.append_streams([StreamAppend(f"{run}-{index}", events)])
                        threading.Event().wait(rng.random() * 0.004)
                        if rng.random() < 0.1:
                            raise Rollback
                except Rollback:
                    with lock:
                        rolled_back.update(ids)
                    continue
                with lock:
                    committed.update(ids)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=appender, args=(i,)) for i in range(APPENDERS)]
    cursor = store.head()
    for thread in threads:
        thread.start()
    seen: list[RecordedEvent] = []

    def drain(after: Cursor) -> Cursor:
        while batch := store.read_all(after, 500):
            seen.extend(batch)
            after = batch[-1].cursor
        return after

    while any(t.is_alive() for t in threads):
        cursor = drain(cursor)
    for thread in threads:
        thread.join()
    # The horizon is cluster-wide: a transaction elsewhere on the server may still hold
    # it back for a moment. A follower keeps polling; so does this one, until a deadline.
    deadline = time.monotonic() + 60
    while not committed <= {e.event_id for e in seen} and time.monotonic() < deadline:
        cursor = drain(cursor)
        time.sleep(0.05)

    assert errors == []
    mine = [e.event_id for e in seen if e.data.get("run") == run]
    assert len(committed) + len(rolled_back) == EVENTS
    assert len(mine) == len(set(mine)), "an event was delivered twice"
    assert set(mine) == committed, f"{len(committed - set(mine))} committed events were skipped"
    assert not set(mine) & rolled_back
    assert [e.cursor for e in seen] == sorted(e.cursor for e in seen)
