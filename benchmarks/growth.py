"""Growth: the cost must follow the batch, not the table.

The same tail of 10,000 events is caught up, and the same dismissals are made,
with 10,000 and with 1,000,000 (quick: 100,000) events in the table; the plan
of the worker's reading query must use the global-order index.
"""

from __future__ import annotations

import time

from benchmarks import live
from benchmarks.catchup import configure_subscribers, eventdesk_catch_up
from benchmarks.db import BenchDatabase, reset_event_tables
from benchmarks.fixtures import append_events, bulk_filler, cursor_before_last
from benchmarks.results import RESULTS_DIR, Results, percentile

TAIL = 10_000
DISMISSALS = 300  # a p99 needs a few hundred samples to mean anything


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


def _one_size(
    db: BenchDatabase, total: int, secret: str
) -> tuple[float, float, int, tuple[float, float]]:
    reset_event_tables(db)
    started = time.perf_counter()
    if total > TAIL:
        bulk_filler(db, total - TAIL)
    append_events(TAIL)
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")
    print(f"  growth: {total:,} events in the table ({time.perf_counter() - started:.1f}s to load)")
    start = cursor_before_last(db, TAIL)
    rates = [eventdesk_catch_up("bench-natural-100", start, TAIL) for _ in range(2)]
    targets = live.dismissal_targets(DISMISSALS + 5)
    live.dismiss_all(targets[:5], secret)
    latencies = live.dismiss_all(targets[5:], secret)
    seq_scans = _explain(db, f"plan_{total}.txt")
    read_ms = (_read_ms(db, TAIL), _read_ms(db, total - 1))
    return max(rates), percentile(latencies, 99), seq_scans, read_ms


def run(db: BenchDatabase, results: Results, *, small: int, large: int, rate: float) -> None:
    configure_subscribers(["benchmarks.subscribers.natural_100"])
    secret = live.operator_token()
    small_rate, small_p99, _, _ = _one_size(db, small, secret)
    large_rate, large_p99, seq_scans, (read_tail, read_whole) = _one_size(db, large, secret)
    reset_event_tables(db)
    results.add(f"growth: catch-up b=100 natural, {small:,} in table", small_rate, "events/s")
    results.add(f"growth: catch-up b=100 natural, {large:,} in table", large_rate, "events/s")
    results.add(f"growth: catch-up slowdown {large:,} vs {small:,}", small_rate / large_rate, "x",
                at_most=1.3)  # fmt: skip
    results.add(f"growth: dismissal p99, {small:,} in table", small_p99, "ms")
    results.add(f"growth: dismissal p99, {large:,} in table", large_p99, "ms")
    results.add(f"growth: dismissal p99 slowdown {large:,} vs {small:,}", large_p99 / small_p99,
                "x", at_most=1.3)  # fmt: skip
    results.add(f"growth: batch read, {TAIL:,} events behind (of {large:,})", read_tail, "ms")
    results.add(f"growth: batch read, {large:,} events behind", read_whole, "ms")
    results.add("growth: batch read slowdown, whole table vs 10,000 behind", read_whole / read_tail,
                "x", at_most=1.3)  # fmt: skip
    results.add(f"growth: Seq Scan on events in reading plans ({large:,})", seq_scans, "scans",
                at_most=0)  # fmt: skip
