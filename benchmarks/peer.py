"""The peer: the ``eventsourcing`` library's projection, with its PostgreSQL persistence.

Used the way its documentation recommends for a read model: a ``Projection``
run by a ``ProjectionRunner`` that subscribes to the writing application, and a
materialised view (a ``PostgresTrackingRecorder`` subclass) that upserts the
counter and inserts the tracking record in one transaction per event. The
events are the library's own (its own ``*_events`` table in the benchmark
database): same count, five event types, streams of 100 events.

The one-row-per-stream workload has its equivalent: a view that upserts one row per
aggregate (its event count and last type) with the tracking record, per event, on
aggregates of four events.
"""

from __future__ import annotations

import functools
import time
from typing import Any
from uuid import UUID

from benchmarks.db import BenchDatabase
from benchmarks.stable import Work

WRITER = "BenchWriter"
PROJECTION = "benchcounts"


@functools.cache  # the library refuses a second class for the same topic
def _classes() -> tuple[Any, dict[str, tuple[Any, Any]]]:
    # Imported lazily: the library is an optional (bench) dependency.
    from eventsourcing.application import Application
    from eventsourcing.dispatch import singledispatchmethod
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.persistence import Tracking
    from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
    from eventsourcing.projection import Projection
    from psycopg.sql import SQL, Identifier

    class Item(Aggregate):
        @event("TypeB")
        def b(self) -> None: ...

        @event("TypeC")
        def c(self) -> None: ...

        @event("TypeD")
        def d(self) -> None: ...

        @event("TypeE")
        def e(self) -> None: ...

    class BenchWriter(Application[UUID]):
        name = WRITER

        def write(self, aggregates: int, events_each: int) -> None:
            items = []
            for _ in range(aggregates):
                item = Item()  # its Created event stands for TypeA
                for n in range(events_each - 1):
                    (item.b, item.c, item.d, item.e)[n % 4]()
                items.append(item)
            self.save(*items)

    class CountsView(PostgresTrackingRecorder):
        """The read model: one counter per event type, written with its tracking record."""

        def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
            super().__init__(datastore, **kwargs)
            table = SQL("{0}.{1}").format(
                Identifier(self.datastore.schema), Identifier("bench_es_counts")
            )
            self.sql_create_statements.append(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (counter_name text PRIMARY KEY, counter bigint)"
                ).format(table)
            )
            self.incr_statement = SQL(
                "INSERT INTO {0} VALUES (%s, 1) ON CONFLICT (counter_name) DO UPDATE"
                " SET counter = {0}.counter + 1"
            ).format(table)

        def incr(self, name: str, tracking: Tracking) -> None:
            with self.datastore.transaction(commit=True) as curs:
                self._insert_tracking(curs, tracking)
                curs.execute(self.incr_statement, (name,), prepare=True)

    class StreamsView(CountsView):
        def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
            super().__init__(datastore, **kwargs)
            table = SQL("{0}.{1}").format(
                Identifier(self.datastore.schema), Identifier("bench_es_streams")
            )
            self.sql_create_statements.append(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (stream_id text PRIMARY KEY, events bigint,"
                    " last_type text, last_position bigint)"
                ).format(table)
            )
            # The same row as Eventdesk's: the count, the last type and the last position.
            self.stream_statement = SQL(
                "INSERT INTO {0} VALUES (%s, 1, %s, %s) ON CONFLICT (stream_id) DO UPDATE"
                " SET events = {0}.events + 1, last_type = EXCLUDED.last_type,"
                " last_position = EXCLUDED.last_position"
            ).format(table)

        def upsert_stream(self, stream: str, kind: str, tracking: Tracking) -> None:
            """The one-row-per-stream view: the aggregate's row, upserted per event."""
            position = tracking.notification_id
            with self.datastore.transaction(commit=True) as curs:
                self._insert_tracking(curs, tracking)
                curs.execute(self.stream_statement, (stream, kind, position), prepare=True)

    class CountsProjection(Projection[CountsView]):
        name = PROJECTION

        @singledispatchmethod
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.incr(type(domain_event).__qualname__, tracking)

    class StreamsProjection(Projection[StreamsView]):
        name = PROJECTION

        @singledispatchmethod
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.upsert_stream(
                str(domain_event.originator_id), type(domain_event).__qualname__, tracking
            )

    return BenchWriter, {"counters": (CountsProjection, CountsView),
                         "streams": (StreamsProjection, StreamsView)}  # fmt: skip


