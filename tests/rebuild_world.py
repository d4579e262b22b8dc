"""The world of the rebuild acts' tests (handler, doors, access matrix, progress): a
rebuildable projection with tables of its own (``tests.rebuilds.Totals``), a projection
without ``models`` and a reaction, configured; 20 events projected with the first code;
then the "fix" deployed (``factor`` 2). ``RebuildWorld`` takes a rebuild to the state a
test needs. The ``rebuilds`` fixture (tests/conftest.py) builds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, transaction

from eventstore import NewEvent
from eventstore.postgres import PostgresEventStore
from eventstore.types import RecordedEvent
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import start_rebuild, swap_rebuild
from subscribers.rebuilds.runner import run_rebuilds_once
from subscribers.registry import build_registry
from tests.factories import append_to
from tests.rebuilds import Totals
from tests.workers import drain

REBUILD_SUBSCRIBERS = ["tests.rebuilds.Totals", "tests.rebuilds.NoModels",
                       "tests.subscribers.EchoReaction"]  # fmt: skip


@dataclass
class RebuildWorld:
    """``test.rb_totals`` caught up on 20 events with its first code (``factor`` 1); the
    tests deploy the "fix" (``factor`` 2) and take the rebuild to the state they need."""

    name: str

    @property
    def registry(self) -> Any:
        return build_registry(REBUILD_SUBSCRIBERS)

    def live_caught_up(self) -> None:
        head = PostgresEventStore().head()
        drain(
            self.registry,
            lambda: Bookmark.objects.filter(
                subscriber_name=self.name, last_position__gte=head[1]
            ).exists(),
            what=f"{self.name} caught up",
        )

    def started(self, **kwargs: Any) -> Any:
        """A rebuild recorded (no worker has taken it yet)."""
        with transaction.atomic():
            return start_rebuild(self.name, reason="set up", started_by=None, **kwargs)

    def built(self) -> Any:
        """The open rebuild, worked by a worker until it is verified: ready to swap."""
        run_rebuilds_once(self.registry)
        rebuild = Rebuild.objects.get(projection_name=self.name, phase__in=Rebuild.OPEN_PHASES)
        assert rebuild.phase == "ready", (rebuild.phase, rebuild.last_error)
        return rebuild

    def ready(self) -> Any:
        """A rebuild built, caught up and verified: ready to swap."""
        self.started()
        return self.built()

    def failed(self) -> Any:
        """A rebuild whose new code fails on an event (max_attempts 1): *failed*."""
        rebuild = self.started()
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(Totals, "apply", _choke)
            run_rebuilds_once(self.registry)
        rebuild.refresh_from_db()
        assert rebuild.phase == "failed", rebuild.phase
        return rebuild

    def migrated(self) -> Any:
        """A rebuild ready to swap, and a migration of the live table since it began."""
        rebuild = self.ready()
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE rb_totals ADD COLUMN note text")
        return rebuild

    def swapped(self) -> Any:
        """A rebuild swapped in (its old tables kept for a roll back)."""
        rebuild = self.ready()
        with transaction.atomic(durable=True):
            swap_rebuild(self.name)
        rebuild.refresh_from_db()
        return rebuild


def _choke(self: Any, event: RecordedEvent) -> None:
    raise ValueError("the new code chokes on this event")


def rebuild_world(settings: Any) -> RebuildWorld:
    """Configure the world's subscribers (one attempt before a rebuild fails), append 20
    events, let the live projection catch up with the first code, then deploy the fix."""
    settings.EVENTDESK = {
        **settings.EVENTDESK,
        "subscribers": REBUILD_SUBSCRIBERS,
        "max_attempts": 1,
        "retry_base_seconds": 0.01,
        "retry_cap_seconds": 0.02,
    }
    append_to("acct-1", [NewEvent("Added", {"key": f"k{i % 4}", "amount": i}) for i in range(20)])
    world = RebuildWorld(Totals.name)
    world.live_caught_up()
    Totals.factor = 2  # the deploy: every amount counts twice from now on
    return world
