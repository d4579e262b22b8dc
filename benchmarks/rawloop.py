"""The limit: the projection loop written directly with psycopg 3, no Django, no framework.

Per transaction: lock the bookmark ``FOR UPDATE``, select the next batch under
the horizon in ``(transaction_id, position)`` order (Eventdesk's own named
query), write each event, advance the bookmark, commit.
"""

from __future__ import annotations

import time

import psycopg

from benchmarks.db import BenchDatabase
from eventstore import sql

LOCK_BOOKMARK = """
SELECT last_transaction_id, last_position FROM projection_bookmarks
WHERE subscriber_name = %s FOR UPDATE SKIP LOCKED
"""
ADVANCE_BOOKMARK = """
UPDATE projection_bookmarks SET last_transaction_id = %s, last_position = %s, updated_at = now()
WHERE subscriber_name = %s
"""
# What the natural ORM projection sends per event: an UPDATE, and an INSERT the first time.
INCREMENT = """
UPDATE bench_type_counts SET count = count + 1 WHERE projection = %s AND event_type = %s
"""
# Eventdesk's own reading query (it walks the events_global_order index).
READ_NEXT = sql.READ_AFTER
INSERT_FIRST = "INSERT INTO bench_type_counts (projection, event_type, count) VALUES (%s, %s, 1)"
# The pipelined loop sends one upsert per event, all of a batch in one pipeline.
UPSERT = """
INSERT INTO bench_type_counts (projection, event_type, count) VALUES (%s, %s, 1)
ON CONFLICT (projection, event_type) DO UPDATE SET count = bench_type_counts.count + 1
"""


# The one-row-per-stream twin: one pipelined upsert per event (the raw-SQL limit of a
# projection that keeps a row per stream, RunBoard's shape).
STREAM_UPSERT = """
INSERT INTO bench_stream_rows (projection, stream_id, events, last_type, last_position)
VALUES (%s, %s, 1, %s, %s)
ON CONFLICT (projection, stream_id) DO UPDATE SET events = bench_stream_rows.events + 1,
    last_type = EXCLUDED.last_type, last_position = EXCLUDED.last_position
"""


def catch_up(
    db: BenchDatabase, name: str, batch_size: int, *, pipelined: bool, streams: bool = False
) -> tuple[int, float]:
    """Drain everything past the bookmark ``name``; return (events, seconds).
    ``streams``: the one-row-per-stream workload (pipelined upserts) instead of counters."""
    processed = 0
    with db.connect() as conn:
        started = time.perf_counter()
        while True:
            n = _one_batch(conn, name, batch_size, pipelined, streams)
            if n == 0:
                break
            processed += n
        elapsed = time.perf_counter() - started
    return processed, elapsed


def _one_batch(
    conn: psycopg.Connection, name: str, batch_size: int, pipelined: bool, streams: bool
) -> int:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(LOCK_BOOKMARK, (name,))
        row = cur.fetchone()
        if row is None:
            return 0
        cur.execute(READ_NEXT, {"tx": row[0], "pos": row[1], "limit": batch_size})
        events = cur.fetchall()
        if not events:
            return 0
        if streams:
            cur.executemany(
                STREAM_UPSERT, [(name, event[3], event[5], event[0]) for event in events]
            )
        elif pipelined:
            cur.executemany(UPSERT, [(name, event[5]) for event in events])
        else:
            for event in events:
                cur.execute(INCREMENT, (name, event[5]))
                if cur.rowcount == 0:
                    cur.execute(INSERT_FIRST, (name, event[5]))
        last = events[-1]
        cur.execute(ADVANCE_BOOKMARK, (int(last[1]), last[0], name))
    return len(events)
