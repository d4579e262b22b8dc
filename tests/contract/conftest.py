"""Fixtures of the contract tests: both event stores, an operator's API token, a wedged
reaction, a parked stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from eventstore.types import RecordedEvent
from reactions_admin.acts.tokens.handler import issue_token
from subscribers.registry import build_registry
from subscribers.stream_work import parked_streams
from tests.factories import append_events, jobs, operator, wedged_reaction
from tests.stream_invariants import handled_count
from tests.subscribers import STREAM_JOBS, StreamJobs
from tests.support import served_asgi
from tests.workers import drain


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


@pytest.fixture(scope="module")
def base_url(django_db_setup: None) -> Iterator[str]:
    """One uvicorn for the module (the MCP door); requests reach the test database."""
    with served_asgi() as url:
        yield url


@pytest.fixture
def mailer_world(settings: Any) -> dict[str, Any]:
    """Three events, "mailer" wedged on the second, and the token of "robot", a permitted
    operator. The events stay in the test's own transaction: no dismissal lands here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    events = append_events(3)
    wedged_reaction("mailer", events[0], failing=events[1])
    return {"events": events, "token": issue_token(operator("robot")).secret}


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
def parked(stream_jobs_configured: None) -> ParkedWorld:
    """A parked stream, made by the real worker (two attempts, then parked)."""
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
