"""``python -m benchmarks.upsert_choice``: two short measurements behind the unit of work.

1. Which bulk write the unit of work's flush uses for the rows it changed: Django's
   ``bulk_create(update_conflicts=True)`` or django-pgbulk's ``upsert`` / ``update``
   (only when django-pgbulk is installed; it is not a dependency).
2. The three ways to write a projection: plain per-event ORM, the unit of work
   (``apply_rows``) and a hand-written bulk upsert (``apply_batch``), at batch 100 and
   1000, on two workloads: one row per run (``demo_runs``, four events per run, the
   demo's ``RunBoard``) and hot counters (``demo_agent_stats``, five agents).

Interleaved (A B C, A B C, ...), three rounds, median; every round in a transaction rolled
back. Runs against the database in force (``make setup``'s embedded one): figures from a
shared machine, for choosing; the benchmark harness gives the official ones.
"""

from __future__ import annotations

import functools
import importlib
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import F  # noqa: E402

from demo.models import AgentStats, Run  # noqa: E402
from demo.projections import AgentStatsProjection, RunBoard, fold_run  # noqa: E402
from subscribers.projections import apply_through_rows  # noqa: E402

ROUNDS = 3
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    event_type: str
    data: dict[str, Any]
    recorded_at: datetime = NOW
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def run_events(count: int) -> list[Ev]:
    """Blocks of 50 runs, each run's four events spread over the block (so a batch of 100
    creates rows and the next one changes rows it loaded)."""
    events: list[Ev] = []
    while len(events) < count:
        block = [f"r-{uuid.uuid4().hex[:12]}" for _ in range(50)]
        for phase in ("RunStarted", "StepRecorded", "StepRecorded", "RunCompleted"):
            for run_id in block:
                data = {"run_id": run_id, "agent": "a", "tokens": 10, "outcome": "ok"}
                events.append(Ev(phase, data))
    return events[:count]


def plain_apply(event: Ev) -> None:
    """RunBoard's fold, the natural way: get_or_create, change, save, per event."""
    run, _ = Run.objects.get_or_create(
        run_id=event.data["run_id"], defaults={"agent": event.data["agent"]}
    )
    fold_run(run, event)  # type: ignore[arg-type]
    run.save()


RUN_FIELDS = (
    "agent", "task", "model_name", "status", "steps", "tokens", "cautions",
    "outcome", "debrief", "started_at", "finished_at",
)  # fmt: skip


def by_hand(events: list[Ev]) -> None:
    """What RunBoard.apply_batch was before the unit of work: load, fold, one bulk upsert."""
    ids = {str(event.data["run_id"]) for event in events}
    runs = {run.run_id: run for run in Run.objects.filter(run_id__in=ids)}
    for event in events:
        run_id = str(event.data["run_id"])
        run = runs.setdefault(run_id, Run(run_id=run_id, agent=event.data.get("agent", "?")))
        fold_run(run, event)  # type: ignore[arg-type]
    Run.objects.bulk_create(
        list(runs.values()),
        update_conflicts=True,
        unique_fields=["run_id"],
        update_fields=list(RUN_FIELDS),
    )


