"""Worker crashes: SIGKILL ``run_subscribers`` at random moments while 20,000 events arrive.

At the end every read model equals the one recomputed from the events, every Order has
exactly one Receipt (the reaction's writes are exactly-once; its outside effects are
at-least-once), and no bookmark ever moved backward (a trigger logs every move).
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from subscribers.models import WorkerHeartbeat
from tests.factories import Feed, append_mixed
from tests.reliability.invariants import (
    ON_REL_TABLES,
    applied_counts,
    at_head,
    backward_moves,
    bookmark_moves,
    fetch,
    mixed_feed_matches,
    mixed_feed_receipted,
    order_ids,
    read_models_match,
    receipts_by_order,
    scalar,
)
from tests.reliability.subscribers import MIXED_FEED_NAMES, MIXED_FEED_SUBSCRIBERS
from tests.support import wait_for
from tests.workers import start_worker

pytestmark = [*ON_REL_TABLES, pytest.mark.slow]

EVENTS = 20_000
KILLS = 30
# A short lease, so the reaction is taken over soon after its worker is killed.
OPTIONS = {"lease_seconds": "2", "poll_interval_seconds": "0.2"}


def test_thirty_kills_over_twenty_thousand_events_lose_and_double_nothing(
    processes, tmp_path: Path
) -> None:
    rng = random.Random(20_000)

    def mixed(feed: random.Random, left: int) -> int:
        count = min(feed.randint(20, 200), left)
        append_mixed(feed, count, f"feed-{feed.randrange(50)}")
        return count

    feeding = Feed(EVENTS, 1, mixed, pause=0.1).start()
    kills = kills_mid_work = 0
    try:
        while kills < KILLS or feeding.alive():
            worker = start_worker(
                MIXED_FEED_SUBSCRIBERS, log=tmp_path / f"worker-{kills}.log", **OPTIONS
            )
            processes.append(worker)
            time.sleep(rng.uniform(0.05, 2.0))
            behind = not at_head(*MIXED_FEED_NAMES)
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            kills += 1
            kills_mid_work += behind
    finally:
        feeding.join(120)
    assert feeding.failures == []
    assert feeding.appended == EVENTS

    # One last worker, left alone, finishes the work.
    survivor = start_worker(MIXED_FEED_SUBSCRIBERS, log=tmp_path / "survivor.log", **OPTIONS)
    processes.append(survivor)
    wait_for(mixed_feed_receipted, timeout=180, what="the last worker to finish")
    wait_for(mixed_feed_matches, timeout=60, what="read models")
    # The killed workers may have finished everything before the survivor even started:
    # SIGTERM only once it is up (its heartbeat is written after its signal handling is in
    # place), or the signal lands before the handler and kills it.
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(pid=survivor.pid).exists(),
        timeout=60,
        what="the last worker's heartbeat",
    )
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(60) == 0

    assert read_models_match()
    orders = order_ids()
    receipts = receipts_by_order()
    assert set(receipts) == orders
    assert set(receipts.values()) == {1}, "an order got two receipts"
    every = {row[0] for row in fetch("SELECT event_id FROM events WHERE data ? 'key'")}
    totals = applied_counts("rel.totals")
    assert set(totals) == every
    assert set(totals.values()) == {1}
    ticks_and_orders = {
        row[0] for row in fetch("SELECT event_id FROM events WHERE event_type IN ('Tick', 'Order')")
    }
    batched = applied_counts("rel.batch_totals")
    assert set(batched) == ticks_and_orders
    assert set(batched.values()) == {1}
    assert backward_moves() == []
    effects = int(scalar("SELECT count(*) FROM rel_effects"))
    assert effects >= len(orders)  # outside effects: at least once
    print(
        f"\nFIGURES crashes: {kills} SIGKILLs ({kills_mid_work} with work pending),"
        f" {EVENTS} events appended + {len(orders)} receipts,"
        f" {scalar('SELECT count(*) FROM events')} events checked,"
        f" {bookmark_moves()} bookmark moves logged, 0 backward,"
        f" {effects - len(orders)} outside effects repeated after a kill"
    )
