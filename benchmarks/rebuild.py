"""Projection rebuilds (issue 17): throughput against the raw limit, the readers' longest
wait during the swap, and the live projection's p99 during each phase of a rebuild.

The history: ``events`` demo run events (runs of four: started, two steps or a caution,
completed or failed), bulk-inserted set-wise. Each live projection is caught up on it
first (its tables full, its bookmark at the head), so every rebuild replays the whole
history, compares against full live tables, and swaps.

* **Throughput**: a rebuild from start to swapped (copying schema, building, indexing,
  catching up, verifying, and the swap act), in-process (``run_rebuilds_once``, the
  worker's ``RebuildRunner``), events replayed / seconds; interleaved with the pipelined
  raw loop of the catch-up section (``rawloop.catch_up``, one-row-per-stream upserts,
  batch 1,000 as the rebuild's) on the same events, each from a settled state.
* **Readers' wait**: two threads query the projection's first live table in a loop
  (own connections, autocommit) from 0.3 s before the swap act to 0.2 s after it; the
  longest query that overlapped the swap.
* **Live p99 per phase**: a ``run_subscribers`` process runs the latency projection and
  ``bench-rebuild-streams``; pings at ``rate``/s; a rebuild started with
  ``--swap-when-verified`` is run by that worker's rebuild thread; each ping counts in
  the phase the rebuild was in when it was committed (sampled every 5 ms). Without a
  rebuild and with one interleaved, each from a settled state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks import live
from benchmarks.catchup import configure_subscribers, raw_work, run_worker_once
from benchmarks.db import BenchDatabase
from benchmarks.fixtures import event_count
from benchmarks.results import Results, percentile
from benchmarks.stable import interleaved, settle
from eventstore.types import Cursor

BENCH = "bench-rebuild-streams"
BENCH_PATH = "benchmarks.subscribers.rebuild_streams"
#: The demo projections that declare ``models`` and are fast enough for a whole history
#: (``demo.scorecards``, plain per-event ORM over every run event, is left out: see README).
DEMO = {
    "demo.run_board": "demo.projections.RunBoard",
    "demo.agent_stats": "demo.projections.AgentStatsProjection",
    "demo.caution_log": "demo.projections.CautionLog",
}
PATHS = [BENCH_PATH, *DEMO.values()]
TABLES = "bench_rebuild_streams, demo_runs, demo_agent_stats, demo_cautions, projection_rebuilds"

HISTORY = """
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
SELECT gen_random_uuid(), 'rrun-' || r, k + 1,
       CASE k WHEN 0 THEN 'RunStarted' WHEN 1 THEN 'StepRecorded'
              WHEN 2 THEN CASE WHEN mod(r, 50) = 0 THEN 'CautionRaised' ELSE 'StepRecorded' END
              ELSE CASE WHEN mod(r, 10) = 0 THEN 'RunFailed' ELSE 'RunCompleted' END END,
       jsonb_build_object('run_id', 'rrun-' || r, 'agent', 'agent-' || mod(r, 5),
                          'at', '2026-12-01T00:00:00+00:00', 'tokens', 100 + mod(n, 900),
                          'task', 'bench', 'model', 'fake', 'outcome', 'ok', 'error', 'boom',
                          'message', 'caution', 'severity', 'warning'),
       '{}'::jsonb
FROM generate_series(%(first)s, %(first)s + %(n)s - 1) AS n,
     LATERAL (SELECT n / 4 AS r, mod(n, 4) AS k) AS x
ORDER BY n
"""


def reset(db: BenchDatabase) -> None:
    """No events, bookmarks, rebuilds, read models, nor a rebuild's schemas and roles."""
    with db.connect(autocommit=True) as conn:
        for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'eventdesk\\_rebuild\\_%'"
            " OR nspname LIKE 'eventdesk\\_kept\\_%'"
        ).fetchall():
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        for (role,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'eventdesk\\_rebuild\\_' ||"
            " (SELECT oid FROM pg_database WHERE datname = current_database()) || '\\_%'"
        ).fetchall():
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
        conn.execute(
            f"TRUNCATE events, projection_bookmarks, bench_stream_rows, bench_arrivals, {TABLES}"
            " RESTART IDENTITY CASCADE"
        )


