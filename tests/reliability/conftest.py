"""Fixtures of the reliability suite: its tables, a throwaway server (the processes fixture
is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from config.embedded_pg import ServerLayout
from tests.reliability.subscribers import DROP_TABLES, TABLES
from tests.reliability.throwaway import running_server


@pytest.fixture
def rel_tables(transactional_db: None) -> Iterator[None]:
    """Fresh read-model and log tables, and the bookmark-move trigger (dropped after)."""
    with connection.cursor() as cursor:
        cursor.execute(TABLES)
    yield
    with connection.cursor() as cursor:
        cursor.execute(DROP_TABLES)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerLayout]:
    """A PostgreSQL of this test's own (never the suite's), not migrated; stopped and
    removed afterwards."""
    with running_server(tmp_path) as layout:
        yield layout
