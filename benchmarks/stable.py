"""Figures that hold still: every measurement from the same state, the sides of a ratio
measured interleaved, and the median of the rounds taken.

A ratio whose two sides are measured minutes apart measures the minutes too: a
checkpoint, autovacuum, a warming cache or a neighbour's burst on a shared machine.
Here each round measures every side once, one after the other (the order alternates
from round to round, so neither side always goes first), each after ``settle``; the
figure is the median over the rounds, and the spread (min-max) is kept beside it.

Sides measured by time (``interleaved_work``): within a round the sides take turns one
run each until each has done ``min_seconds`` of work, and a side's rate is taken over
all of its runs. A 0.2 s measurement on a shared machine is mostly the neighbours'
stalls; a second or two of it, taken in slices alternating with the other side's,
average them out for both sides alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from benchmarks.db import BenchDatabase

#: The tables the measured code reads and writes (the peer's own are dropped and made
#: anew for each of its measurements).
MEASURED_TABLES = (
    "events", "projection_bookmarks", "bench_type_counts", "bench_stream_rows", "bench_arrivals",
    "bench_rebuild_streams", "demo_runs", "demo_agent_stats", "demo_cautions",
    "projection_rebuilds",
)  # fmt: skip


def settle(db: BenchDatabase) -> None:
    """The same starting state for every measurement: dead rows vacuumed, statistics
    fresh, dirty pages written (no checkpoint lands in the middle of a measurement).
    Autovacuum is off on the private cluster (``--isolated``) for the whole run."""
    with db.connect(autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(MEASURED_TABLES)}")
        conn.execute("CHECKPOINT")


def interleaved(
    db: BenchDatabase, sides: Mapping[str, Callable[[], float]], rounds: int
) -> dict[str, list[float]]:
    """Measure each side ``rounds`` times, interleaved (A B, B A, A B, ...), each from a
    settled state; return each side's figures in round order."""
    figures: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for round_ in range(rounds):
        for name in order if round_ % 2 == 0 else order[::-1]:
            settle(db)
            figures[name].append(sides[name]())
    return figures


#: Work per side per round (seconds): ``--min-seconds``; the quick run's default.
MIN_SECONDS_QUICK = 1.0
MIN_SECONDS_FULL = 2.0
#: A side is run at most this many times in one turn, however fast it is.
MAX_REPEATS = 40


@dataclass(frozen=True)
class Work:
    """What one run of a side did: how much (events, requests) in how many seconds."""

    amount: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.amount / self.seconds


def interleaved_work(
    db: BenchDatabase,
    runs: Mapping[str, Callable[[], Work]],
    rounds: int,
    min_seconds: float,
) -> dict[str, list[float]]:
    """Each side's rate per round, the sides sized by time and interleaved run by run.

    A round starts from a settled state; then the sides take turns one run each (A B C,
    then C B A, ...), a side dropping out once it has done ``min_seconds`` of work (at
    least one run, at most ``MAX_REPEATS``). The two sides of a ratio thus sample the
    same seconds of the machine, a fraction of a second apart, instead of neighbouring
    seconds; a side's rate in a round is its amount over its seconds, all runs together.
    """
    figures: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for _ in range(rounds):
        settle(db)
        amount = dict.fromkeys(order, 0.0)
        seconds = dict.fromkeys(order, 0.0)
        repeats = dict.fromkeys(order, 0)
        turn = 0
        while True:
            pending = [
                name
                for name in (order if turn % 2 == 0 else order[::-1])
                if (repeats[name] == 0 or seconds[name] < min_seconds)
                and repeats[name] < MAX_REPEATS
            ]
            if not pending:
                break
            for name in pending:
                work = runs[name]()
                amount[name] += work.amount
                seconds[name] += work.seconds
                repeats[name] += 1
            turn += 1
        for name in order:
            figures[name].append(amount[name] / seconds[name])
    return figures


def timed(run: Callable[[], float]) -> Work:
    """``run()`` returns an amount; the wall time it took is the work's seconds."""
    started = time.perf_counter()
    amount = run()
    return Work(amount, time.perf_counter() - started)
