"""Stream-ordered reactions: throughput by concurrency and workers, a poison stream, and
the cost of a claim against a raw-SQL loop with the same statements."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.catchup import configure_subscribers
from benchmarks.db import WORKER_APP, BenchDatabase
from benchmarks.live import running_worker
from benchmarks.results import Results, median
from benchmarks.stable import Work, interleaved, interleaved_work

SLEEP = 0.2
JOB = "bench.Job"


def _reset(db: BenchDatabase) -> None:
    with db.connect(autocommit=True) as conn:
        conn.execute("TRUNCATE events, projection_bookmarks, reaction_work RESTART IDENTITY")


def _append_jobs(events: int, streams: int, *, poison: str | None = None) -> None:
    """``events`` jobs over ``streams`` streams, round-robin, in transactions of 100."""
    from eventstore import NewEvent, StreamAppend
    from eventstore.postgres import PostgresEventStore

    per_stream: dict[str, list[Any]] = {}
    for n in range(events):
        stream = f"run-{n % streams}"
        data = {"n": n, "poison": stream == poison and n < streams}
        per_stream.setdefault(stream, []).append(NewEvent(JOB, data))
    names = list(per_stream)
    for start in range(0, len(names), 25):
        PostgresEventStore().append_streams(
            [StreamAppend(name, per_stream[name]) for name in names[start : start + 25]]
        )


def _remaining(db: BenchDatabase, name: str) -> tuple[int, bool]:
    """Unfinished rows of streams not parked, and whether intake is at the head."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM reaction_work w WHERE subscriber_name = %(n)s"
            " AND NOT EXISTS (SELECT 1 FROM reaction_work p WHERE p.subscriber_name ="
            " w.subscriber_name AND p.stream_id = w.stream_id AND p.parked_at IS NOT NULL)),"
            " (SELECT (last_transaction_id, last_position) >= (SELECT"
            " transaction_id::text::bigint, position FROM events ORDER BY transaction_id"
            " DESC, position DESC LIMIT 1) FROM projection_bookmarks"
            " WHERE subscriber_name = %(n)s)",
            {"n": name},
        ).fetchone()
    assert row is not None
    return int(row[0]), bool(row[1])


