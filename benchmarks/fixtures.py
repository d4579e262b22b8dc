"""Events for the benchmarks: appended through Eventdesk, or bulk-loaded as filler."""

from __future__ import annotations

import uuid

from benchmarks.db import BenchDatabase
from eventstore.types import Cursor, NewEvent, StreamAppend

#: The catch-up projection counts these (one counter row per type).
EVENT_TYPES = tuple(f"bench.Type{letter}" for letter in "ABCDE")
STREAMS_PER_BATCH = 10


def batch_appends(first: int, count: int, prefix: str = "bench") -> list[StreamAppend]:
    """``count`` events numbered from ``first``, spread over up to 10 new streams."""
    per_stream = max(1, -(-count // STREAMS_PER_BATCH))
    appends: list[StreamAppend] = []
    for start in range(first, first + count, per_stream):
        stop = min(start + per_stream, first + count)
        events = [
            NewEvent(EVENT_TYPES[n % len(EVENT_TYPES)], {"n": n, "payload": "x" * 40})
            for n in range(start, stop)
        ]
        appends.append(StreamAppend(f"{prefix}-{uuid.uuid4()}", events, expected_version=0))
    return appends


def append_events(count: int, batch: int = 1_000, prefix: str = "bench") -> None:
    """Append ``count`` events through ``append_streams`` in transactions of ``batch``."""
    from eventstore.store import get_event_store

    store = get_event_store()
    for first in range(0, count, batch):
        store.append_streams(batch_appends(first, min(batch, count - first), prefix))


#: The one-row-per-stream workload: streams of four events, like a short demo run.
STREAM_EVENT_TYPES = ("bench.RunStarted", "bench.StepRecorded", "bench.StepRecorded",
                      "bench.RunCompleted")  # fmt: skip


def append_stream_events(count: int, batch: int = 1_000) -> None:
    """``count`` events in streams of four, ``batch`` events (a quarter as many streams)
    per transaction: a batch of 100 read in global order holds 25 streams, four events each."""
    from eventstore.store import get_event_store

    store = get_event_store()
    per_stream = len(STREAM_EVENT_TYPES)
    for first in range(0, count, batch):
        appends = []
        for start in range(first, min(first + batch, count), per_stream):
            events = [
                NewEvent(STREAM_EVENT_TYPES[k], {"n": start + k, "payload": "x" * 40})
                for k in range(min(per_stream, count - start))
            ]
            appends.append(StreamAppend(f"run-{uuid.uuid4()}", events, expected_version=0))
        store.append_streams(appends)


def bulk_filler(db: BenchDatabase, count: int, chunk: int = 100_000) -> None:
    """``count`` events inserted set-wise (growth filler: fast, one transaction per chunk)."""
    with db.connect(autocommit=True) as conn:
        for first in range(0, count, chunk):
            n = min(chunk, count - first)
            conn.execute(
                """
                INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
                SELECT gen_random_uuid(), 'filler-' || (%(first)s + g) / 100,
                       (%(first)s + g) %% 100 + 1, 'bench.Filler',
                       jsonb_build_object('n', %(first)s + g, 'payload', repeat('x', 40)),
                       '{}'::jsonb
                FROM generate_series(0, %(n)s - 1) AS g
                """,
                {"first": first, "n": n},
            )
        conn.execute("ANALYZE events")


def cursor_before_last(db: BenchDatabase, count: int) -> Cursor:
    """The cursor that leaves exactly the last ``count`` visible events to read."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute(
            """
            SELECT transaction_id::text::bigint, position FROM events
            ORDER BY transaction_id DESC, position DESC OFFSET %s LIMIT 1
            """,
            (count,),
        ).fetchone()
    return Cursor(0, 0) if row is None else Cursor(int(row[0]), int(row[1]))


def event_count(db: BenchDatabase) -> int:
    with db.connect(autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0
