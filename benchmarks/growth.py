"""Growth: the cost must follow the batch, not the table.

The same tail of 10,000 events is caught up, and the same dismissals are made,
with 10,000 and with 1,000,000 (quick: 100,000) events in the table; the plan
of the worker's reading query must use the global-order index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from benchmarks import live
from benchmarks.catchup import configure_subscribers, eventdesk_catch_up
from benchmarks.db import BenchDatabase, reset_event_tables
from benchmarks.fixtures import append_events, bulk_filler, cursor_before_last
from benchmarks.results import RESULTS_DIR, Results, percentile
from benchmarks.stable import settle

TAIL = 10_000
DISMISSALS = 300  # a p99 needs a few hundred samples to mean anything
#: At least this many rounds. One round's catch-up ratio moves 0.8-1.35 with the machine
#: (a 10,000-event catch-up is 4-6 s, either table size as fast as the other within
#: that); over three rounds the median missed 1.3 once in ten quick runs, with the
#: large table at its usual rate and the small one fast twice (benchmarks/README.md,
#: "Ninth session"). Five rounds: about 40 s more.
GROWTH_ROUNDS = 5


def _explain(db: BenchDatabase, plan_file: str) -> int:
    """EXPLAIN the worker's batch read from mid-table; return how many Seq Scans on events."""
    from eventstore import sql as store_sql
    from subscribers import sql

    middle = cursor_before_last(db, TAIL // 2)
    params = {"tx": middle.transaction_id, "pos": middle.position, "limit": 100}
    lines: list[str] = []
    with db.connect(autocommit=True) as conn:
        for label, query in (("subscribers.sql.READ_BATCH", sql.READ_BATCH),
                             ("eventstore.sql.READ_AFTER", store_sql.READ_AFTER)):  # fmt: skip
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query, params).fetchall()
            lines += [f"-- {label}", *(str(row[0]) for row in rows), ""]
    (RESULTS_DIR / plan_file).write_text("\n".join(lines))
    return sum(1 for line in lines if "Seq Scan on events" in line)


def _read_ms(db: BenchDatabase, lag: int) -> float:
    """Median time of the worker's batch read (100 events) with ``lag`` events still to read."""
    from subscribers import sql

    after = cursor_before_last(db, lag)
    params = {"tx": after.transaction_id, "pos": after.position, "limit": 100}
    timings = []
    with db.connect(autocommit=True) as conn:
        for _ in range(7):
            started = time.perf_counter()
            conn.execute(sql.READ_BATCH, params).fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)[len(timings) // 2]


@dataclass
class Size:
    """One measurement of one table size: the catch-up's events/s and the dismissal p99."""

    rate: float
    p99: float


def _one_size(db: BenchDatabase, total: int, secret: str) -> Size:
    reset_event_tables(db)
    started = time.perf_counter()
    if total > TAIL:
        bulk_filler(db, total - TAIL)
    append_events(TAIL)
    print(f"  growth: {total:,} events in the table ({time.perf_counter() - started:.1f}s to load)")
    start = cursor_before_last(db, TAIL)
    settle(db)
    rate = eventdesk_catch_up("bench-natural-100", start, TAIL)
    targets = live.dismissal_targets(DISMISSALS + 5)
    live.dismiss_all(targets[:5], secret)
    latencies = live.dismiss_all(targets[5:], secret)
    return Size(rate, percentile(latencies, 99))


def run(
    db: BenchDatabase, results: Results, *, small: int, large: int, rate: float, rounds: int
) -> None:
    """The two table sizes measured interleaved (small large, large small, ...), each from
    a table loaded afresh and settled; each slowdown is the median of the per-round ones.
    The plans and the batch reads are taken on the large table of the last round."""
    configure_subscribers(["benchmarks.subscribers.natural_100"])
    secret = live.operator_token()
    rounds = max(rounds, GROWTH_ROUNDS)
    sizes: dict[int, list[Size]] = {small: [], large: []}
    for round_ in range(rounds):
        # The order alternates, the last round ending on the large table (left loaded).
        last_first = (rounds - 1 - round_) % 2 == 0
        for total in (small, large) if last_first else (large, small):
            sizes[total].append(_one_size(db, total, secret))
    seq_scans = _explain(db, f"plan_{large}.txt")
    read_tail, read_whole = _read_ms(db, TAIL), _read_ms(db, large - 1)
    reset_event_tables(db)
    low, high = sizes[small], sizes[large]
    results.add(f"growth: catch-up b=100 natural, {small:,} in table", [s.rate for s in low],
                "events/s")  # fmt: skip
    results.add(f"growth: catch-up b=100 natural, {large:,} in table", [s.rate for s in high],
                "events/s")  # fmt: skip
    results.add(f"growth: catch-up slowdown {large:,} vs {small:,}",
                [a.rate / b.rate for a, b in zip(low, high, strict=True)], "x",
                at_most=1.3)  # fmt: skip
    results.add(f"growth: dismissal p99, {small:,} in table", [s.p99 for s in low], "ms")
    results.add(f"growth: dismissal p99, {large:,} in table", [s.p99 for s in high], "ms")
    results.add(f"growth: dismissal p99 slowdown {large:,} vs {small:,}",
                [b.p99 / a.p99 for a, b in zip(low, high, strict=True)], "x",
                at_most=1.3)  # fmt: skip
    results.add(f"growth: batch read, {TAIL:,} events behind (of {large:,})", read_tail, "ms")
    results.add(f"growth: batch read, {large:,} events behind", read_whole, "ms")
    results.add("growth: batch read slowdown, whole table vs 10,000 behind", read_whole / read_tail,
                "x", at_most=1.3)  # fmt: skip
    results.add(f"growth: Seq Scan on events in reading plans ({large:,})", seq_scans, "scans",
                at_most=0)  # fmt: skip
