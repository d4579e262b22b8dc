"""Out-of-order commits at scale: 8 appenders, random delays and rollbacks, 10,000 events.

A reader that follows the horizon while they run sees every committed event exactly
once, in (transaction_id, position) order, and never a rolled-back one.
"""

from __future__ import annotations

import time
import uuid

import pytest

from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor, RecordedEvent
from tests.factories import Appenders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

APPENDERS = 8
EVENTS = 10_000


def test_eight_appenders_ten_thousand_events_none_skipped_none_doubled() -> None:
    store = PostgresEventStore()
    run = uuid.uuid4().hex[:8]
    cursor = store.head()
    appenders = Appenders(count=APPENDERS, events=EVENTS, prefix=run, data={"run": run}).start()
    seen: list[RecordedEvent] = []

    def drain(after: Cursor) -> Cursor:
        while batch := store.read_all(after, 500):
            seen.extend(batch)
            after = batch[-1].cursor
        return after

    while appenders.alive():
        cursor = drain(cursor)
    appenders.join()
    committed, rolled_back = appenders.committed, appenders.rolled_back
    # The horizon is cluster-wide: a transaction elsewhere on the server may still hold
    # it back for a moment. A follower keeps polling; so does this one, until a deadline.
    deadline = time.monotonic() + 60
    while not committed <= {e.event_id for e in seen} and time.monotonic() < deadline:
        cursor = drain(cursor)
        time.sleep(0.05)

    assert appenders.errors == []
    mine = [e.event_id for e in seen if e.data.get("run") == run]
    assert len(committed) + len(rolled_back) == EVENTS
    assert len(mine) == len(set(mine)), "an event was delivered twice"
    assert set(mine) == committed, f"{len(committed - set(mine))} committed events were skipped"
    assert not set(mine) & rolled_back
    assert [e.cursor for e in seen] == sorted(e.cursor for e in seen)