def history(db: BenchDatabase, events: int, chunk: int = 100_000) -> None:
    with db.connect(autocommit=True) as conn:
        for first in range(0, events, chunk):
            conn.execute(HISTORY, {"first": first, "n": min(chunk, events - first)})
        conn.execute("ANALYZE events")


class Readers:
    """Threads querying a live table in a loop; each query's (start, end)."""

    def __init__(self, db: BenchDatabase, table: str, threads: int = 2) -> None:
        self.db, self.table = db, table
        self.spans: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with self.db.connect(autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute(f"SELECT * FROM {self.table} LIMIT 1").fetchall()
                self.spans.append((started, time.perf_counter()))

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def longest(self, begin: float, end: float) -> float:
        """The longest query (ms) that overlapped [begin, end]."""
        return max(((b - a) * 1000 for a, b in self.spans if b >= begin and a <= end), default=0)


def _registry() -> Any:
    from subscribers.registry import build_registry

    return build_registry(PATHS)


def _start(name: str, registry: Any, *, swap_when_verified: bool = False) -> int:
    from django.db import transaction

    from subscribers.rebuilds import start_rebuild

    with transaction.atomic():
        rebuild = start_rebuild(name, reason="benchmark", started_by=None, registry=registry,
                                swap_when_verified=swap_when_verified)  # fmt: skip
    return int(rebuild.pk)


def _swap(name: str, registry: Any) -> None:
    from django.db import transaction

    from subscribers.rebuilds import swap_rebuild, with_lock_retries
    from subscribers.rebuilds.audit import record_decision

    def act() -> None:
        with transaction.atomic(durable=True):
            result = swap_rebuild(name, registry=registry)
            record_decision("RebuildSwapped", projection=name, inputs=result.as_inputs(),
                            actor=None, reason="benchmark")  # fmt: skip

    with_lock_retries(act, name=name)


def rebuild_once(db: BenchDatabase, name: str, waits: dict[str, list[float]]) -> float:
    """A rebuild of ``name`` from start to swapped, in-process; events/s. The readers'
    longest wait during its swap goes to ``waits[name]``."""
    from subscribers.models import Rebuild
    from subscribers.rebuilds.runner import run_rebuilds_once

    registry = _registry()
    started = time.perf_counter()
    pk = _start(name, registry)
    run_rebuilds_once(registry, owner="bench")
    built = time.perf_counter() - started
    rebuild = Rebuild.objects.get(pk=pk)
    if rebuild.phase != Rebuild.Phase.READY:
        raise RuntimeError(f"rebuild of {name}: {rebuild.phase} ({rebuild.last_error[:300]})")
    with Readers(db, str(rebuild.tables[0]["table"])) as readers:
        time.sleep(0.3)
        begin = time.perf_counter()
        _swap(name, registry)
        end = time.perf_counter()
        time.sleep(0.2)
    waits.setdefault(name, []).append(readers.longest(begin, end))
    rebuild.refresh_from_db()
    if rebuild.phase != Rebuild.Phase.SWAPPED:
        raise RuntimeError(f"rebuild of {name} not swapped: {rebuild.phase}")
    return rebuild.events_done / (built + end - begin)


def run(db: BenchDatabase, results: Results, *, events: int, rate: float, rounds: int) -> None:
    reset(db)
    history(db, events)
    configure_subscribers([*PATHS, live.ARRIVALS])
    started = time.perf_counter()
    for name in (BENCH, *DEMO):
        run_worker_once(name)  # the live tables full, the live bookmarks at the head
    results.note(f"rebuild: {events:,} events; the live projections caught up in"
                 f" {time.perf_counter() - started:.0f}s")  # fmt: skip
    throughput(db, results, events=events, rounds=rounds)
    phases(db, results, events=events, rate=rate, rounds=rounds)


def throughput(db: BenchDatabase, results: Results, *, events: int, rounds: int) -> None:
    waits: dict[str, list[float]] = {}
    sides: dict[str, Callable[[], float]] = {
        # Every event in the table (the swaps append their decisions).
        "raw": lambda: raw_work(db, 1_000, Cursor(0, 0), event_count(db), True, streams=True).rate,
    }
    for name in (BENCH, *DEMO):
        sides[name] = lambda name=name: rebuild_once(db, name, waits)  # type: ignore[misc]
    figures = interleaved(db, sides, rounds)
    label = f"rebuild {events:,} events"
    results.add(f"{label}: raw psycopg loop, pipelined upsert b=1000 (catch-up's)",
                figures["raw"], "events/s")  # fmt: skip
    for name in (BENCH, *DEMO):
        results.add(f"{label}: {name}, start to swapped", figures[name], "events/s")
        if name != "demo.caution_log":  # a few hundred events: the fixed costs dominate
            results.ratio(f"{label}: {name} / pipelined raw", figures[name], figures["raw"],
                          at_least=0.5)  # fmt: skip
    for name, values in waits.items():
        results.add(f"{label}: readers' longest wait during the swap, {name}", values, "ms",
                    at_most=100)  # fmt: skip


def _phase_run(db: BenchDatabase, rate: float, duration: float, rebuild: bool) -> Any:
    """Pings through a worker, with a rebuild of BENCH run by that worker or none: the
    latencies (ms) by phase (``none`` without a rebuild)."""
    from subscribers.models import Rebuild

    live._fresh_arrivals()
    timeline: list[tuple[float, str]] = []
    stop = threading.Event()
    with live.running_worker(db, [live.ARRIVALS, BENCH_PATH]) as worker:
        live._warm_up(worker)
        pk = _start(BENCH, _registry(), swap_when_verified=True) if rebuild else None

        def sample() -> None:
            with db.connect(autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute(
                        "SELECT phase FROM projection_rebuilds WHERE id = %s", (pk,)
                    ).fetchone()
                    timeline.append((time.time(), str(row[0]) if row else "none"))
                    time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # Pings until the rebuild has swapped (and a second more), or for ``duration``.
        appender = live.Appender(rate, duration if pk is None else 600.0).start()
        deadline = time.monotonic() + 300.0
        while pk is not None and time.monotonic() < deadline:
            if Rebuild.objects.get(pk=pk).phase in ("swapped", "failed"):
                time.sleep(1.0)
                break
            time.sleep(0.1)
        if pk is not None:
            appender.stop.set()
        appender.join()
        values = live._latencies_ms(appender)
        stop.set()
        sampler.join()
    by_phase: dict[str, list[float]] = {}
    committed = list(appender.committed.values())
    for at, value in zip(committed, values, strict=True):
        phase = "none"
        for t, name in timeline:
            if t > at:
                break
            phase = name
        phase = "swapping" if phase == "ready" else phase  # --swap-when-verified: the swap
        by_phase.setdefault(phase, []).append(value)
    return by_phase


def phases(db: BenchDatabase, results: Results, *, events: int, rate: float, rounds: int) -> None:
    label = f"rebuild {events:,} events: live p99 at {rate:g}/s"
    names = ("copying_schema", "building", "indexing", "catching_up", "verifying", "swapping")
    without: list[float] = []
    during: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    counts: dict[str, int] = {}
    duration = 5.0
    for round_ in range(rounds):
        base: float | None = None
        found: dict[str, list[float]] = {}
        for with_rebuild in (False, True) if round_ % 2 == 0 else (True, False):
            settle(db)
            got = _phase_run(db, rate, duration if with_rebuild else 5.0, with_rebuild)
            if with_rebuild:
                found = got
            else:
                base = percentile([v for vs in got.values() for v in vs], 99)
        assert base is not None
        without.append(base)
        for name in names:
            if found.get(name):
                during[name].append((percentile(found[name], 99), base))
                counts[name] = counts.get(name, 0) + len(found[name])
    results.add(f"{label} without a rebuild", without, "ms")
    for name in names:
        pairs = during[name]
        if not pairs:
            results.note(f"rebuild: no ping fell in the phase {name}")
            continue
        results.add(f"{label} while {name}", [a for a, _ in pairs], "ms")
        results.ratio(f"{label} while {name} / without", [a for a, _ in pairs],
                      [b for _, b in pairs], at_most=2)  # fmt: skip
    results.note(f"rebuild: pings per phase over {rounds} rounds: {counts}")
