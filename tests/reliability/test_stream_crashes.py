"""Stream-ordered reaction crashes: three workers at concurrency 16, twenty SIGKILLs, while
thousands of jobs arrive over hundreds of streams.

At the end every job is answered exactly once (its ``Handled`` append), per stream in
stream order, the work table is empty, and the intake point never moved backward.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.factories import Feed, jobs
from tests.reliability.invariants import ON_REL_TABLES, backward_moves, bookmark_moves
from tests.stream_invariants import check_streams, doubled, handled_count, rows
from tests.subscribers import WideStreamJobs
from tests.support import wait_for
from tests.workers import start_worker

pytestmark = [*ON_REL_TABLES, pytest.mark.slow]

JOBS = 3_000
STREAMS = 300
KILLS = 20
WORKERS = 3
SUBSCRIBER = "tests.subscribers.WideStreamJobs"
# A short lease, so a killed worker's claims are taken over soon.
OPTIONS = {"lease_seconds": "2", "poll_interval_seconds": "0.2"}


def test_twenty_kills_of_three_workers_at_concurrency_16_lose_and_double_nothing(
    processes: list[Any], tmp_path: Path
) -> None:
    rng = random.Random(16)

    def some_jobs(feed: random.Random, left: int) -> int:
        count = min(feed.randint(1, 8), left)
        jobs(f"run-{feed.randrange(STREAMS)}", count, sleep=feed.choice([0.02, 0.1, 0.2]))
        return count

    def worker(n: int) -> Any:
        process = start_worker([SUBSCRIBER], log=tmp_path / f"worker-{n}.log", **OPTIONS)
        processes.append(process)
        return process

    running = [worker(n) for n in range(WORKERS)]
    feeding = Feed(JOBS, 3, some_jobs, pause=0.03).start()
    kills = kills_mid_handle = 0
    try:
        while kills < KILLS:
            time.sleep(rng.uniform(0.2, 1.5))
            held = [
                rows(
                    "SELECT count(*) FROM reaction_work WHERE lease_token LIKE %s",
                    [f"%:{process.pid}:%"],
                )[0][0]
                for process in running
            ]
            # Mostly the worker holding the most claims: kills inside handle calls.
            victim = rng.randrange(WORKERS)
            if rng.random() < 0.75:
                victim = held.index(max(held))
            kills_mid_handle += bool(held[victim])
            running[victim].send_signal(signal.SIGKILL)
            running[victim].wait(30)
            kills += 1
            running[victim] = worker(WORKERS + kills)
    finally:
        feeding.join(300)
    assert feeding.failures == []
    assert feeding.appended == JOBS

    wait_for(lambda: handled_count() == JOBS, timeout=300, what="every job answered")
    wait_for(
        lambda: rows("SELECT count(*) FROM reaction_work")[0][0] == 0,
        timeout=60,
        what="the work table empty",
    )
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        assert process.wait(60) == 0

    assert doubled() == []
    check_streams(WideStreamJobs.name)  # per-stream order, nothing lost
    assert backward_moves() == []
    streams = rows("SELECT count(DISTINCT stream_id) FROM events WHERE event_type = 'Job'")[0][0]
    print(
        f"\nFIGURES stream crashes: {kills} SIGKILLs ({kills_mid_handle} holding claims)"
        f" of {WORKERS} workers at concurrency"
        f" {WideStreamJobs.concurrency}, {JOBS} jobs over {streams} streams, {handled_count()}"
        f" answered once each, 0 lost, 0 doubled, {bookmark_moves()} intake moves, 0 backward"
    )