class _Backends:
    """Samples the workers' backends: the most at once, and every pid seen (opened)."""

    def __init__(self, db: BenchDatabase) -> None:
        self.db, self.most, self.pids = db, 0, set[int]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.db.connect(autocommit=True) as conn:
            while not self._stop.wait(0.02):
                pids = [
                    int(r[0])
                    for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                        (WORKER_APP,),
                    ).fetchall()
                ]
                self.most = max(self.most, len(pids))
                self.pids.update(pids)

    def __enter__(self) -> _Backends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def _workers(db: BenchDatabase, path: str, count: int, **env: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(running_worker(db, [path], **env))
        yield


def _wait_for_bookmark(db: BenchDatabase, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connect(autocommit=True) as conn:
            if conn.execute(
                "SELECT 1 FROM projection_bookmarks WHERE subscriber_name = %s", (name,)
            ).fetchone():
                return
        time.sleep(0.05)
    raise TimeoutError(f"no worker created the bookmark of {name}")


def _timed_run(
    db: BenchDatabase,
    name: str,
    path: str,
    *,
    workers: int,
    events: int,
    streams: int,
    poison: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[float, _Backends]:
    """Seconds from the append until every job of a non-parked stream is handled."""
    _reset(db)
    env = {
        "BENCH_REACTION_SLEEP": str(SLEEP),
        "EVENTDESK_POLL_INTERVAL_SECONDS": "1",
        **(env or {}),
    }
    with _Backends(db) as backends, _workers(db, path, workers, **env):
        _wait_for_bookmark(db, name)
        started = time.perf_counter()
        _append_jobs(events, streams, poison=poison)
        while True:
            left, at_head = _remaining(db, name)
            if left == 0 and at_head:
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"{name}: {left} jobs left after 600 s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
    return elapsed, backends


def run(
    db: BenchDatabase, results: Results, *, quick: bool, rounds: int, min_seconds: float
) -> None:
    """Throughput at concurrency 1, 8, 32 with 1 and 3 workers; the global-order baseline;
    a poison stream; the cost of a claim. The two sides of each ratio are measured
    interleaved, ``rounds`` times (``benchmarks.stable``), the median of the per-round
    ratios judged: concurrency 32 (1 worker) against the global order, the poison run
    against the clean one, the worker's claims against the raw loop's."""
    events, streams = (200, 50) if quick else (400, 100)
    print(f"\n== reactions: handle sleeps {SLEEP}s, {events} events over {streams} streams ==")
    global_events = 20 if quick else 50
    last: dict[tuple[int, int], _Backends] = {}

    def stream_rate(concurrency: int, workers: int, poison: str | None = None) -> float:
        # At concurrency 1 a quarter of the events (streams of four still): its rate is
        # one handle at a time whatever the count, and the full count took 40 s per run.
        n, over = (events // 4, streams // 4) if concurrency == 1 else (events, streams)
        seconds, backends = _timed_run(
            db, f"bench-stream-{concurrency}", f"benchmarks.subscribers.stream_{concurrency}",
            workers=workers, events=n, streams=over, poison=poison,
            env={"EVENTDESK_MAX_ATTEMPTS": "1"} if poison else None,
        )  # fmt: skip
        if poison is None:
            last[concurrency, workers] = backends
            return n / seconds
        return (n - n // over) / seconds  # the other streams' events

    def global_rate() -> float:
        seconds, _ = _timed_run(
            db, "bench-global", "benchmarks.subscribers.global_sleeper",
            workers=1, events=global_events, streams=streams,
        )  # fmt: skip
        return global_events / seconds

    baseline = interleaved(db, {"global": global_rate, "c32": lambda: stream_rate(32, 1)}, rounds)
    results.add("reactions: global order, 1 worker", baseline["global"], "events/s")
    results.ratio("reactions: stream, concurrency 32, 1 worker / global order", baseline["c32"],
                  baseline["global"], at_least=20)  # fmt: skip
    poisoned = interleaved(
        db,
        {"clean": lambda: stream_rate(8, 1), "poison": lambda: stream_rate(8, 1, "run-0")},
        rounds,
    )
    global_median = median(baseline["global"])
    for concurrency in (1, 8, 32):
        for workers in (1, 3):
            label = f"reactions: stream, concurrency {concurrency}, {workers} worker(s)"
            measured = {(32, 1): baseline["c32"], (8, 1): poisoned["clean"]}.get(
                (concurrency, workers)
            )
            rate: float | list[float] = (
                measured if measured is not None else stream_rate(concurrency, workers)
            )
            if concurrency == 8:
                results.add(label, rate, "events/s", at_least=0.8 * 8 / SLEEP)
            elif concurrency == 32:
                results.add(
                    label, rate, "events/s", at_least=max(0.6 * 32 / SLEEP, 20 * global_median)
                )
            else:
                results.add(label, rate, "events/s")
            backends = last[concurrency, workers]
            results.add(f"{label}: worker backends at once (max)", backends.most, "connections")
            results.add(f"{label}: worker backends opened", len(backends.pids), "connections")
    results.add("reactions: poison stream parked, the others (concurrency 8, 1 worker)",
                poisoned["poison"], "events/s")  # fmt: skip
    results.ratio("reactions: poison stream parked, the others / no poison (concurrency 8)",
                  poisoned["poison"], poisoned["clean"], at_least=0.95)  # fmt: skip
    _claim_cost(db, results, events=1_000 if quick else 4_000, rounds=rounds,
                min_seconds=min_seconds)  # fmt: skip


def _claim_cost(
    db: BenchDatabase, results: Results, *, events: int, rounds: int, min_seconds: float
) -> None:
    """Per event, intake + claim + settle with a ``handle`` that does nothing: the worker
    (``run_subscribers --once``, in-process) against the same statements in a raw loop,
    interleaved, each side sized to ``min_seconds`` of work per round."""
    from django.core.management import call_command

    streams = events // 4
    os.environ["BENCH_REACTION_SLEEP"] = "0"
    configure_subscribers(["benchmarks.subscribers.stream_8"])
    from benchmarks import subscribers

    subscribers.stream_8.sleep = 0.0

    def worker() -> Work:
        _reset(db)
        _append_jobs(events, streams)
        started = time.perf_counter()
        call_command("run_subscribers", "--once", stdout=io.StringIO())
        seconds = time.perf_counter() - started
        left, _ = _remaining(db, "bench-stream-8")
        assert left == 0, f"{left} rows left"
        return Work(events, seconds)

    def raw() -> Work:
        _reset(db)
        _append_jobs(events, streams)
        return Work(events, _raw_loop(db, "bench-stream-8", concurrency=8))

    figures = interleaved_work(db, {"worker": worker, "raw": raw}, rounds, min_seconds)
    results.add("reactions: claim+settle, no-op handle, worker", figures["worker"], "events/s")
    results.add("reactions: claim+settle, raw-SQL loop", figures["raw"], "events/s")
    results.ratio("reactions: worker / raw loop", figures["worker"], figures["raw"], at_least=0.5)


def _raw_loop(db: BenchDatabase, name: str, *, concurrency: int) -> float:
    """The scheduler's statements (subscribers/sql.py) on one psycopg connection: lock the
    bookmark, intake, count the leases, claim, commit; then settle each claim."""
    from subscribers import sql
    from subscribers.streams import INTAKE_BATCH

    started = time.perf_counter()
    counter = 0
    with db.connect() as conn:
        conn.execute(sql.ENSURE_BOOKMARK, {"name": name, "kind": "reaction", "tx": 0, "pos": 0})
        conn.commit()
        while True:
            row = conn.execute(sql.LOCK_STREAM_BOOKMARK, {"name": name}).fetchone()
            assert row is not None
            params = {"name": name, "tx": row[0], "pos": row[1], "batch": INTAKE_BATCH,
                      "limit": 10_000, "types": [JOB]}  # fmt: skip
            intake = conn.execute(sql.INTAKE_OF_TYPES, params).fetchone()
            assert intake is not None
            _, wanted, _, last_tx, last_pos, head_tx, head_pos = intake
            full = wanted >= INTAKE_BATCH
            to = (last_tx, last_pos) if full or head_tx is None else (head_tx, head_pos)
            if to[0] is not None and tuple(to) > (row[0], row[1]):
                conn.execute(sql.MOVE_INTAKE_POINT, {"name": name, "to_tx": to[0], "to_pos": to[1]})
            live = conn.execute(sql.COUNT_LIVE_LEASES, {"name": name}).fetchone()
            room = concurrency - int(live[0] if live else 0)
            tokens = [f"raw#{counter + n}" for n in range(1, room + 1)]
            counter += room
            claims = conn.execute(
                sql.CLAIM_WORK, {"name": name, "room": room, "tokens": tokens, "lease": 60.0}
            ).fetchall()
            conn.commit()
            if not claims and not full:
                break
            for claim in claims:
                conn.execute(sql.SETTLE_WORK, {"id": claim[0], "token": claim[1]})
                conn.commit()
    return time.perf_counter() - started
