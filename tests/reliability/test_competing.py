"""Competing workers: three ``run_subscribers`` processes on the same subscribers.

No event is applied twice, each subscriber is worked by one process at a time (each
subscriber takes a per-subscriber advisory lock while it works and logs an overlap if
another session holds it), and the reaction's lease is taken over after its holder is
SIGKILLed mid-handle.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from subscribers.models import Bookmark
from tests.factories import append_mixed
from tests.reliability.invariants import (
    ON_REL_TABLES,
    applied_counts,
    backward_moves,
    fetch,
    mixed_feed_matches,
    mixed_feed_receipted,
    order_ids,
    overlaps,
    receipts_by_order,
)
from tests.reliability.subscribers import MIXED_FEED_SUBSCRIBERS
from tests.support import wait_for
from tests.workers import start_worker

pytestmark = ON_REL_TABLES

OPTIONS = {"lease_seconds": "3", "poll_interval_seconds": "0.2"}
EVENTS = 2_000


def test_three_workers_share_the_work_without_doubling_it_and_take_over_a_lease(
    processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REL_HANDLE_SECONDS", "0.02")  # a kill can land inside handle()
    rng = random.Random(3)
    workers = {}
    for _ in range(3):
        process = start_worker(MIXED_FEED_SUBSCRIBERS, log=None, **OPTIONS)
        processes.append(process)
        workers[process.pid] = process
    for n in range(EVENTS // 100):
        append_mixed(rng, 100, f"competing-{n % 7}")
        time.sleep(0.02)

    def lease_holder() -> int | None:
        owner = Bookmark.objects.get(subscriber_name="rel.receipts").lease_owner
        pid = int(owner.split(":")[1]) if owner else None
        return pid if pid in workers and len(receipts_by_order()) >= 20 else None

    victim = wait_for(lease_holder, timeout=120, what="a worker inside the reaction")
    workers[victim].send_signal(signal.SIGKILL)
    workers[victim].wait(30)
    killed_at = int(fetch("SELECT coalesce(max(seq), 0) FROM rel_effects")[0][0])

    wait_for(mixed_feed_receipted, timeout=180, what="the two surviving workers to finish")
    wait_for(mixed_feed_matches, timeout=60, what="read models")
    survivors = [p for pid, p in workers.items() if pid != victim]
    assert all(p.poll() is None for p in survivors)
    for process in survivors:
        process.send_signal(signal.SIGTERM)
    assert [p.wait(60) for p in survivors] == [0, 0]

    assert overlaps() == [], "two workers worked one subscriber at the same time"
    for name in ("rel.totals", "rel.batch_totals"):
        counts = applied_counts(name)
        assert set(counts.values()) == {1}, f"{name} applied an event twice"
    receipts = receipts_by_order()
    assert set(receipts) == order_ids()
    assert set(receipts.values()) == {1}
    after_kill = {
        row[0] for row in fetch("SELECT DISTINCT pid FROM rel_effects WHERE seq > %s", [killed_at])
    }
    assert after_kill, "nobody handled an order after the kill"
    assert victim not in after_kill  # the lease was taken over by another worker
    assert backward_moves() == []
    pids = fetch(
        "SELECT subscriber, count(DISTINCT pid) FROM rel_applied GROUP BY 1 ORDER BY 1"
    ) + fetch("SELECT subscriber, count(DISTINCT pid) FROM rel_effects GROUP BY 1")
    print(
        f"\nFIGURES competing: 3 workers, {EVENTS} events + {len(receipts)} receipts,"
        f" distinct worker pids per subscriber {pids}, overlaps 0, 1 lease holder killed"
    )
