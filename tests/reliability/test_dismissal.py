"""Dismissal races and atomicity, through the REST door of a live server.

* Two operators dismiss the same event at once: one 200, the other 409, one decision.
* Dismissals race a worker advancing the same reaction: every Order is either answered
  exactly once or passed over by exactly one audited dismissal; bookmarks only move forward.
* Faults between the bookmark update and the decision append, and after both before
  commit (a backend terminated there, a commit that fails): both visible or neither.
* The worker's own pair (compare-and-set and the reaction's append), cut the same way.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection

from eventstore.postgres import PostgresEventStore
from eventstore.types import Cursor, RecordedEvent
from reactions_admin.acts.dismissal.decider import DECISION_STREAM
from reactions_admin.acts.dismissal.handler import dismiss_event_in_reaction
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.models import Bookmark
from tests.factories import append_events, append_mixed, operator, wedged_reaction
from tests.reliability.invariants import (
    ON_REL_TABLES,
    backward_moves,
    bookmark_moves,
    fetch,
    order_ids,
    receipts_by_order,
)
from tests.reliability.subscribers import R
from tests.support import (
    decisions,
    drop_trigger_sql,
    post_dismiss,
    raw_connection,
    trigger,
    trigger_sql,
    wait_for,
    wait_until_visible,
)
from tests.workers import start_worker

pytestmark = ON_REL_TABLES

GATE = 0x52_45_4C_32  # advisory-lock key the fault triggers wait on ("REL2")


def tokens(*names: str) -> list[str]:
    return [issue_token(operator(name)).secret for name in names]


# --- two operators, one event -----------------------------------------------------------


def test_two_operators_dismissing_the_same_event_one_wins_the_other_gets_409(
    live_server,
) -> None:
    events = wait_until_visible(append_events(41, stream="orders"))
    wedged_reaction("rel.mailer", events[0], failing=events[1])
    first, second = tokens("alice", "bob")
    rounds = 20
    statuses: list[list[int]] = []
    won: list[str] = []
    for round_ in range(rounds):
        target = events[2 * round_ + 1]
        barrier = threading.Barrier(2)
        results: list[tuple[int, Any]] = []

        def fire(
            token: str,
            target: RecordedEvent = target,
            barrier: Any = barrier,
            results: list[tuple[int, Any]] = results,
        ) -> None:
            barrier.wait(30)
            results.append(
                post_dismiss(live_server.url, token, "rel.mailer", target.event_id, "poison")
            )

        threads = [threading.Thread(target=fire, args=(t,)) for t in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        statuses.append(sorted(status for status, _ in results))
        won += [body["decision_event_id"] for status, body in results if status == 200]
        assert [body["code"] for status, body in results if status == 409] == [
            "event_already_dismissed"
        ]

    assert statuses == [[200, 409]] * rounds
    recorded = decisions()
    assert sorted(str(d.event_id) for d in recorded) == sorted(won)
    assert {d.data["actor"]["username"] for d in recorded} <= {"alice", "bob"}
    assert Bookmark.objects.get(pk="rel.mailer").cursor == events[2 * rounds - 1].cursor
    assert backward_moves() == []


# --- dismissals racing a worker -----------------------------------------------------------


def test_dismissals_racing_a_worker_pass_over_events_only_by_audited_decision(
    live_server, processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REL_HANDLE_SECONDS", "0.01")
    rng = random.Random(5)
    appended = [event for n in range(10) for event in append_mixed(rng, 100, f"race-{n}")]
    wait_until_visible(appended)  # the horizon is cluster-wide: read every order below
    orders = [e for e in PostgresEventStore().read_all(limit=100_000) if e.event_type == "Order"]
    worker = start_worker([R + "Receipts"], lease_seconds="30", poll_interval_seconds="0.2")
    processes.append(worker)
    wait_for(lambda: Bookmark.objects.filter(pk="rel.receipts").exists(), what="the bookmark")
    alice, bob = tokens("alice", "bob")
    outcomes: list[tuple[int, Any]] = []

    def operator_at_work(token: str, seed: int) -> None:
        pick = random.Random(seed)
        for _ in range(8):
            at = Bookmark.objects.get(pk="rel.receipts").cursor
            ahead = [o for o in orders if o.cursor > at][:15]
            if not ahead:
                break
            target = pick.choice(ahead)
            outcomes.append(
                post_dismiss(live_server.url, token, "rel.receipts", target.event_id, "race")
            )
            time.sleep(pick.random() * 0.3)
        connection.close()

    operators = [
        threading.Thread(target=operator_at_work, args=(token, seed))
        for seed, token in enumerate((alice, bob))
    ]
    for thread in operators:
        thread.start()
    for thread in operators:
        thread.join(120)
    last = orders[-1].cursor
    wait_for(
        lambda: Bookmark.objects.get(pk="rel.receipts").cursor >= last,
        timeout=120,
        what="the worker to get past the last order",
    )
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0

    assert {status for status, _ in outcomes} <= {200, 409}
    accepted = [body for status, body in outcomes if status == 200]
    assert accepted, "no dismissal landed ahead of the worker"
    recorded = decisions()
    assert sorted(str(d.event_id) for d in recorded) == sorted(
        b["decision_event_id"] for b in accepted
    )
    passed_over: list[str] = []
    for body in accepted:
        before = Cursor(**body["cursor_before"])
        after = Cursor(**body["cursor_after"])
        passed_over += [str(o.event_id) for o in orders if before < o.cursor <= after]
    assert len(passed_over) == len(set(passed_over)), "two dismissals passed over one event"
    receipts = receipts_by_order()
    assert set(receipts.values()) <= {1}, "an order got two receipts"
    # Every order is answered exactly once, or passed over by exactly one audited dismissal.
    assert sorted([*receipts, *passed_over]) == sorted(order_ids())
    assert backward_moves() == []
    print(
        f"\nFIGURES dismissal race: {len(outcomes)} REST dismissals during the run,"
        f" {len(accepted)} accepted (200), {len(outcomes) - len(accepted)} refused (409),"
        f" {len(passed_over)} orders passed over by decision, {len(receipts)} answered once,"
        f" {bookmark_moves()} bookmark moves, 0 backward"
    )


# --- atomicity ------------------------------------------------------------------------------

BLOCK_AFTER_BOOKMARK = trigger_sql(
    "rel_gate", "AFTER UPDATE ON projection_bookmarks", f"PERFORM pg_advisory_xact_lock({GATE});"
)
BLOCK_AFTER_DECISION = trigger_sql(
    "rel_gate",
    "AFTER INSERT ON events",
    f"IF NEW.stream_id = '{DECISION_STREAM}' THEN PERFORM pg_advisory_xact_lock({GATE}); END IF;",
)
#: Run at commit (a deferred constraint trigger): the commit itself fails.
REFUSE_DECISIONS = (
    f"IF NEW.stream_id = '{DECISION_STREAM}' THEN RAISE EXCEPTION 'refused at commit'; END IF;"
)
BLOCK_RECEIPTS = trigger_sql(
    "rel_gate",
    "BEFORE INSERT ON events",
    f"IF NEW.event_type = 'Receipt' THEN PERFORM pg_advisory_xact_lock({GATE}); END IF;",
)
NO_GATE = drop_trigger_sql("rel_gate")


@pytest.fixture
def gate() -> Iterator[Any]:
    """A session holding the advisory lock the fault triggers wait on."""
    with raw_connection() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [GATE])
        yield holder
    with connection.cursor() as cursor:
        cursor.execute(NO_GATE)


def waiting_at_gate() -> int | None:
    """The pid of a backend stopped at the gate, if one is."""
    rows = fetch(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND objid = %s AND objsubid = 1 AND database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())",
        [GATE],
    )
    return int(rows[0][0]) if rows else None


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(BLOCK_AFTER_BOOKMARK, id="between-bookmark-update-and-decision-append"),
        pytest.param(BLOCK_AFTER_DECISION, id="after-both-before-commit"),
    ],
)
def test_a_dismissal_cut_off_mid_transaction_leaves_neither_write(
    live_server, gate, moment: str
) -> None:
    events = wait_until_visible(append_events(3, stream="orders"))
    wedged_reaction("rel.mailer", events[0], failing=events[1])
    [token] = tokens("alice")
    with connection.cursor() as cursor:
        cursor.execute(moment)
    answer: list[tuple[int, Any]] = []
    request = threading.Thread(
        target=lambda: answer.append(
            post_dismiss(live_server.url, token, "rel.mailer", events[2].event_id, "poison")
        )
    )
    request.start()
    victim = wait_for(waiting_at_gate, what="the dismissal to reach the fault point")
    # From outside, mid-transaction: nothing of it is visible yet.
    assert Bookmark.objects.get(pk="rel.mailer").cursor == events[0].cursor
    assert decisions() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
    request.join(60)

    [(status, body)] = answer
    assert (status, body["code"]) == (503, "database_unavailable")
    assert "Traceback" not in json.dumps(body)
    mark = Bookmark.objects.get(pk="rel.mailer")
    assert (mark.cursor, mark.status) == (events[0].cursor, "wedged")
    assert mark.failing_event_id == events[1].event_id
    assert decisions() == []
    assert bookmark_moves() == 0
    # And once the fault is gone, the same dismissal goes through, both writes together.
    with connection.cursor() as cursor:
        cursor.execute(NO_GATE)
    status, body = post_dismiss(live_server.url, token, "rel.mailer", events[2].event_id, "again")
    assert status == 200
    assert Bookmark.objects.get(pk="rel.mailer").cursor == events[2].cursor
    assert [str(d.event_id) for d in decisions()] == [body["decision_event_id"]]


def test_a_dismissal_whose_commit_fails_leaves_neither_write() -> None:
    events = wait_until_visible(append_events(3, stream="orders"))
    wedged_reaction("rel.mailer", events[0], failing=events[1])
    actor = operator("alice")
    with (
        trigger("rel_gate", "AFTER INSERT ON events", REFUSE_DECISIONS, at_commit=True),
        pytest.raises(DatabaseError, match="refused at commit"),
    ):
        dismiss_event_in_reaction("rel.mailer", events[2].event_id, "poison", actor)
    assert Bookmark.objects.get(pk="rel.mailer").cursor == events[0].cursor
    assert decisions() == []
    assert bookmark_moves() == 0


def test_a_reaction_cut_off_between_compare_and_set_and_append_leaves_neither(
    gate, processes
) -> None:
    rng = random.Random(6)
    append_mixed(rng, 40, "cut")
    with connection.cursor() as cursor:
        cursor.execute(BLOCK_RECEIPTS)
    worker = start_worker([R + "Receipts"], lease_seconds="2", poll_interval_seconds="0.2")
    processes.append(worker)
    victim = wait_for(waiting_at_gate, what="the worker to reach the append")
    # The compare-and-set already ran in that transaction; from outside nothing moved.
    assert Bookmark.objects.get(pk="rel.receipts").cursor == Cursor(0, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
        cursor.execute(NO_GATE)
    wait_for(
        lambda: len(receipts_by_order()) == len(order_ids()),
        timeout=60,
        what="the worker to reconnect and answer every order",
    )
    assert set(receipts_by_order().values()) == {1}
    assert worker.poll() is None
    assert backward_moves() == []
    # The cut-off batch was handled again (outside effects are at-least-once).
    handled = fetch("SELECT count(*), count(DISTINCT event_id) FROM rel_effects")[0]
    assert handled[0] > handled[1]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
