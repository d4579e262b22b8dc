"""Fixtures of the contract tests: both event stores, an operator's API token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, transaction

from eventstore import NewEvent
from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from eventstore.types import RecordedEvent
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.models import Bookmark, Rebuild
from subscribers.rebuilds import start_rebuild, swap_rebuild
from subscribers.rebuilds.runner import run_rebuilds_once
from subscribers.registry import build_registry
from subscribers.stream_work import parked_streams
from tests.factories import append_to, jobs, operator
from tests.stream_invariants import handled_count
from tests.subscribers import StreamJobs
from tests.workers import drain

#: The stream-ordered reaction of the parked-stream tests, as configured by dotted path.
STREAM_JOBS = "tests.subscribers.StreamJobs"


@pytest.fixture(
    params=[
        "memory",
        # Transactional: the horizon hides events of a transaction still open, and a
        # test wrapped in one transaction would never see its own appends.
        pytest.param("postgres", marks=pytest.mark.django_db(transaction=True)),
    ]
)
def store(request: pytest.FixtureRequest) -> EventStore:
    """Each contract test runs against both stores."""
    return InMemoryEventStore() if request.param == "memory" else PostgresEventStore()


@pytest.fixture
def token() -> str:
    """The secret of a live API token of a permitted operator, "robot"."""
    return issue_token(operator("robot")).secret


@dataclass(frozen=True)
class ParkedWorld:
    """A stream-ordered reaction (``test.streams``, configured) with stream "bad" parked on
    its second job (``poison``) and two jobs waiting behind it (``behind``); its first job
    (``handled``) and both jobs of stream "good" are handled."""

    name: str
    handled: RecordedEvent
    poison: RecordedEvent
    behind: list[RecordedEvent]
    good: list[RecordedEvent]


@pytest.fixture
def parked(settings: Any, transactional_db: None) -> ParkedWorld:
    """A parked stream, made by the real worker (two attempts, then parked)."""
    settings.EVENTDESK = {
        **settings.EVENTDESK,
        "subscribers": [STREAM_JOBS],
        "max_attempts": 2,
        "retry_base_seconds": 0.01,
        "retry_cap_seconds": 0.02,
    }
    StreamJobs.reset()
    [handled] = jobs("bad", 1)
    [poison] = jobs("bad", 1, poison=True)
    behind = jobs("bad", 2)
    good = jobs("good", 2)
    registry = build_registry([STREAM_JOBS])
    drain(
        registry,
        lambda: parked_streams(StreamJobs.name) and handled_count() == 3,
        what="stream 'bad' parked and the rest handled",
    )
    return ParkedWorld(StreamJobs.name, handled, poison, behind, good)


# --- projection rebuilds (issue 17): a projection with tables of its own ---------------------

#: The rebuild doors' world: a rebuildable projection (tests/rebuilds.py, its own tables), a
#: projection without ``models``, and a reaction.
REBUILDABLE = "tests.rebuilds.Totals"
REBUILD_SUBSCRIBERS = [REBUILDABLE, "tests.rebuilds.NoModels", "tests.subscribers.EchoReaction"]


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
            patched.setattr(type(self.registry[self.name].subscriber), "apply", _choke)
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


@pytest.fixture
def rebuilds(settings: Any, rebuild_tables: None) -> RebuildWorld:
    """The rebuild doors' world (see ``RebuildWorld``): events appended, the live projection
    caught up with factor 1, then the deploy of factor 2 (the rebuild's diff)."""
    from tests.rebuilds import Totals

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
