"""The rebuild's promise, as a Hypothesis property on real PostgreSQL: whatever the history
and however the appends interleave (several connections, committing out of order, some
rolled back, before, during the rebuild and across the swap), the tables after the swap
equal a from-scratch replay of the same events by the same code, row for row; nothing
is lost or doubled."""

from __future__ import annotations

import random
import threading
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import start_rebuild, swap_rebuild, with_lock_retries
from subscribers.registry import build_registry
from subscribers.worker import Worker
from tests.rebuilds import (
    DROP_REBUILD_LEFTOVERS,
    TABLE_MODELS,
    RbEntry,
    RbTotal,
    Totals,
    replayed,
    rows,
)
from tests.support import raw_connection, wait_for
from tests.workers import drain, running_worker

KEYS = 5
#: Events each swap applied itself (the property's own check that swaps had work).
swapped_here: list[int] = []

INSERT = f"""
INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
SELECT gen_random_uuid(), %(stream)s, %(version)s + g, %(type)s,
       jsonb_build_object('key', 'k' || ((%(start)s + g) %% {KEYS}), 'amount', %(start)s + g),
       '{{}}'
FROM generate_series(1, %(n)s) AS g
"""


class Writers:
    """Connections whose transactions stay open across each other's commits: their events
    commit out of order. Some transactions roll back; some events are of another type."""

    def __init__(self, rng: random.Random, count: int, prefix: str) -> None:
        self.rng, self.prefix = rng, prefix
        self.conns = [raw_connection(autocommit=False) for _ in range(count)]
        self.versions = [0] * count
        self.pending = [0] * count
        self.amount = 0

    def write(self) -> None:
        """One random move: append to a writer's open transaction, or end one."""
        index = self.rng.randrange(len(self.conns))
        conn = self.conns[index]
        if self.pending[index] and self.rng.random() < 0.4:
            if self.rng.random() < 0.15:
                conn.rollback()
            else:
                conn.execute("SELECT pg_notify('eventdesk_events', '')")
                conn.commit()
                self.versions[index] += self.pending[index]
            self.pending[index] = 0
            return
        n = self.rng.randint(1, 4)
        kind = "Added" if self.rng.random() < 0.85 else "Ignored"
        conn.execute(
            INSERT,
            {
                "stream": f"{self.prefix}-{index}",
                "version": self.versions[index] + self.pending[index],
                "type": kind,
                "start": self.amount,
                "n": n,
            },
        )
        self.amount += n
        self.pending[index] += n

    def settle(self) -> None:
        """Commit every open transaction."""
        for index, conn in enumerate(self.conns):
            if self.pending[index]:
                conn.execute("SELECT pg_notify('eventdesk_events', '')")
            conn.commit()
            self.versions[index] += self.pending[index]
            self.pending[index] = 0

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(DROP_REBUILD_LEFTOVERS)
        cursor.execute("TRUNCATE events, projection_bookmarks, projection_rebuilds")
    with connection.schema_editor() as editor:
        for model in TABLE_MODELS:
            editor.create_model(model)


def caught_up() -> bool:
    head = PostgresEventStore().head()
    return Bookmark.objects.get(subscriber_name=Totals.name).cursor >= head


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    before=st.integers(0, 120),
    during=st.integers(0, 120),
    fixed=st.booleans(),
    hold_across_swap=st.booleans(),
    behind=st.integers(0, 3),
)
def test_the_swapped_tables_equal_a_replay_from_scratch(
    seed: int, before: int, during: int, fixed: bool, hold_across_swap: bool, behind: int
) -> None:
    reset()
    Totals.factor = 1
    rng = random.Random(seed)
    registry = build_registry([Totals()])
    writers = Writers(rng, 3, f"w{seed}")
    late: psycopg.Connection[Any] | None = None
    stop = threading.Event()

    def keep_writing() -> None:
        moves = 0
        while not stop.is_set() and moves < during:
            writers.write()
            moves += 1
            stop.wait(rng.random() * 0.01)

    writing = threading.Thread(target=keep_writing)
    try:
        with running_worker(registry):
            for _ in range(before):
                writers.write()
            writers.settle()
            wait_for(caught_up, what="the live projection caught up")
            if fixed:
                Totals.factor = 2  # the deploy that fixes the bug: the rebuild's reason
            with transaction.atomic():
                rebuild = start_rebuild(
                    Totals.name, reason="property", started_by=None, registry=registry
                )
            # Appends go on, out of order, while the rebuild builds, catches up, verifies
            # and swaps.
            writing.start()
            wait_for(
                lambda: Rebuild.objects.get(pk=rebuild.pk).phase in ("ready", "failed"),
                timeout=120,
                what="the rebuild verified",
            )
        # No worker follows the rebuild now: the live projection alone moves on, so the
        # swap has events of its own to apply.
        for _ in range(behind):
            for _ in range(8):
                writers.write()
            Worker(registry).run_once()
        if hold_across_swap:
            # A transaction that began before the swap and commits after it.
            late = raw_connection(autocommit=False)
            late.execute(
                INSERT,
                {"stream": f"late{seed}", "version": 0, "type": "Added", "start": 10**6, "n": 3},
            )

        def swap() -> Any:
            with transaction.atomic(durable=True):
                return swap_rebuild(Totals.name, registry=registry)

        applied = with_lock_retries(swap, name=Totals.name, tries=200, pause_seconds=0.02)
        swapped_here.append(applied.events_applied)
        stop.set()
        writing.join(60)
        writers.settle()
        if late is not None:
            late.execute("SELECT pg_notify('eventdesk_events', '')")
            late.commit()
        drain(registry, caught_up, what="the live projection caught up after the swap")
        rebuild.refresh_from_db()
        assert rebuild.phase == "swapped", rebuild.last_error
        totals, entries = replayed(Totals.factor)
        assert rows(RbEntry) == entries  # each event once: nothing lost, nothing doubled
        assert rows(RbTotal) == totals
    finally:
        stop.set()
        if writing.is_alive():
            writing.join(60)
        writers.close()
        if late is not None:
            late.close()
        Totals.factor = 1