def timed(work: Callable[[], None]) -> float:
    with transaction.atomic():
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def interleaved(variants: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, work in variants.items():
            seconds[name].append(timed(work))
    return seconds


def upsert_choice(batches: int = 60, size: int = 100) -> None:
    """Only the write is timed (the insert and load before it are not)."""
    pgbulk: Any
    try:
        pgbulk = importlib.import_module("pgbulk")  # optional: not a dependency
    except ImportError:
        print("django-pgbulk is not installed: only Django's bulk_create measured")
        pgbulk = None
    fields = ["status", "steps", "tokens", "outcome", "finished_at"]

    def loaded_and_changed() -> list[Run]:
        ids = [f"u-{uuid.uuid4().hex[:12]}" for _ in range(size)]
        Run.objects.bulk_create([Run(run_id=i, agent="a") for i in ids])
        runs = list(Run.objects.filter(run_id__in=ids))
        for run in runs:
            run.steps += 3
            run.tokens += 30
            run.status, run.finished_at, run.outcome = Run.Status.COMPLETED, NOW, "ok"
        return runs

    def django_upsert(runs: list[Run]) -> None:
        Run.objects.bulk_create(
            runs, update_conflicts=True, unique_fields=["run_id"], update_fields=fields
        )

    writes: dict[str, Callable[[list[Run]], Any]] = {
        "Django bulk_create(update_conflicts=True)": django_upsert
    }
    if pgbulk is not None:
        writes["pgbulk.upsert"] = lambda runs: pgbulk.upsert(Run, runs, ["run_id"], fields)
        writes["pgbulk.update (UPDATE ... FROM VALUES)"] = lambda runs: pgbulk.update(
            Run, runs, fields
        )
    seconds: dict[str, list[float]] = {name: [] for name in writes}
    for _ in range(ROUNDS):
        for name, write in writes.items():
            with transaction.atomic():
                spent = 0.0
                for _ in range(batches):
                    runs = loaded_and_changed()
                    started = time.perf_counter()
                    write(runs)
                    spent += time.perf_counter() - started
                transaction.set_rollback(True)
            seconds[name].append(spent / batches * 1000)
    print(f"\nUpsert of {size} loaded, changed rows x {batches} batches ({ROUNDS} rounds):")
    for name, values in seconds.items():
        print(
            f"  {name:45} {statistics.median(values):6.2f} ms per batch"
            f" (range {min(values):.2f}-{max(values):.2f})"
        )


Batches = list[list[Ev]]
Way = Callable[[Batches], None]


def three_ways(count: int = 2000) -> None:
    _compare(
        "One row per run (demo_runs, four events per run)",
        run_events(count),
        _ways(RunBoard(), plain_apply, by_hand),
    )
    _compare(
        "Hot counters (demo_agent_stats, five agents)",
        counter_events(count),
        _ways(AgentStatsProjection(), counter_apply, counters_by_hand),
    )


def _ways(
    projection: Any, apply: Callable[[Ev], None], bulk: Callable[[list[Ev]], None]
) -> tuple[Way, Way, Way]:
    def plain(batches: Batches) -> None:
        for batch in batches:
            with transaction.atomic():
                for event in batch:
                    apply(event)

    def rows(batches: Batches) -> None:
        for batch in batches:
            with transaction.atomic():
                apply_through_rows(projection.apply_rows, batch)  # type: ignore[arg-type]

    def raw_batch(batches: Batches) -> None:
        for batch in batches:
            with transaction.atomic():
                bulk(batch)

    return plain, rows, raw_batch


def _compare(title: str, events: list[Ev], ways: tuple[Way, Way, Way]) -> None:
    print(f"\n{title}, {len(events)} events, events/s (median of {ROUNDS}):")
    names = ("plain apply", "unit of work", "apply_batch by hand")
    for size in (100, 1000):
        batches = [events[i : i + size] for i in range(0, len(events), size)]
        variants: dict[str, Callable[[], None]] = {
            name: functools.partial(way, batches) for name, way in zip(names, ways, strict=True)
        }
        seconds = interleaved(variants)
        rates = {name: len(events) / statistics.median(values) for name, values in seconds.items()}
        line = ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
        print(f"  batch {size:5}: {line}")


COUNTERS = {
    "RunStarted": "runs_started",
    "RunCompleted": "runs_completed",
    "StepRecorded": "steps",
}


def counter_events(count: int) -> list[Ev]:
    kinds = list(COUNTERS)
    return [
        Ev(kinds[n % len(kinds)], {"agent": f"agent-{n % 5}", "run_id": "r"}) for n in range(count)
    ]


def counter_apply(event: Ev) -> None:
    """The natural way (what AgentStatsProjection.apply was): get_or_create, F() + 1."""
    agent, field = event.data["agent"], COUNTERS[event.event_type]
    AgentStats.objects.get_or_create(agent=agent)
    AgentStats.objects.filter(agent=agent).update(**{field: F(field) + 1})


def counters_by_hand(events: list[Ev]) -> None:
    """Sum in memory, one INSERT ... ON CONFLICT DO UPDATE SET n = n + EXCLUDED.n."""
    sums: dict[str, dict[str, int]] = {}
    for event in events:
        row = sums.setdefault(event.data["agent"], dict.fromkeys(COUNTERS.values(), 0))
        row[COUNTERS[event.event_type]] += 1
    columns = list(COUNTERS.values())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO demo_agent_stats (agent, runs_failed, cautions, {', '.join(columns)})"
            f" SELECT a, 0, 0, {', '.join(f'c{i}' for i in range(len(columns)))}"
            f" FROM unnest(%s::text[], {', '.join('%s::int[]' for _ in columns)})"
            f" AS t(a, {', '.join(f'c{i}' for i in range(len(columns)))})"
            " ON CONFLICT (agent) DO UPDATE SET "
            + ", ".join(f"{c} = demo_agent_stats.{c} + EXCLUDED.{c}" for c in columns),
            [list(sums), *[[row[c] for row in sums.values()] for c in columns]],
        )


def main() -> None:
    upsert_choice()
    three_ways()


if __name__ == "__main__":
    main()
