"""Projection catch-up: the raw limit, Eventdesk's worker and the eventsourcing peer."""

from __future__ import annotations

import io
import os
import time

from benchmarks import peer, rawloop
from benchmarks.db import BenchDatabase, reset_event_tables
from benchmarks.fixtures import append_events, cursor_before_last
from benchmarks.results import Results
from eventstore.types import Cursor

BATCH_SIZES = (1, 100, 1_000)
ALL_COUNTERS = [f"benchmarks.subscribers.{kind}_{size}" for kind in ("natural", "sql", "batch")
                for size in BATCH_SIZES]  # fmt: skip


def place_bookmark(name: str, at: Cursor, kind: str = "projection") -> None:
    """Put the bookmark ``name`` at ``at``, healthy, and forget its read model."""
    from benchmarks.models import TypeCount
    from subscribers.models import Bookmark

    Bookmark.objects.update_or_create(
        subscriber_name=name,
        defaults={
            "kind": kind, "last_transaction_id": at.transaction_id, "last_position": at.position,
            "status": Bookmark.Status.ACTIVE, "attempts": 0, "failing_event_id": None,
            "last_error": "", "last_traceback": "", "failed_at": None, "next_retry_at": None,
            "lease_owner": "", "lease_expires_at": None,
        },
    )  # fmt: skip
    TypeCount.objects.filter(projection=name).delete()


def counted(name: str) -> int:
    from django.db.models import Sum

    from benchmarks.models import TypeCount

    total = TypeCount.objects.filter(projection=name).aggregate(n=Sum("count"))["n"]
    return int(total or 0)


def configure_subscribers(paths: list[str]) -> None:
    """Point the worker at ``paths`` (what ``EVENTDESK_SUBSCRIBERS`` does for a deployment)."""
    from config.options import options

    os.environ["EVENTDESK_SUBSCRIBERS"] = ",".join(paths)
    options.cache_clear()


def run_worker_once(name: str) -> float:
    """``manage.py run_subscribers --once --subscriber NAME``, in-process; returns seconds."""
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("run_subscribers", "--once", "--subscriber", name, stdout=io.StringIO())
    return time.perf_counter() - started


def eventdesk_catch_up(kind: str, size: int, start: Cursor, expected: int) -> float:
    name = f"bench-{kind}-{size}"
    place_bookmark(name, start)
    seconds = run_worker_once(name)
    got = counted(name)
    if got != expected:
        raise RuntimeError(f"{name} counted {got} events, expected {expected}")
    return expected / seconds


def raw_catch_up(
    db: BenchDatabase, size: int, start: Cursor, expected: int, pipelined: bool
) -> float:
    name = f"bench-raw{'-pipelined' if pipelined else ''}-{size}"
    place_bookmark(name, start)
    processed, seconds = rawloop.catch_up(db, name, size, pipelined=pipelined)
    got = counted(name)
    if processed != expected or got != expected:
        raise RuntimeError(f"{name} processed {processed}, counted {got}, expected {expected}")
    return expected / seconds


def run(db: BenchDatabase, results: Results, *, events: int, quick: bool, peer_events: int) -> None:
    reset_event_tables(db)
    configure_subscribers(ALL_COUNTERS)
    started = time.perf_counter()
    append_events(events)
    results.note(f"catch-up: {events:,} events appended in {time.perf_counter() - started:.1f}s")
    figures: dict[tuple[str, int], float] = {}
    for size in BATCH_SIZES:
        # Batch size 1 is ~100x slower per event: it reads a tenth of the events (events/s holds).
        count = events if size > 1 else max(1_000, events // 10)
        start = cursor_before_last(db, count)
        figures[("raw", size)] = raw_catch_up(db, size, start, count, pipelined=False)
        figures[("raw-pipelined", size)] = raw_catch_up(db, size, start, count, pipelined=True)
        figures[("natural", size)] = eventdesk_catch_up("natural", size, start, count)
        figures[("sql", size)] = eventdesk_catch_up("sql", size, start, count)
        figures[("batch", size)] = eventdesk_catch_up("batch", size, start, count)
        results.add(f"catch-up b={size}: raw psycopg loop (same statements)",
                    figures[("raw", size)], "events/s")  # fmt: skip
        results.add(f"catch-up b={size}: raw psycopg loop, pipelined",
                    figures[("raw-pipelined", size)], "events/s")  # fmt: skip
        results.add(f"catch-up b={size}: Eventdesk natural (apply, ORM)",
                    figures[("natural", size)], "events/s")  # fmt: skip
        results.add(f"catch-up b={size}: Eventdesk apply, same statements via cursor",
                    figures[("sql", size)], "events/s")  # fmt: skip
        results.add(f"catch-up b={size}: Eventdesk apply_batch (bulk upsert)",
                    figures[("batch", size)], "events/s")  # fmt: skip
        natural_ratio = figures[("natural", size)] / figures[("raw", size)]
        batch_ratio = figures[("batch", size)] / figures[("raw-pipelined", size)]
        # The framework's own cost: the raw loop's statements, run inside the worker.
        results.add(f"catch-up b={size}: same statements in the worker / raw loop",
                    figures[("sql", size)] / figures[("raw", size)], "ratio")  # fmt: skip
        if size == 100:
            results.add("catch-up b=100: natural / raw loop", natural_ratio, "ratio", at_least=0.7)
            results.add("catch-up b=100: apply_batch / pipelined raw", batch_ratio, "ratio",
                        at_least=0.5)  # fmt: skip
        else:
            results.add(f"catch-up b={size}: natural / raw loop", natural_ratio, "ratio")
            results.add(f"catch-up b={size}: apply_batch / pipelined raw", batch_ratio, "ratio")
    if peer_events <= 0:
        results.note("peer (eventsourcing) skipped")
        return
    processed, seconds = peer.catch_up(db, peer_events)
    peer_rate = processed / seconds
    results.add("catch-up: eventsourcing ProjectionRunner (peer)", peer_rate, "events/s")
    results.add("catch-up b=100: natural / eventsourcing", figures[("natural", 100)] / peer_rate,
                "ratio", at_least=4)  # fmt: skip
    results.add("catch-up b=100: apply_batch / eventsourcing", figures[("batch", 100)] / peer_rate,
                "ratio", at_least=4)  # fmt: skip
