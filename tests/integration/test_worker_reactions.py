"""Reactions: lease, handle outside any transaction, compare-and-set; and their own loops."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from eventstore.models import Event
from eventstore.postgres import PostgresEventStore
from subscribers.models import Bookmark
from subscribers.registry import build_registry
from subscribers.worker import Worker
from tests.factories import append
from tests.subscribers import GatedReaction, applied
from tests.support import bookmark, wait_for
from tests.workers import drain, running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

FIXTURES = "tests.subscribers."
FAST = {"poll_interval_seconds": 0.2, "retry_base_seconds": 0.01}


def registry(*names: str) -> Any:
    return build_registry([FIXTURES + name for name in names])


def pongs() -> list[str]:
    """Every Pong recorded (committed), horizon or not."""
    return [e.data["ping"] for e in Event.objects.filter(event_type="Pong").order_by("position")]


def test_reaction_appends_its_result_exactly_once_and_moves_past_other_events() -> None:
    pings = append("p1", "Ping") + append("x", "Other") + append("p2", "Ping")
    tail = append("y", "Other")
    subs = registry("EchoReaction")
    drain(subs, lambda: bookmark("test.echo").cursor >= tail[0].cursor)
    assert sorted(pongs()) == sorted(str(p.event_id) for p in pings if p.event_type == "Ping")
    mark = bookmark("test.echo")
    assert (mark.kind, mark.status, mark.lease_owner, mark.lease_expires_at) == (
        "reaction", "active", "", None,
    )  # fmt: skip
    # The Pongs it appended are past its own bookmark too, and are not Pings: nothing more.
    drain(subs, lambda: bookmark("test.echo").cursor == PostgresEventStore().head())
    assert len(pongs()) == 2


@override_settings(EVENTDESK=FAST)
def test_handle_runs_with_no_transaction_open() -> None:
    ping = append("p", "Ping")
    with running_worker(registry("GatedReaction")):
        assert GatedReaction.entered.wait(60), "the reaction never started handling"
        seen = GatedReaction.observations[0]
        assert seen["in_atomic_block"] is False
        assert seen["django_connection_open"] is False  # released before the slow work
        GatedReaction.gate.set()
        assert GatedReaction.exited.wait(60), "the reaction never finished handling"
        assert seen["transactions_open"] == []  # no backend of this database held one across
        wait_for(lambda: pongs() == [str(ping[0].event_id)], what="the reaction's result")


@override_settings(EVENTDESK=FAST)
def test_projections_keep_up_while_a_reaction_is_inside_handle() -> None:
    subs = registry("GatedReaction", "RecordingProjection")
    ping = append("p", "Ping")
    with running_worker(subs):
        assert GatedReaction.entered.wait(60), "the reaction never started handling"
        # While the reaction is still inside handle(), the projection keeps up with
        # new events: its progress does not wait for the slow reaction.
        later = append("q", "Tick", "Tick", "Tick")
        wait_for(
            lambda: bookmark("test.recorder").cursor == later[-1].cursor,
            what="the projection to catch up while the reaction sleeps",
        )
        assert not GatedReaction.gate.is_set()
        assert pongs() == []
        assert bookmark("test.gated").lease_owner != ""
        GatedReaction.gate.set()
        wait_for(lambda: pongs() == [str(ping[0].event_id)], what="the reaction's result")
    assert [row[2] for row in applied("test.recorder")][:4] == ["Ping", "Tick", "Tick", "Tick"]


@override_settings(EVENTDESK=FAST)
def test_result_is_discarded_when_the_bookmark_moved_during_handle() -> None:
    first = append("p1", "Ping")
    second = append("p2", "Ping")
    subs = registry("GatedReaction")
    with running_worker(subs):
        assert GatedReaction.entered.wait(60)
        # An operator dismisses the event being handled (the bookmark moves past it).
        Bookmark.objects.filter(subscriber_name="test.gated").update(
            last_transaction_id=first[0].transaction_id, last_position=first[0].position
        )
        GatedReaction.gate.set()
        wait_for(lambda: str(second[0].event_id) in pongs(), what="the next ping's result")
    assert pongs() == [str(second[0].event_id)]  # the first result was discarded
    assert bookmark("test.gated").cursor >= second[0].cursor


@override_settings(EVENTDESK={**FAST, "max_attempts": 3})
def test_poison_event_wedges_the_reaction_after_n_attempts_while_projections_go_on() -> None:
    good = append("p1", "Ping")
    poison = append("p2", "Ping", poison=True)
    after = append("p3", "Ping")
    subs = registry("EchoReaction", "RecordingProjection")
    with running_worker(subs):
        wait_for(lambda: bookmark("test.echo").status == "wedged", what="the reaction to wedge")
        more = append("t", "Tick")
        wait_for(lambda: bookmark("test.recorder").cursor == more[0].cursor, what="projection")
    mark = bookmark("test.echo")
    assert mark.attempts == 3
    assert mark.failing_event_id == poison[0].event_id
    assert mark.cursor == good[0].cursor
    assert "RuntimeError: the echo service rejects this ping (HTTP 422)" in mark.last_error
    assert "Traceback" in mark.last_traceback
    assert mark.failed_at is not None
    assert mark.next_retry_at is None
    assert mark.lease_owner == ""
    assert pongs() == [str(good[0].event_id)]
    assert str(after[0].event_id) not in pongs()
    Worker(subs).run_once()
    assert bookmark("test.echo").attempts == 3  # left alone until an operator acts


def test_a_live_lease_is_respected_and_an_expired_one_taken_over() -> None:
    ping = append("p", "Ping")
    subs = registry("EchoReaction")
    Worker(subs).run_once()  # creates the bookmark (and handles the ping)
    Bookmark.objects.filter(subscriber_name="test.echo").update(
        last_transaction_id=0, last_position=0
    )
    later = append("p-late", "Ping")
    Bookmark.objects.filter(subscriber_name="test.echo").update(
        last_transaction_id=ping[0].transaction_id,
        last_position=ping[0].position,
        lease_owner="crashed-host:1:dead",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert Worker(subs).run_once() == 0
    assert str(later[0].event_id) not in pongs()
    Bookmark.objects.filter(subscriber_name="test.echo").update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    drain(subs, lambda: str(later[0].event_id) in pongs(), "the expired lease to be taken over")
    assert bookmark("test.echo").lease_owner == ""
