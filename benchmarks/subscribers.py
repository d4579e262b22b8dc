"""The subscribers the benchmarks run through Eventdesk's worker.

Configured by dotted path (``EVENTDESK_SUBSCRIBERS=benchmarks.subscribers.natural_100``),
the way an application configures its own.
"""

from __future__ import annotations

import collections
import os
import time
from typing import Any

import psycopg
from django.db import connection, models
from django.db.models import F

from benchmarks import rawloop
from benchmarks.models import Arrival, RebuildStream, StreamRow, TypeCount
from eventstore.types import RecordedEvent, StreamAppend

BULK_UPSERT = """
INSERT INTO bench_type_counts (projection, event_type, count)
SELECT %s, t.event_type, t.n FROM unnest(%s::text[], %s::bigint[]) AS t(event_type, n)
ON CONFLICT (projection, event_type) DO UPDATE SET count = bench_type_counts.count + EXCLUDED.count
"""


class ClockTimestamp(models.Func):
    """``clock_timestamp()``: the real time at which the statement ran (not the transaction's)."""

    template = "clock_timestamp()"
    output_field = models.DateTimeField()


class NaturalCounter:
    """A projection written the natural way: ``apply`` per event, through the ORM."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply(self, event: RecordedEvent) -> None:
        counts = TypeCount.objects.filter(projection=self.name, event_type=event.event_type)
        if not counts.update(count=F("count") + 1):
            TypeCount.objects.create(projection=self.name, event_type=event.event_type, count=1)


class SqlCounter:
    """The natural projection's statements, sent through Django's cursor instead of the ORM:
    what the framework (worker, transaction, Django's connection) costs on its own."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply(self, event: RecordedEvent) -> None:
        with connection.cursor() as cursor:
            cursor.execute(rawloop.INCREMENT, [self.name, event.event_type])
            if not cursor.rowcount:
                cursor.execute(rawloop.INSERT_FIRST, [self.name, event.event_type])


class WorkerSqlCounter:
    """The raw loop's statements sent through the psycopg connection beneath Django's (the
    same connection and transaction, with psycopg's own cursor, as the raw loop sends them):
    what the worker itself costs, apart from Django's cursor wrapper. Like the raw loop, it
    sends them on one cursor, kept while the connection beneath stays the same, rather than
    a new cursor per event."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size
        self._cursor: psycopg.Cursor[Any] | None = None

    def apply(self, event: RecordedEvent) -> None:
        raw = connection.connection
        cursor = self._cursor
        if cursor is None or cursor.closed or cursor.connection is not raw:
            cursor = self._cursor = raw.cursor()
        cursor.execute(rawloop.INCREMENT, (self.name, event.event_type))
        if not cursor.rowcount:
            cursor.execute(rawloop.INSERT_FIRST, (self.name, event.event_type))


class RowsCounter:
    """The counters through the unit of work: rows loaded once, changed in memory, written
    once per batch (``apply_rows``). ``rows`` is ``subscribers.rows.Rows``."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply_rows(self, events: list[RecordedEvent], rows: Any) -> None:
        types = {event.event_type for event in events}
        rows.load(TypeCount, ("projection", "event_type"), [(self.name, t) for t in types])
        for event in events:
            counter = rows.get_or_new(TypeCount, projection=self.name, event_type=event.event_type)
            counter.count += 1


class BatchCounter:
    """The same read model through the batch hook: one bulk upsert per batch."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        counts = collections.Counter(event.event_type for event in events)
        with connection.cursor() as cursor:
            cursor.execute(BULK_UPSERT, [self.name, list(counts), list(counts.values())])


natural_1 = NaturalCounter("bench-natural-1", 1)
natural_100 = NaturalCounter("bench-natural-100", 100)
natural_1000 = NaturalCounter("bench-natural-1000", 1_000)
sql_1 = SqlCounter("bench-sql-1", 1)
sql_100 = SqlCounter("bench-sql-100", 100)
sql_1000 = SqlCounter("bench-sql-1000", 1_000)
batch_1 = BatchCounter("bench-batch-1", 1)
batch_100 = BatchCounter("bench-batch-100", 100)
batch_1000 = BatchCounter("bench-batch-1000", 1_000)
worker_sql_1 = WorkerSqlCounter("bench-worker_sql-1", 1)
worker_sql_100 = WorkerSqlCounter("bench-worker_sql-100", 100)
worker_sql_1000 = WorkerSqlCounter("bench-worker_sql-1000", 1_000)
rows_1 = RowsCounter("bench-rows-1", 1)
rows_100 = RowsCounter("bench-rows-100", 100)
rows_1000 = RowsCounter("bench-rows-1000", 1_000)


# --- one row per stream (the second catch-up workload, RunBoard's shape) ----------------


def _fold(row: StreamRow, event: RecordedEvent) -> None:
    row.events += 1
    row.last_type = event.event_type
    row.last_position = event.position


class NaturalStreamBoard:
    """One row per stream, the plain per-event ORM way: ``get_or_create``, then ``save``."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply(self, event: RecordedEvent) -> None:
        row, _ = StreamRow.objects.get_or_create(projection=self.name, stream_id=event.stream_id)
        _fold(row, event)
        row.save()


class UpdateFirstStreamBoard:
    """One row per stream, the plain per-event ORM way with fewer calls: one
    ``filter().update()`` per event, and a ``create`` when it updated no row (a stream's
    first event): 1.25 ORM calls per event, against ``get_or_create`` and ``save``'s 2.25."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply(self, event: RecordedEvent) -> None:
        updated = StreamRow.objects.filter(projection=self.name, stream_id=event.stream_id).update(
            events=F("events") + 1, last_type=event.event_type, last_position=event.position
        )
        if not updated:
            StreamRow.objects.create(
                projection=self.name,
                stream_id=event.stream_id,
                events=1,
                last_type=event.event_type,
                last_position=event.position,
            )


class BulkStreamBoard:
    """One row per stream as the demo's RunBoard writes it by hand: the batch's rows
    loaded once, folded in memory, one ``bulk_create(update_conflicts=True)``."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply_batch(self, events: list[RecordedEvent]) -> None:
        streams = {event.stream_id for event in events}
        found = StreamRow.objects.filter(projection=self.name, stream_id__in=streams)
        rows = {row.stream_id: row for row in found}
        for event in events:
            row = rows.setdefault(
                event.stream_id, StreamRow(projection=self.name, stream_id=event.stream_id)
            )
            _fold(row, event)
        StreamRow.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["projection", "stream_id"],
            update_fields=["events", "last_type", "last_position"],
        )


