"""Out-of-order commits seen by a subscriber: 8 appenders with random delays between append
and commit and random rollbacks, 10,000 events, a worker projection following them live.

The projection applies every committed event once, in (transaction_id, position) order,
and never a rolled-back one. (``test_out_of_order_at_scale.py`` checks the same through
the reader; this is the worker's side.)
"""

from __future__ import annotations

import random
import signal
import threading
import uuid

import pytest
from django.db import connection, transaction

from eventstore import NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from tests.reliability_support import R, fetch, processes, rel_tables
from tests.worker_support import start_worker, wait_for

__all__ = ["processes", "rel_tables"]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("rel_tables"),
    pytest.mark.slow,
]

APPENDERS = 8
EVENTS = 10_000


class Rollback(Exception):
    pass


def test_a_worker_projection_sees_every_committed_event_once_and_no_rolled_back_one(
    processes,
) -> None:
    worker = start_worker([R + "Recorder"], poll_interval_seconds="0.2")
    processes.append(worker)
    store = PostgresEventStore()
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
                    count = min(rng.randint(1, 8), EVENTS - attempted[0])
                    attempted[0] += count
                events = [NewEvent("Tick", {"a": index}) for _ in range(count)]
                ids = {e.event_id for e in events}
                try:
                    with transaction.atomic():
                        store.append_streams([StreamAppend(f"ooo-{index}", events)])
                        threading.Event().wait(rng.random() * 0.01)
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
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []

    def applied_ids() -> list[uuid.UUID]:
        return [
            row[0]
            for row in fetch(
                "SELECT event_id FROM rel_applied WHERE subscriber = 'rel.recorder' ORDER BY seq"
            )
        ]

    # The horizon is cluster-wide: keep polling until the worker has seen what committed.
    wait_for(lambda: len(applied_ids()) >= len(committed), timeout=120, what="the projection")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0

    applied = applied_ids()
    assert len(committed) + len(rolled_back) == EVENTS
    assert len(applied) == len(set(applied)), "an event was applied twice"
    assert set(applied) == committed, f"{len(committed - set(applied))} events skipped"
    assert not set(applied) & rolled_back
    order = fetch("SELECT tx, position FROM rel_applied ORDER BY seq")
    assert order == sorted(order), "applied out of the global order"
    print(
        f"\nFIGURES out-of-order: {APPENDERS} appenders, {EVENTS} events attempted,"
        f" {len(committed)} committed and applied once, {len(rolled_back)} rolled back"
        " and never applied, 0 skipped"
    )
