"""Shared fixtures. Every test that touches the database uses the real PostgreSQL
(the embedded server, or DATABASE_URL): pytest-django's test database."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from django.db import connection

from eventstore.memory import InMemoryEventStore
from eventstore.postgres import PostgresEventStore
from eventstore.store import EventStore


def raw_connection(*, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A psycopg connection of its own to the test database (not Django's)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("server_side_binding", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=autocommit)


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
