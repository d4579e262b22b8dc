"""A notification whose event is not visible yet is not left to the next poll.

An older transaction (anywhere on the server) holds the horizon when the event
commits: the NOTIFY arrives, the worker sees nothing, and must look again soon
after the horizon moves, not a whole poll interval later.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import override_settings

from subscribers.registry import build_registry
from tests.factories import append
from tests.subscribers import applied
from tests.support import raw_connection, wait_for
from tests.workers import running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("applied_table")]

POLL_SECONDS = 120.0  # far longer than the wait below: only a re-check can apply the event


def registry() -> Any:
    return build_registry(["tests.subscribers.RecordingProjection"])


@override_settings(EVENTDESK={"poll_interval_seconds": POLL_SECONDS})
def test_an_event_hidden_by_an_older_transaction_is_applied_once_it_ends() -> None:
    with running_worker(registry()):
        first = append("warm-up", "Tick")
        wait_for(lambda: len(applied("test.recorder")) == 1, what="the warm-up event")
        with raw_connection(autocommit=False) as older:
            older.execute("SELECT pg_current_xact_id()")  # older than the append below
            event = append("hidden", "Tick")  # commits and notifies; invisible for now
            time.sleep(0.5)  # the worker wakes, finds nothing visible, and goes idle
            assert len(applied("test.recorder")) == 1, "read past an open older transaction"
            older.rollback()  # the horizon moves on; no notification says so
        applied_ids = wait_for(
            lambda: [row[0] for row in applied("test.recorder")][1:],
            timeout=POLL_SECONDS / 4,
            what="the hidden event, well before the next poll",
        )
    assert applied_ids == [event[0].event_id]
    assert first[0].event_id != event[0].event_id
