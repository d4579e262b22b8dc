"""An append's NOTIFY names its event types, and a worker wakes only the loops that read one
of them: a reaction that reads one rare type is not stepped 200 times a second beside a
busy projection (each step is two short write transactions and GIL time the projection's
loop waits for)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import override_settings

from eventstore.postgres import PostgresEventStore
from eventstore.sql import NOTIFY_CHANNEL
from eventstore.types import MAX_EVENT_TYPE_LENGTH, Cursor
from subscribers.listener import notified_types
from subscribers.registry import build_registry
from tests.factories import append
from tests.subscribers import applied
from tests.support import bookmark, raw_connection, wait_for
from tests.workers import running_worker

pytestmark = pytest.mark.django_db(transaction=True)

POLL_SECONDS = 120.0  # far longer than any wait below: only a wake-up can start a step


def _payloads_of(*appends: tuple[str, ...]) -> list[str]:
    """The payloads a listener receives for ``appends`` (each a tuple of event types)."""
    with raw_connection(autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        for number, types in enumerate(appends):
            append(f"typed-wakeups-{number}", *types)
        payloads: list[str] = []
        deadline = time.monotonic() + 20
        while len(payloads) < len(appends) and time.monotonic() < deadline:
            payloads += [n.payload for n in listener.notifies(timeout=1, stop_after=1)]
    return payloads


def test_an_append_notifies_the_event_types_it_appended() -> None:
    payloads = _payloads_of(("Order", "Tick", "Order"), ("Ping",))
    assert [sorted(json.loads(payload)) for payload in payloads] == [["Order", "Tick"], ["Ping"]]
    assert [notified_types(payload) for payload in payloads] == [
        frozenset({"Order", "Tick"}),
        frozenset({"Ping"}),
    ]


def test_an_append_of_too_many_types_to_name_wakes_every_loop() -> None:
    # 60 types of 200 characters do not fit a NOTIFY (8,000 bytes): the payload is empty.
    many = tuple(f"{n:03d}".ljust(MAX_EVENT_TYPE_LENGTH, "x") for n in range(60))
    assert _payloads_of(many) == [""]
    assert notified_types("") is None


@pytest.mark.parametrize("payload", ["", "[", '{"a": 1}', "[1, 2]", '"Tick"', "Tick"])
def test_a_payload_that_names_no_types_wakes_every_loop(payload: str) -> None:
    assert notified_types(payload) is None


def _pong() -> Cursor | None:
    """Where the echo's answer to the warm-up ping stands, once it is appended."""
    found = PostgresEventStore().read_all(event_types=["Pong"])
    return found[0].cursor if found else None


def _registry() -> Any:
    return build_registry(
        ["tests.subscribers.RecordingProjection", "tests.subscribers.EchoReaction"]
    )


@pytest.mark.usefixtures("applied_table")
@override_settings(EVENTDESK={"poll_interval_seconds": POLL_SECONDS})
def test_a_reaction_is_not_woken_by_events_it_does_not_read() -> None:
    with running_worker(_registry()):
        append("warm-up", "Ping")
        pong = wait_for(lambda: _pong(), what="the reaction answering the warm-up ping")
        # The step after a handle reads on: it steps past the pong (the last event).
        wait_for(lambda: bookmark("test.echo").cursor >= pong, what="the step after the handle")
        time.sleep(0.5)  # then the loop sleeps, with nothing to do
        echo_before = bookmark("test.echo").cursor
        ticks = append("ticks", "Tick", "Tick")
        wait_for(
            lambda: len(applied("test.recorder")) >= 3,  # the projection reads every type
            what="the projection applying the ticks",
        )
        time.sleep(0.5)  # a woken reaction would have stepped past the ticks by now
        assert bookmark("test.echo").cursor == echo_before, "woken by events it does not read"

        ping = append("after-ticks", "Ping")  # its wake-up reaches the reaction
        wait_for(
            lambda: bookmark("test.echo").cursor >= ping[0].cursor,
            timeout=POLL_SECONDS / 4,
            what="the reaction handling the ping, well before the next poll",
        )
    assert ticks[-1].cursor < ping[0].cursor
