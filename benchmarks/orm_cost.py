"""``python -m benchmarks.orm_cost``: what one ORM call costs against its own statement.

The plain per-event projection of the one-row-per-stream workload makes, per event, a
``get`` (``get_or_create``'s), a ``save``, and for a stream's first event an ``INSERT``:
2.25 calls per event. This prints, for ``get`` and ``save``, microseconds per call
through Django's ORM and per execution of the very statement Django sends, raw through
psycopg (prepared, as Django's connection prepares), and a bare round trip
(``SELECT 1``): the difference is Django's own Python per call.

Interleaved (raw, ORM, raw, ORM, ...), three rounds of 2,000 calls each, the median; on
the benchmark's private cluster (``--isolated``; stopped afterwards unless it was running),
in a transaction rolled back.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.db import ISOLATED_BASE, BenchDatabase
from config import embedded_pg

CALLS = 2_000
ROUNDS = 3
ROWS = 100


def _per_call_us(run: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    for i in range(CALLS):
        run(i)
    return (time.perf_counter() - started) / CALLS * 1e6


def main() -> int:
    running = embedded_pg.status(embedded_pg.resolve_layout(ISOLATED_BASE)).running
    db = BenchDatabase(isolated=True)
    db.create()
    db.point_django_here()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from benchmarks.models import StreamRow

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    table = StreamRow._meta.db_table
    get_sql = (
        f'SELECT "{table}"."id", "{table}"."projection", "{table}"."stream_id",'
        f' "{table}"."events", "{table}"."last_type", "{table}"."last_position"'
        f' FROM "{table}" WHERE ("{table}"."projection" = %s AND "{table}"."stream_id" = %s)'
        " LIMIT 21"
    )
    save_sql = (
        f'UPDATE "{table}" SET "projection" = %s, "stream_id" = %s, "events" = %s,'
        ' "last_type" = %s, "last_position" = %s WHERE "id" = %s'
    )
    figures: dict[str, list[float]] = {}
    with transaction.atomic():
        rows = [
            StreamRow.objects.create(projection="orm-cost", stream_id=f"s{i}") for i in range(ROWS)
        ]
        raw = connection.connection  # the psycopg connection beneath Django's, same session

        def raw_get(i: int) -> None:
            raw.execute(get_sql, ("orm-cost", f"s{i % ROWS}"), prepare=True).fetchall()

        def raw_save(i: int) -> None:
            row = rows[i % ROWS]
            params = ("orm-cost", row.stream_id, i, "T", i, row.pk)
            raw.execute(save_sql, params, prepare=True)

        def orm_get(i: int) -> None:
            StreamRow.objects.get(projection="orm-cost", stream_id=f"s{i % ROWS}")

        def orm_save(i: int) -> None:
            row = rows[i % ROWS]
            row.events, row.last_type, row.last_position = i, "T", i
            row.save()

        sides = {
            "round trip (SELECT 1), raw": lambda i: raw.execute("SELECT 1", prepare=True),
            "get, raw statement": raw_get,
            "get, ORM": orm_get,
            "save, raw statement": raw_save,
            "save, ORM": orm_save,
        }
        for _ in range(ROUNDS):
            for name, run in sides.items():
                figures.setdefault(name, []).append(_per_call_us(run))
        transaction.set_rollback(True)
    width = max(map(len, figures))
    for name, values in figures.items():
        print(f"{name:<{width}}  {statistics.median(values):7.0f} µs per call")
    for call in ("get", "save"):
        own = statistics.median(figures[f"{call}, ORM"]) - statistics.median(
            figures[f"{call}, raw statement"]
        )
        print(f"{call}: Django's own Python per call {own:.0f} µs")
    if not running:  # started for this run (a harness run beside it keeps its cluster)
        db.stop_isolated()
    return 0


if __name__ == "__main__":
    sys.exit(main())
