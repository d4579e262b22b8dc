"""A reaction's own bookkeeping holds no reader back: its claim (a lease write) and a
settle without appends are exempted from the horizon, so an event committed while one of
them is open (holding its xid) reaches a live projection at once. A settle that appends
the reaction's events cannot be exempted, and is not: its appends land."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

import subscribers.reactions as reactions
import subscribers.settlement as settlement
import subscribers.streams as streams
from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent, StreamAppend
from subscribers.bookmarks import ensure_bookmarks
from subscribers.leases import LeaseKeeper
from subscribers.models import Bookmark
from subscribers.reactions import run_reaction_step
from subscribers.registry import build_registry
from subscribers.streams import HandleResult, check_orderings, take_in_and_claim
from subscribers.worker import Worker
from tests.factories import append
from tests.subscribers import EchoReaction, RecordingProjection, applied
from tests.support import wait_for
from tests.workers import drain, stream_reaction

pytestmark = pytest.mark.usefixtures("applied_table")


class QuietReaction:
    """Handles each Ping and returns nothing (an email sent, say): its settle only moves
    the bookmark."""

    name = "test.quiet"
    event_types = ("Ping",)
    batch_size = 1

    def handle(self, event: RecordedEvent) -> list[StreamAppend] | None:
        return None


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any, str], _Hold]]:
    holds: list[_Hold] = []

    def hold(module: Any, name: str) -> _Hold:
        found = _Hold(getattr(module, name))
        monkeypatch.setattr(module, name, found)
        holds.append(found)
        return found

    yield hold
    for found in holds:
        found.go_on.set()


#: How long a held transaction stays open at most: well past the projection's deadline
#: below, so that a transaction that does hide the event fails the test.
HOLD_SECONDS = 120
#: How long the projection has to reach the event (a parallel test run's transaction may
#: hold the cluster-wide horizon for a moment).
REACH_SECONDS = 20


class _Hold:
    """Stands in for a function called inside the transaction under test: the first call
    waits there (the transaction open, with its xid) until the test lets it go on."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.entered = threading.Event()
        self.go_on = threading.Event()
        self.had_xid: bool | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.entered.is_set():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
                self.had_xid = bool(cursor.fetchone()[0])
            self.entered.set()
            self.go_on.wait(HOLD_SECONDS)
        return self.real(*args, **kwargs)


def _reaction_step(reaction: Any) -> Callable[[], Any]:
    """One step of a global-order reaction, as a worker's loop takes it."""
    entry = build_registry([reaction]).reactions[0]
    ensure_bookmarks([entry])
    return lambda: run_reaction_step(entry, LeaseKeeper("test-worker"))


def _in_a_thread(body: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        try:
            body()
        finally:
            connection.close()

    return threading.Thread(target=run)


def _reaches_while(hold: _Hold, body: Callable[[], Any]) -> None:
    """Run ``body`` in a thread until it is held inside its transaction; an event committed
    then must reach a live projection before the hold ends."""
    projection = build_registry([RecordingProjection()])
    drain(projection, lambda: True)  # the projection's bookmark at the head
    thread = _in_a_thread(body)
    thread.start()
    try:
        assert hold.entered.wait(30), "the reaction never reached the held step"
        assert hold.had_xid, "the transaction under test had written nothing yet"
        [later] = append("other-1", "Tick")

        # Were the held transaction not exempted, its xid would hide this event until it
        # ended: the projection could not reach it while the transaction is held.
        def reached() -> bool:
            Worker(projection).run_once()
            return later.event_id in [row[0] for row in applied(RecordingProjection.name)]

        wait_for(reached, timeout=REACH_SECONDS, what="the projection reaching the event")
    finally:
        hold.go_on.set()
        thread.join(HOLD_SECONDS)
    assert not thread.is_alive()


def test_an_event_reaches_a_projection_while_a_reaction_claims(
    held: Callable[[Any, str], _Hold],
) -> None:
    hold = held(reactions, "read_batch")  # read in the claim's transaction, after its lease
    append("pings-1", "Ping")
    _reaches_while(hold, _reaction_step(QuietReaction()))
    bookmark = Bookmark.objects.get(subscriber_name=QuietReaction.name)
    assert bookmark.lease_owner == ""  # claimed, handled, settled
    assert bookmark.cursor >= PostgresEventStore().read_stream("pings-1")[0].cursor


def test_an_event_reaches_a_projection_while_a_reaction_settles_without_appends(
    held: Callable[[Any, str], _Hold],
) -> None:
    hold = held(settlement, "judge")  # after the settle has locked the bookmark
    append("pings-1", "Ping")
    _reaches_while(hold, _reaction_step(QuietReaction()))
    ping = PostgresEventStore().read_stream("pings-1")[0]
    assert Bookmark.objects.get(subscriber_name=QuietReaction.name).cursor >= ping.cursor


def test_a_settle_with_appends_is_not_exempted_and_its_appends_land(
    held: Callable[[Any, str], _Hold],
) -> None:
    hold = held(settlement, "judge")
    append("pings-1", "Ping")
    thread = _in_a_thread(_reaction_step(EchoReaction()))
    thread.start()
    try:
        assert hold.entered.wait(30)
        with connection.cursor() as cursor:  # no transaction of the settle's is exempt
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = 1162119258 AND objid = 1 AND objsubid = 2"
            )
            assert cursor.fetchone() == (0,)
    finally:
        hold.go_on.set()
        thread.join(HOLD_SECONDS)
    ping = PostgresEventStore().read_stream("pings-1")[0]
    [pong] = PostgresEventStore().read_stream(f"pong-{ping.event_id}")
    assert pong.event_type == "Pong"


# --- stream-ordered reactions: the intake and claim, a settle without appends -------------


def _stream_entry() -> Any:
    entry = stream_reaction().reactions[0]
    ensure_bookmarks([entry])
    check_orderings([entry])
    return entry


def test_an_event_reaches_a_projection_while_a_stream_reaction_takes_in_and_claims(
    held: Callable[[Any, str], _Hold],
) -> None:
    entry = _stream_entry()
    append("job-1", "Job")
    hold = held(streams, "_intake")  # after the bookmark's lock (FOR UPDATE: an xid)
    found: list[Any] = []
    _reaches_while(hold, lambda: found.append(take_in_and_claim(entry, LeaseKeeper("w"), 1)))
    [(_, claims)] = found
    assert len(claims) == 1


def test_an_event_reaches_a_projection_while_a_stream_reaction_settles_without_appends(
    held: Callable[[Any, str], _Hold],
) -> None:
    entry = _stream_entry()
    append("job-1", "Job")
    _, [claim] = take_in_and_claim(entry, LeaseKeeper("w"), 1)
    hold = held(streams, "Settled")  # after the work row's compare-and-set
    settled: list[Any] = []
    _reaches_while(hold, lambda: settled.append(streams.settle(entry, HandleResult(claim))))
    assert settled[0].handled
