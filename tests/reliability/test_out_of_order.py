"""Out-of-order commits seen by a subscriber: 8 appenders with random delays between append
and commit and random rollbacks, 10,000 events, a worker projection following them live.

The projection applies every committed event once, in (transaction_id, position) order,
and never a rolled-back one. (``test_out_of_order_at_scale.py`` checks the same through
the reader; this is the worker's side.)
"""

from __future__ import annotations

import signal
import uuid

import pytest

from tests.factories import Appenders
from tests.reliability.invariants import ON_REL_TABLES, fetch
from tests.reliability.subscribers import R
from tests.support import wait_for
from tests.workers import start_worker

pytestmark = [*ON_REL_TABLES, pytest.mark.slow]

APPENDERS = 8
EVENTS = 10_000


def test_a_worker_projection_sees_every_committed_event_once_and_no_rolled_back_one(
    processes,
) -> None:
    worker = start_worker([R + "Recorder"], poll_interval_seconds="0.2")
    processes.append(worker)
    appenders = Appenders(
        count=APPENDERS, events=EVENTS, prefix="ooo", max_batch=8, max_delay=0.01
    ).start()
    appenders.join(300)
    assert appenders.errors == []
    committed, rolled_back = appenders.committed, appenders.rolled_back

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
