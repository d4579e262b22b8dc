"""The peer: the ``eventsourcing`` library's projection, with its PostgreSQL persistence.

Used the way its documentation recommends for a read model: a ``Projection``
run by a ``ProjectionRunner`` that subscribes to the writing application, and a
materialised view (a ``PostgresTrackingRecorder`` subclass) that upserts the
counter and inserts the tracking record in one transaction per event. The
events are the library's own (its own ``*_events`` table in the benchmark
database): same count, five event types, streams of 100 events.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from benchmarks.db import BenchDatabase

WRITER = "BenchWriter"
PROJECTION = "benchcounts"


def _classes() -> tuple[Any, Any, Any]:
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

    class CountsProjection(Projection[CountsView]):
        name = PROJECTION

        @singledispatchmethod
        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.view.incr(type(domain_event).__qualname__, tracking)

    return BenchWriter, CountsProjection, CountsView


def _env(db: BenchDatabase) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": db.name,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": str(db.port),
        "POSTGRES_USER": db.user,
        "POSTGRES_PASSWORD": "",
    }


def _drop_tables(db: BenchDatabase) -> None:
    with db.connect(autocommit=True) as conn:
        for table in (f"{WRITER.lower()}_events", f"{PROJECTION}_tracking", "bench_es_counts"):
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')


def catch_up(db: BenchDatabase, count: int) -> tuple[int, float]:
    """Write ``count`` events with the library, then time its projection catching up."""
    from eventsourcing.projection import ProjectionRunner

    writer_cls, projection_cls, view_cls = _classes()
    env = _env(db)
    _drop_tables(db)
    writer = writer_cls(env=env)
    per_aggregate, per_save = 100, 10
    written = 0
    while written < count:
        aggregates = min(per_save, -(-(count - written) // per_aggregate))
        writer.write(aggregates, per_aggregate)
        written += aggregates * per_aggregate
    last = writer.recorder.max_notification_id()
    writer.close()
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=writer_cls, projection_class=projection_cls, view_class=view_cls, env=env
    ) as runner:
        runner.view.wait(application_name=WRITER, notification_id=last, timeout=600)
        elapsed = time.perf_counter() - started
    with db.connect(autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(counter), 0) FROM bench_es_counts").fetchone()
    total = int(row[0]) if row else 0
    if total != written:
        raise RuntimeError(f"the eventsourcing projection counted {total} of {written} events")
    _drop_tables(db)
    return total, elapsed
