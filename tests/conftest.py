"""Fixtures shared by several layers. Every test that touches the database uses the real
PostgreSQL (the embedded server, or DATABASE_URL): pytest-django's test database.

Where things live: fixtures in the conftest.py of the layer that uses them (this one for
several layers); events and appends in tests/factories.py; waits, connections and reads
in tests/support.py; workers in tests/workers.py; the subscribers tests select by dotted
path in tests/subscribers.py and tests/reliability/subscribers.py.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.subscribers import CREATE_APPLIED_TABLE, GatedReaction


@pytest.fixture
def applied_table(transactional_db: None) -> None:
    """An empty ``test_applied_events`` table (not a Django model: the flush leaves it)."""
    with connection.cursor() as cursor:
        cursor.execute(CREATE_APPLIED_TABLE)
    GatedReaction.reset()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(30)
