"""A rebuild's batch holds no reader back: while it is open (holding an xid, in the middle
of the projection's code), an event appended and committed reaches the live projection."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from django.db import connection, transaction

from eventstore import NewEvent
from eventstore.types import RecordedEvent
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import start_rebuild
from subscribers.rebuilds.runner import RebuildRunner
from subscribers.registry import build_registry
from tests.factories import append_to
from tests.rebuilds import Totals
from tests.support import wait_for
from tests.workers import drain

pytestmark = pytest.mark.usefixtures("rebuild_tables")


class HeldInRebuild(Totals):
    """``Totals`` whose rebuild (not its live run) stops in ``apply`` until let go."""

    entered: ClassVar[threading.Event] = threading.Event()
    go_on: ClassVar[threading.Event] = threading.Event()

    def apply(self, event: RecordedEvent) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('search_path') LIKE '%%eventdesk_rebuild_%%'")
            rebuilding = cursor.fetchone()[0]
        if rebuilding:
            self.entered.set()
            self.go_on.wait(60)
        super().apply(event)


def added(count: int, start: int = 0) -> list[RecordedEvent]:
    events = [
        NewEvent("Added", {"key": f"k{i % 3}", "amount": i}) for i in range(start, start + count)
    ]
    return append_to("acct-1", events)


def test_a_live_event_reaches_the_projection_while_a_rebuild_batch_is_open() -> None:
    HeldInRebuild.entered.clear()
    HeldInRebuild.go_on.clear()
    registry = build_registry([HeldInRebuild()])
    first = added(5)
    drain(
        registry,
        lambda: Bookmark.objects.get(subscriber_name=Totals.name).cursor == first[-1].cursor,
    )
    with transaction.atomic():
        rebuild = start_rebuild(Totals.name, reason="test", started_by=None, registry=registry)
    runner = RebuildRunner(registry.projections, "test")
    assert runner.step()  # the schema copied
    assert Rebuild.objects.get(pk=rebuild.pk).phase == Rebuild.Phase.BUILDING

    def batch() -> None:
        try:
            runner.step()
        finally:
            connection.close()

    builder = threading.Thread(target=batch)
    builder.start()
    try:
        assert HeldInRebuild.entered.wait(30), "the rebuild's batch never reached apply"
        later = added(1, start=100)
        # Without the exemption the open batch holds the horizon: this never happens.
        drain(
            registry,
            lambda: Bookmark.objects.get(subscriber_name=Totals.name).cursor == later[0].cursor,
        )
    finally:
        HeldInRebuild.go_on.set()
        builder.join(60)
    wait_for(lambda: Rebuild.objects.get(pk=rebuild.pk).events_done == 5)