def _env(db: BenchDatabase) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.name,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user,
        "POSTGRES_PASSWORD": "",
    }


VIEW_TABLES = (f"{PROJECTION}_tracking", "bench_es_counts", "bench_es_streams")


def _drop_tables(db: BenchDatabase, tables: tuple[str, ...]) -> None:
    with db.connect(autocommit=True) as conn:
        for table in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')


#: How often the benchmark looks whether the peer has caught up.
POLL_SECONDS = 0.005


def _wait_for(runner: Any, last: int, timeout: float = 600) -> None:
    """Until ``runner``'s view has tracked notification ``last``, looked at every 5 ms.

    Not the library's own ``view.wait``: it polls with backoff, 0.1, 0.3, 0.7 and 1.5 s
    after it starts, then every 0.8 s, so a catch-up's time came out rounded up to the
    next of those (the peer's rate sat at 1,300/s or 852/s, whatever it did)."""
    deadline = time.perf_counter() + timeout
    while not runner.view.has_tracking_id(WRITER, last):
        if runner.is_interrupted.is_set():
            raise RuntimeError("the eventsourcing projection runner stopped before catching up")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the eventsourcing projection did not catch up in {timeout:g} s")
        time.sleep(POLL_SECONDS)


class PeerCatchUp:
    """The library's events written once; each ``measure`` times its projection catching
    up on all of them from nothing (view and tracking tables dropped first).

    ``workload``: "counters" (one counter per event type, streams of 100 events) or
    "streams" (one row per aggregate, aggregates of four events).
    """

    def __init__(self, db: BenchDatabase, count: int, workload: str = "counters") -> None:
        self.db, self.workload = db, workload
        self.writer_cls, projections = _classes()
        self.projection_cls, self.view_cls = projections[workload]
        self.env = _env(db)
        _drop_tables(db, (f"{WRITER.lower()}_events", *VIEW_TABLES))
        writer = self.writer_cls(env=self.env)
        per_aggregate, per_save = (100, 10) if workload == "counters" else (4, 250)
        written = 0
        while written < count:
            aggregates = min(per_save, -(-(count - written) // per_aggregate))
            writer.write(aggregates, per_aggregate)
            written += aggregates * per_aggregate
        self.written = written
        self.last = writer.recorder.max_notification_id()
        writer.close()

    def measure(self) -> float:
        """One catch-up from nothing; events/s."""
        work = self.work()
        return work.amount / work.seconds

    def work(self) -> Work:
        """One catch-up from nothing: the events and the seconds."""
        from eventsourcing.projection import ProjectionRunner

        _drop_tables(self.db, VIEW_TABLES)
        started = time.perf_counter()
        with ProjectionRunner(
            application_class=self.writer_cls,
            projection_class=self.projection_cls,
            view_class=self.view_cls,
            env=self.env,
        ) as runner:
            _wait_for(runner, self.last)
            elapsed = time.perf_counter() - started
        query = (
            "SELECT coalesce(sum(counter), 0) FROM bench_es_counts"
            if self.workload == "counters"
            else "SELECT coalesce(sum(events), 0) FROM bench_es_streams"
        )
        with self.db.connect(autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        total = int(row[0]) if row else 0
        if total != self.written:
            raise RuntimeError(
                f"the eventsourcing projection ({self.workload}) counted {total}"
                f" of {self.written} events"
            )
        return Work(total, elapsed)

    def close(self) -> None:
        _drop_tables(self.db, (f"{WRITER.lower()}_events", *VIEW_TABLES))
