"""Hypothesis: a stream-ordered reaction under random streams, failures, retries, slow
transactions, lost leases and competing workers.

Each example interleaves appends (some held open, holding the horizon back), claims by
two or three workers, results settled in any order (late ones too, after their lease
was lost and the row claimed again), and retries falling due; then a real worker
drains what can run. After every step and at the end:

* per stream, the jobs answered come first in stream order, then the jobs waiting in
  the work table, in order; no job is answered twice (appends committed exactly once);
* at most ``concurrency`` live leases, at most one per stream, and only on a stream's
  earliest row;
* the intake point never moves backward; at the end it is at the head, and every job
  is answered or waits in a parked stream (nothing passed over);
* a stream is parked exactly when it holds a job that fails every attempt.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from subscribers.bookmarks import ensure_bookmarks
from subscribers.leases import LeaseKeeper
from subscribers.registry import Registered, SubscriberRegistry
from subscribers.streams import Claim, run_handle, settle, take_in_and_claim
from subscribers.worker import Worker
from tests.factories import jobs
from tests.stream_invariants import (
    check_streams,
    handled_by_stream,
    intake_point,
    jobs_by_stream,
    rows,
    waiting_by_stream,
)
from tests.subscribers import EveryEvent, StreamJobs
from tests.support import raw_connection, wait_for
from tests.workers import stream_reaction

pytestmark = pytest.mark.django_db(transaction=True)

MAX_ATTEMPTS = 3
OPTIONS = {
    "max_attempts": MAX_ATTEMPTS,
    "retry_base_seconds": 0.001,
    "retry_cap_seconds": 0.001,
    "lease_seconds": 60.0,
}
STREAMS = ["a", "b", "c", "d", "e"]

append_op = st.tuples(
    st.just("append"),
    st.sampled_from(STREAMS),
    st.integers(1, 3),
    st.sampled_from([0, 0, 0, 1, 2, MAX_ATTEMPTS + 1]),  # failures before success (4: poison)
)
ops = st.one_of(
    append_op,
    st.tuples(st.just("append_decision")),
    st.tuples(st.just("open_slow")),
    st.tuples(st.just("commit_slow")),
    st.tuples(st.just("claim"), st.integers(0, 2), st.integers(1, 4)),
    st.tuples(st.just("settle"), st.integers(0, 50)),
    st.tuples(st.just("lose_lease"), st.integers(0, 50)),
    st.tuples(st.just("crash"), st.integers(0, 2)),
    st.tuples(st.just("retries_due")),
)


@dataclass
class World:
    entry: Registered
    workers: list[LeaseKeeper]
    #: Claims handed out and not settled yet: (worker, claim).
    pending: list[tuple[int, Claim]] = field(default_factory=list)
    slow: list[Any] = field(default_factory=list)
    intake: tuple[int, int] = (0, 0)
    slow_streams: int = 0


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE events, reaction_work, projection_bookmarks")
    StreamJobs.reset()
    EveryEvent.seen.clear()


def _open_slow(world: World) -> None:
    """An append in a transaction left open: it holds the horizon back until committed."""
    conn = raw_connection(autocommit=False)
    world.slow_streams += 1
    conn.execute(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)"
        " VALUES (%s, %s, 1, 'Job', '{}', '{}')",
        [uuid.uuid4(), f"slow-{world.slow_streams}"],
    )
    world.slow.append(conn)


def _check(world: World) -> None:
    check_streams(world.entry.name, complete=False)
    now = intake_point(world.entry.name)
    assert now >= world.intake, "the intake point moved backward"
    world.intake = now
    live = rows(
        "SELECT stream_id, transaction_id, position FROM reaction_work"
        " WHERE subscriber_name = %s AND lease_expires_at > now()",
        [world.entry.name],
    )
    assert len(live) <= world.entry.concurrency
    assert len({row[0] for row in live}) == len(live), "two live leases on one stream"
    for stream, tx, pos in live:
        first = rows(
            "SELECT transaction_id, position FROM reaction_work WHERE subscriber_name = %s"
            " AND stream_id = %s ORDER BY transaction_id, position LIMIT 1",
            [world.entry.name, stream],
        )
        assert first[0] == (tx, pos), "a lease on a row that is not its stream's head"


def _step(world: World, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "append":
        _, stream, count, fail = op
        if fail > MAX_ATTEMPTS:
            jobs(stream, count, poison=True)
        else:
            jobs(stream, count, fail=fail)
    elif kind == "append_decision":
        # A decision lives on a stream of its own (taken in when event_types is None).
        decision = NewEvent("DecisionRegistered", {"context": "Test"})
        stream = f"decisions-{uuid.uuid4().hex[:8]}"
        PostgresEventStore().append_streams([StreamAppend(stream, [decision])])
    elif kind == "open_slow":
        if len(world.slow) < 2:
            _open_slow(world)
    elif kind == "commit_slow":
        if world.slow:
            conn = world.slow.pop(0)
            conn.commit()
            conn.close()
    elif kind == "claim":
        _, worker, room = op
        _, claims = take_in_and_claim(world.entry, world.workers[worker], room)
        world.pending.extend((worker, claim) for claim in claims)
    elif kind == "settle" and world.pending:
        _, claim = world.pending.pop(op[1] % len(world.pending))
        settle(world.entry, run_handle(world.entry, claim))
    elif kind == "lose_lease" and world.pending:
        # The lease expires (a stalled worker): the row may be claimed again; this
        # claim's result, if it comes, must then be discarded.
        _, claim = world.pending[op[1] % len(world.pending)]
        rows(
            "UPDATE reaction_work SET lease_expires_at = now() - interval '1 second'"
            " WHERE lease_token = %s RETURNING 1",
            [claim.token],
        )
    elif kind == "crash":
        # A worker dies: its claims are never settled and their leases run out.
        lost = [claim.token for worker, claim in world.pending if worker == op[1]]
        world.pending = [(w, c) for w, c in world.pending if w != op[1]]
        if lost:
            rows(
                "UPDATE reaction_work SET lease_expires_at = now() - interval '1 second'"
                " WHERE lease_token = ANY(%s) RETURNING 1",
                [lost],
            )
    elif kind == "retries_due":
        rows(
            "UPDATE reaction_work SET next_retry_at = now() WHERE next_retry_at IS NOT NULL"
            " RETURNING 1"
        )


def _finish(world: World) -> None:
    for conn in world.slow:
        conn.commit()
        conn.close()
    world.slow.clear()
    # Late results of the claims still out: settled now (kept or discarded by the CAS).
    for _, claim in world.pending:
        settle(world.entry, run_handle(world.entry, claim))
    world.pending.clear()
    # Every event is committed now. Readers see them once no older transaction on the
    # server is open (the horizon is cluster-wide: a second suite holds it back); until
    # then the head is short of them, and the drain below would stop early.
    last = rows(
        "SELECT transaction_id::text::bigint, position FROM events"
        " ORDER BY transaction_id DESC, position DESC LIMIT 1"
    )
    if last:
        wait_for(lambda: tuple(PostgresEventStore().head()) >= last[0], what="every event visible")
    registry = SubscriberRegistry([world.entry])
    for _ in range(60):
        rows(
            "UPDATE reaction_work SET next_retry_at = now() WHERE next_retry_at IS NOT NULL"
            " RETURNING 1"
        )
        Worker(registry).run_once()
        runnable = rows(
            "SELECT count(*) FROM reaction_work w WHERE subscriber_name = %s AND NOT EXISTS ("
            " SELECT 1 FROM reaction_work p WHERE p.subscriber_name = w.subscriber_name"
            " AND p.stream_id = w.stream_id AND p.parked_at IS NOT NULL)",
            [world.entry.name],
        )[0][0]
        if runnable == 0 and intake_point(world.entry.name) == tuple(PostgresEventStore().head()):
            break
    _check(world)
    assert intake_point(world.entry.name) == tuple(PostgresEventStore().head())
    check_streams(world.entry.name, complete=True)  # nothing passed over
    parked = {
        row[0]: row[1]
        for row in rows(
            "SELECT stream_id, event_id::text FROM reaction_work"
            " WHERE subscriber_name = %s AND parked_at IS NOT NULL",
            [world.entry.name],
        )
    }
    poison = {
        row[0] for row in rows("SELECT event_id::text FROM events WHERE (data->>'poison')::boolean")
    }
    answered, waiting = handled_by_stream(), waiting_by_stream(world.entry.name)
    for stream, ids in jobs_by_stream().items():
        first_poison = next((i for i in ids if i in poison), None)
        if first_poison is None:
            assert answered.get(stream, []) == ids, stream
            assert stream not in waiting, stream
        else:
            assert parked.get(stream) == first_poison, stream
            assert waiting[stream][0] == first_poison
    for event_id in parked.values():
        assert StreamJobs.attempts[uuid.UUID(event_id)] >= MAX_ATTEMPTS


@override_settings(EVENTDESK=OPTIONS)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(ops, min_size=5, max_size=40),
    concurrency=st.integers(1, 4),
    every_event=st.booleans(),
    intake_limit=st.sampled_from([2, 3, 10_000]),
)
def test_stream_order_exactly_once_nothing_passed_over(
    steps: list[tuple[Any, ...]], concurrency: int, every_event: bool, intake_limit: int
) -> None:
    _reset()
    base = EveryEvent if every_event else StreamJobs
    [entry] = stream_reaction(base, concurrency=concurrency, intake_limit=intake_limit)
    ensure_bookmarks([entry])
    world = World(entry, [LeaseKeeper(f"worker-{n}") for n in range(3)])
    try:
        for op in steps:
            _step(world, op)
            _check(world)
        _finish(world)
    finally:
        for conn in world.slow:
            conn.rollback()
            conn.close()
    if every_event:
        # Every decision was taken in and handed to handle (at least once: a lost
        # lease runs a handle again; its appends, none here, would land once).
        decisions = rows("SELECT stream_id FROM events WHERE event_type = 'DecisionRegistered'")
        seen = {stream for kind, stream in EveryEvent.seen if kind == "DecisionRegistered"}
        assert seen == {row[0] for row in decisions}
