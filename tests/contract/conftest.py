"""Fixtures of the contract tests: both event stores, an operator's API token."""

from __future__ import annotations

import pytest

from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore
from reactions_admin.tokens import issue_token
from tests.factories import operator


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
