"""A projection written with the unit of work, rebuilt: the rebuild replays through its
``apply_rows`` (``apply_events``), into the new tables, with their own sequences."""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.db import transaction

from eventstore import NewEvent, RecordedEvent
from subscribers.models import Bookmark
from subscribers.rebuilds import start_rebuild, swap_rebuild
from subscribers.rebuilds.runner import run_rebuilds_once
from subscribers.registry import build_registry
from subscribers.rows import Rows
from tests.factories import append_to
from tests.rebuilds import OnTotalsTables, RbEntry, RbTotal, rows
from tests.workers import drain

pytestmark = pytest.mark.usefixtures("rebuild_tables")


class TotalsThroughRows(OnTotalsTables):
    """``tests.rebuilds.Totals`` written with the unit of work."""

    name = "test.rb_rows_totals"
    factor: ClassVar[int] = 1

    def apply_rows(self, events: list[RecordedEvent], rows: Rows) -> None:
        rows.load(RbTotal, key={str(event.data["key"]) for event in events})
        for event in events:
            amount = int(event.data["amount"]) * self.factor
            total = rows.get_or_new(RbTotal, key=str(event.data["key"]))
            total.n += 1
            total.total += amount
            rows.new(RbEntry, event_id=event.event_id, key=total, amount=amount)


def test_a_unit_of_work_projection_is_rebuilt_through_its_own_code() -> None:
    TotalsThroughRows.factor = 1
    registry = build_registry([TotalsThroughRows()])
    append_to("acct", [NewEvent("Added", {"key": f"k{i % 7}", "amount": i}) for i in range(60)])
    name = TotalsThroughRows.name
    drain(registry, lambda: Bookmark.objects.get(subscriber_name=name).last_position > 0
          and len(rows(RbEntry)) == 60)  # fmt: skip
    try:
        TotalsThroughRows.factor = 2  # the deploy
        with transaction.atomic():
            start_rebuild(name, reason="test", started_by=None, registry=registry)
        run_rebuilds_once(registry)
        with transaction.atomic(durable=True):
            swap_rebuild(name, registry=registry)
    finally:
        TotalsThroughRows.factor = 1
    assert sum(row[2] for row in rows(RbTotal)) == 2 * sum(range(60))
    assert sorted(row[2] for row in rows(RbEntry)) == sorted(2 * i for i in range(60))