class RowsStreamBoard:
    """One row per stream through the unit of work (``apply_rows``)."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size

    def apply_rows(self, events: list[RecordedEvent], rows: Any) -> None:
        # A stream's first event makes its row: those keys are known to be new (no query;
        # a row there after all fails the flush's INSERT). The others are loaded.
        first = {event.stream_id for event in events if event.stream_version == 1}
        rows.assume_new(StreamRow, ("projection", "stream_id"), [(self.name, s) for s in first])
        later = {event.stream_id for event in events} - first
        rows.load(StreamRow, ("projection", "stream_id"), [(self.name, s) for s in later])
        for event in events:
            row = rows.get_or_new(StreamRow, projection=self.name, stream_id=event.stream_id)
            _fold(row, event)


streams_natural_100 = NaturalStreamBoard("bench-streams-natural-100", 100)
streams_update_100 = UpdateFirstStreamBoard("bench-streams-update-100", 100)
streams_batch_100 = BulkStreamBoard("bench-streams-batch-100", 100)
streams_rows_100 = RowsStreamBoard("bench-streams-rows-100", 100)

PING = "bench.Ping"
SLEEP = "bench.Sleep"


class ArrivalProjection:
    """Records when each ping reached the read model (end-to-end latency)."""

    name = "bench-arrivals"
    batch_size = 100
    event_types = (PING,)
    start_at_head = True

    def apply(self, event: RecordedEvent) -> None:
        Arrival.objects.create(
            event_id=event.event_id, projection=self.name, projected_at=ClockTimestamp()
        )


class SleepingReaction:
    """A slow reaction: ``handle`` sleeps (``BENCH_REACTION_SLEEP`` seconds, default 0.2).

    It writes one line per call to ``BENCH_REACTION_LOG``: wall-clock start and end,
    and whether this thread's database connection was inside a transaction.
    """

    name = "bench-sleeper"
    batch_size = 1
    event_types = (SLEEP,)
    start_at_head = True

    def __init__(self) -> None:
        self.sleep = float(os.environ.get("BENCH_REACTION_SLEEP", "0.2"))
        self.log = os.environ.get("BENCH_REACTION_LOG", "")

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        start = time.time()
        in_transaction = _in_transaction()
        time.sleep(self.sleep)
        end = time.time()
        if self.log:
            with open(self.log, "a") as log:
                log.write(f"{event.event_id} {start} {end} {int(in_transaction)}\n")
        return None


def _in_transaction() -> bool:
    if connection.in_atomic_block:
        return True
    raw = connection.connection
    if raw is None:
        return False
    return bool(raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


arrivals = ArrivalProjection()
sleeper = SleepingReaction()


JOB = "bench.Job"


class StreamSleeper:
    """A stream-ordered reaction whose ``handle`` sleeps ``BENCH_REACTION_SLEEP`` seconds
    (default 0.2, a stand-in for the LLM call); a job marked ``poison`` always fails."""

    event_types = (JOB,)
    ordering = "stream"

    def __init__(self, name: str, concurrency: int, ordering: str = "stream") -> None:
        self.name = name
        self.concurrency = concurrency
        self.ordering = ordering
        self.sleep = float(os.environ.get("BENCH_REACTION_SLEEP", "0.2"))

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        if event.data.get("poison"):
            raise RuntimeError("this job always fails")
        if self.sleep:
            time.sleep(self.sleep)
        return None


stream_1 = StreamSleeper("bench-stream-1", 1)
stream_8 = StreamSleeper("bench-stream-8", 8)
stream_32 = StreamSleeper("bench-stream-32", 32)
global_sleeper = StreamSleeper("bench-global", 1, ordering="global")


class MetricsProbe:
    """A projection that is never run: a bookmark for the /metrics scrape to report on
    (half of them with ``event_types``, so both lag counts are measured)."""

    def __init__(self, name: str, event_types: tuple[str, ...] | None) -> None:
        self.name = name
        if event_types is not None:
            self.event_types = event_types

    def apply(self, event: RecordedEvent) -> None:
        raise RuntimeError("a metrics probe is never run: it is only reported on")


METRICS_PROBES = 20
for _n in range(METRICS_PROBES):
    globals()[f"metrics_probe_{_n:02d}"] = MetricsProbe(
        f"bench-metrics-{_n:02d}", ("bench.Rare",) if _n % 2 else None
    )


class RebuildStreamBoard:
    """The rebuild benchmark's projection: one row per stream in a table of its own
    (``bench_rebuild_streams``), through the unit of work; the demo's run events."""

    name = "bench-rebuild-streams"
    batch_size = 100
    event_types = ("RunStarted", "StepRecorded", "RunCompleted", "RunFailed")

    models = (RebuildStream,)

    def apply_rows(self, events: list[RecordedEvent], rows: Any) -> None:
        rows.load(RebuildStream, stream_id={event.stream_id for event in events})
        for event in events:
            row = rows.get_or_new(RebuildStream, stream_id=event.stream_id)
            row.events += 1
            row.last_type = event.event_type
            row.last_position = event.position


rebuild_streams = RebuildStreamBoard()
