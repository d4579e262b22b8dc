"""The batch reads load ``recorded_at`` with psycopg's compiled loader: the same values
Django's own loader gives, on every path that reads events for a subscriber."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.db import connection, transaction

from eventstore import NewEvent
from eventstore.models import Event
from eventstore.postgres import fetch_events
from eventstore.types import START
from subscribers import sql
from subscribers.bookmarks import read_batch
from subscribers.registry import build_registry
from tests.factories import append_to
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _orm_times() -> dict[str, object]:
    return {str(e.event_id): e.recorded_at for e in Event.objects.all()}


def test_a_batch_read_gives_the_times_the_orm_gives() -> None:
    recorded = append_to("times", [NewEvent("A"), NewEvent("B", {}, {"k": [1]})])
    entry = build_registry(["tests.subscribers.RecordingProjection"])["test.recorder"]
    with transaction.atomic(), connection.cursor() as cursor:
        batch = wait_for(lambda: read_batch(cursor, entry, START).events or None, what="the batch")
    times = _orm_times()
    assert [e.event_id for e in batch] == [e.event_id for e in recorded]
    for event in batch:
        assert event.recorded_at == times[str(event.event_id)]
        assert event.recorded_at.tzinfo is UTC
    assert [e.metadata for e in batch] == [{}, {"k": [1]}]


def test_the_loader_is_only_this_cursors() -> None:
    """The compiled loader goes on the cursor that reads events; a Django query after it
    still gets Django's loader (and the same value)."""
    append_to("times", [NewEvent("A")])
    with connection.cursor() as cursor:
        rows = fetch_events(
            cursor,
            sql.READ_BATCH,
            {"tx": START.transaction_id, "pos": START.position, "limit": 10},
        )
        compiled = cursor.cursor.adapters.get_loader(1184, 0)
        assert compiled.__module__.startswith("psycopg")  # psycopg_binary's, or psycopg's
    with connection.cursor() as cursor:
        cursor.execute("SELECT recorded_at FROM events")
        (plain,) = cursor.fetchone()
        assert cursor.cursor.adapters.get_loader(1184, 0).__module__.startswith("django")
    assert rows[-1][-1] == plain
