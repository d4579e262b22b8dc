"""Bad subscriber code: a projection that raises, one that hangs, a reaction that returns
garbage. Each is recorded on its bookmark, retried, then wedged; the others go on."""

from __future__ import annotations

import random
import signal
from pathlib import Path

from eventstore import NewEvent, StreamAppend
from eventstore.postgres import PostgresEventStore
from eventstore.types import START, RecordedEvent
from subscribers.models import Bookmark
from tests.factories import append_mixed
from tests.reliability.invariants import (
    ON_REL_TABLES,
    applied_counts,
    at_head,
    backward_moves,
    order_ids,
    receipts_by_order,
    totals_match,
)
from tests.reliability.subscribers import R
from tests.support import wait_for
from tests.workers import start_worker

pytestmark = ON_REL_TABLES

HEALTHY = ["rel.totals", "rel.receipts"]
OPTIONS = {
    "max_attempts": "3",
    "retry_base_seconds": "0.2",
    "retry_cap_seconds": "1",
    "batch_timeout_seconds": "1.5",
    "lease_seconds": "30",
}


def poisoned(kind: str, event_type: str = "Tick") -> NewEvent:
    return NewEvent(event_type, {"key": "k0", "amount": 1, "poison": kind})


def tick(amount: int) -> NewEvent:
    return NewEvent("Tick", {"key": "k1", "amount": amount})


def everything() -> list[RecordedEvent]:
    return PostgresEventStore().read_all(START, 100_000)


def before(event: RecordedEvent, wanted: str | None) -> RecordedEvent:
    """The (wanted) event just before ``event`` in the global order."""
    ordered = [e for e in everything() if wanted in (None, e.event_type)]
    return ordered[[e.event_id for e in ordered].index(event.event_id) - 1]


def test_raising_hanging_and_garbage_subscribers_wedge_while_the_others_go_on(
    processes, tmp_path: Path
) -> None:
    rng = random.Random(7)
    store = PostgresEventStore()
    append_mixed(rng, 25, "before")
    # Each poison event sits inside a batch, after events of the same batch.
    [_, _, raise_event, _] = store.append_streams(
        [StreamAppend("p-raise", [tick(1), tick(2), poisoned("raise"), tick(3)])]
    )
    [_, hang_event, _] = store.append_streams(
        [
            StreamAppend(
                "p-hang",
                [tick(4), poisoned("hang"), tick(5)],
            )
        ]
    )
    [garbage_event] = store.append_streams(
        [StreamAppend("p-garbage", [poisoned("garbage", "Order")])]
    )
    append_mixed(rng, 25, "after")
    log = tmp_path / "worker.log"
    worker = start_worker(
        [R + "Totals", R + "Receipts", R + "Raises", R + "Hangs", R + "ReturnsGarbage"],
        log=log,
        **OPTIONS,
    )
    processes.append(worker)

    def wedged() -> bool:
        return all(
            Bookmark.objects.filter(subscriber_name=name, status="wedged").exists()
            for name in ("rel.raises", "rel.hangs", "rel.garbage")
        )

    wait_for(wedged, timeout=120, what="the three bad subscribers to wedge")

    expected = {
        "rel.raises": (raise_event, None, "ValueError: cannot project"),
        "rel.hangs": (hang_event, None, "BatchTimeout: rel.hangs ran past batch_timeout_seconds"),
        "rel.garbage": (garbage_event, "Order", "NotAReactionResult: rel.garbage.handle returned"),
    }
    for name, (event, wanted, error) in expected.items():
        mark = Bookmark.objects.get(subscriber_name=name)
        assert mark.attempts == 3, name
        assert mark.failing_event_id == event.event_id, name
        assert error in mark.last_error, (name, mark.last_error)
        assert mark.next_retry_at is None
        assert mark.lease_owner == ""
        # It stands just before the failing event: what came before is done, once.
        assert mark.cursor == before(event, wanted).cursor, name
    hang_mark = Bookmark.objects.get(subscriber_name="rel.hangs")
    assert "in apply" in hang_mark.last_traceback  # where the stuck thread was
    for name, event in (("rel.raises", raise_event), ("rel.hangs", hang_event)):
        counts = applied_counts(name)
        ordered = everything()
        done = ordered[: [e.event_id for e in ordered].index(event.event_id)]
        assert sorted(counts) == sorted(e.event_id for e in done), name
        assert set(counts.values()) == {1}, name
    text = log.read_text()
    for name in expected:
        assert f"{name} failed on event" in text
        assert "attempt 1" in text
        assert "; will retry" in text
        assert "(wedged until an operator acts)" in text

    # The healthy subscribers went on, and still go on with events appended after the wedges.
    append_mixed(rng, 30, "later")
    wait_for(
        lambda: (
            at_head(*HEALTHY) and totals_match() and len(receipts_by_order()) == len(order_ids())
        ),
        timeout=120,
        what="the healthy subscribers to catch up",
    )
    assert set(receipts_by_order().values()) == {1}
    assert worker.poll() is None
    for name in expected:
        assert Bookmark.objects.get(subscriber_name=name).attempts == 3  # left alone
    assert backward_moves() == []
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
